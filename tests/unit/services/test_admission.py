"""The admission policy: shedding order, the stage's lane, counters, heartbeat scaling."""

from __future__ import annotations

import itertools

import pytest

from pnyx.config import Settings
from pnyx.services.admission import (
    ROUTES,
    SHED_ORDER,
    Admission,
    Lane,
    Refusal,
    Ticket,
    from_settings,
)

THRESHOLDS = {
    Lane.REACTION: 0.5,
    Lane.HEARTBEAT: 0.65,
    Lane.JOIN: 0.8,
    Lane.LISTENER_ACTION: 0.95,
}


def make(capacity: int = 20) -> Admission:
    return Admission(capacity, THRESHOLDS, heartbeat_s=15.0, hold_s=60.0)


def fill(a: Admission, n: int, lane: Lane = Lane.STAGE) -> list[Ticket]:
    tickets = []
    for _ in range(n):
        t = a.try_enter(lane, 0.0)
        assert isinstance(t, Ticket)
        tickets.append(t)
    return tickets


def admitted_lanes(a: Admission, now: float = 0.0) -> set[Lane]:
    """Which lanes one more request would be admitted in (without keeping it)."""
    out = set()
    for lane in Lane:
        got = a.try_enter(lane, now)
        if isinstance(got, Ticket):
            out.add(lane)
            a.leave(got)
    return out


def test_idle_admits_every_lane() -> None:
    assert admitted_lanes(make()) == set(Lane)


def test_sheds_in_the_fixed_order_and_never_the_stage() -> None:
    a = make(capacity=20)  # limits: reactions 10, heartbeats 13, joins 16, actions 19
    assert a.limits == {
        Lane.REACTION: 10,
        Lane.HEARTBEAT: 13,
        Lane.JOIN: 16,
        Lane.LISTENER_ACTION: 19,
    }
    seen = []
    for _ in range(30):
        lanes = admitted_lanes(a)
        seen.append(lanes)
        assert Lane.STAGE in lanes
        fill(a, 1)
    # Each refused set contains the ones refused at lower loads (a fixed order).
    for lower, higher in itertools.pairwise(seen):
        assert higher <= lower
    first_refused = {
        lane: next(i for i, lanes in enumerate(seen) if lane not in lanes) for lane in SHED_ORDER
    }
    assert first_refused == {
        Lane.REACTION: 10,
        Lane.HEARTBEAT: 13,
        Lane.JOIN: 16,
        Lane.LISTENER_ACTION: 19,
    }
    assert admitted_lanes(a) == {Lane.STAGE}  # 30 in flight, capacity 20: stage still in


def test_stage_is_admitted_above_capacity_and_takes_capacity_from_listeners() -> None:
    a = make(capacity=4)
    fill(a, 100)
    assert a.total == 100
    assert a.load() == 25.0
    assert isinstance(a.try_enter(Lane.STAGE, 0.0), Ticket)
    for lane in SHED_ORDER:
        assert isinstance(a.try_enter(lane, 0.0), Refusal)


def test_listener_traffic_cannot_take_the_stage_lane() -> None:
    a = make(capacity=10)
    # Listeners flood every lane as far as they are let in ...
    for lane in reversed(SHED_ORDER):
        while isinstance(a.try_enter(lane, 0.0), Ticket):
            pass
    assert a.total == a.limits[Lane.LISTENER_ACTION] < a.capacity
    # ... and the stage still gets in, every time.
    fill(a, 50)


def test_counters_and_leave() -> None:
    a = make(capacity=2)  # reactions limit 1
    t = a.try_enter(Lane.REACTION, 0.0)
    assert isinstance(t, Ticket)
    r = a.try_enter(Lane.REACTION, 0.0)
    assert isinstance(r, Refusal)
    assert (r.lane, r.retry_after_s, r.jitter) == (Lane.REACTION, 1, 0.5)
    assert a.inflight[Lane.REACTION] == 1
    assert (a.admitted[Lane.REACTION], a.refused[Lane.REACTION]) == (1, 1)
    a.leave(t)
    assert a.total == 0
    assert isinstance(a.try_enter(Lane.REACTION, 0.0), Ticket)  # recovered
    assert a.admitted[Lane.REACTION] == 2


def test_leaving_twice_is_an_error_and_changes_nothing() -> None:
    a = make()
    t = a.try_enter(Lane.JOIN, 0.0)
    assert isinstance(t, Ticket)
    a.leave(t)
    with pytest.raises(ValueError, match="in flight"):
        a.leave(t)
    assert a.inflight[Lane.JOIN] == 0


def test_small_capacity_still_admits_one_of_each() -> None:
    a = Admission(1, dict.fromkeys(SHED_ORDER, 0.1), heartbeat_s=1.0, hold_s=1.0)
    assert all(limit == 1 for limit in a.limits.values())
    assert admitted_lanes(a) == set(Lane)


@pytest.mark.parametrize(
    "thresholds",
    [
        {**THRESHOLDS, Lane.REACTION: 0.9},  # out of the shedding order
        {**THRESHOLDS, Lane.JOIN: 1.5},
        {k: v for k, v in THRESHOLDS.items() if k is not Lane.JOIN},
    ],
)
def test_bad_thresholds_are_refused(thresholds: dict[Lane, float]) -> None:
    with pytest.raises(ValueError, match="threshold"):
        Admission(10, thresholds, heartbeat_s=1.0, hold_s=1.0)


def test_retry_after_is_at_least_one_second() -> None:
    a = Admission(1, THRESHOLDS, heartbeat_s=1.0, hold_s=1.0, retry_after_s=0, jitter=0.25)
    fill(a, 1)
    r = a.try_enter(Lane.REACTION, 0.0)
    assert isinstance(r, Refusal)
    assert (r.retry_after_s, r.jitter) == (1, 0.25)


def test_heartbeat_interval_rises_while_shedding_and_recovers() -> None:
    a = make(capacity=20)
    assert a.heartbeat_s(0.0) == 15.0
    tickets = fill(a, 10)  # reactions shed from here
    assert a.heartbeat_s(1.0) == 15.0  # nothing refused yet: load alone changes nothing
    assert isinstance(a.try_enter(Lane.REACTION, 1.0), Refusal)
    assert a.heartbeat_s(1.0) == 30.0
    tickets += fill(a, 3)  # heartbeats shed from here
    assert isinstance(a.try_enter(Lane.HEARTBEAT, 2.0), Refusal)
    assert a.heartbeat_s(2.0) == 60.0
    assert isinstance(a.try_enter(Lane.REACTION, 30.0), Refusal)
    for t in tickets:
        a.leave(t)
    assert admitted_lanes(a, 40.0) == set(Lane)  # load gone: nothing refused any more
    # Raised for hold_s after the last refusal of each lane, then back to the base.
    assert a.heartbeat_s(62.0) == 60.0
    assert a.heartbeat_s(62.5) == 30.0  # heartbeats last shed at 2, reactions at 30
    assert a.heartbeat_s(90.0) == 30.0
    assert a.heartbeat_s(90.5) == 15.0


def test_presence_window_outlasts_any_raised_interval() -> None:
    a = make(capacity=2)
    assert a.presence_window_s(0.0, 45.0) == 45.0
    fill(a, 2)
    assert isinstance(a.try_enter(Lane.HEARTBEAT, 10.0), Refusal)
    assert a.heartbeat_s(10.0) == 60.0
    assert a.presence_window_s(10.0, 45.0) == 180.0
    # After the hold, the interval is back at the base, but a listener told 60 s at the
    # end of the hold may still be waiting: the window stays stretched a while longer.
    assert a.heartbeat_s(71.0) == 15.0
    assert a.presence_window_s(71.0, 45.0) == 180.0
    assert a.presence_window_s(10.0 + 60.0 + 3 * 60.0 + 1, 45.0) == 45.0


def test_the_table_classifies_every_stage_route_as_stage() -> None:
    lanes = {(method, template): lane for method, template, lane in ROUTES}
    sp = "/v1/spaces/{space_id}"
    for method, path in [
        ("POST", f"{sp}/start"),
        ("POST", f"{sp}/end"),
        ("PUT", f"{sp}/members/{{handle}}/role"),
        ("POST", f"{sp}/members/{{handle}}/mute"),
        ("POST", f"{sp}/members/{{handle}}/unmute"),
        ("POST", f"{sp}/members/{{handle}}/remove"),
        ("DELETE", f"{sp}/hands/{{handle}}"),
        ("PUT", f"{sp}/pin"),
        ("PUT", f"{sp}/speak-policy"),
        ("POST", f"{sp}/publish"),
        ("DELETE", f"{sp}/publish/{{session}}"),
    ]:
        assert lanes[(method, path)] is Lane.STAGE, (method, path)
    assert lanes[("POST", f"{sp}/reactions")] is Lane.REACTION
    assert lanes[("POST", f"{sp}/heartbeat")] is Lane.HEARTBEAT
    assert lanes[("POST", f"{sp}/join")] is Lane.JOIN
    assert lanes[("POST", f"{sp}/replay/{{event}}")] is Lane.LISTENER_ACTION  # the beacon
    assert len(lanes) == len(ROUTES)  # no route listed twice


def test_from_settings_uses_the_settings() -> None:
    s = Settings(max_inflight=100, admit_reactions=0.1, heartbeat_s=3.0, admission_hold_s=5.0)
    a = from_settings(s)
    assert a.capacity == 100
    assert a.limits[Lane.REACTION] == 10
    assert (a.base_heartbeat_s, a.hold_s) == (3.0, 5.0)


def test_join_rate_caps_accepted_joins_per_second_and_refills() -> None:
    a = Admission(1000, THRESHOLDS, heartbeat_s=15.0, hold_s=60.0, join_rate=50)
    counts = []
    for second in range(5):
        # a storm of 10x the rate within each second
        outcomes = [a.try_enter(Lane.JOIN, second + i / 500) for i in range(500)]
        accepted = [t for t in outcomes if isinstance(t, Ticket)]
        counts.append(len(accepted))
        for t in accepted:
            a.leave(t)
        assert all(r.lane is Lane.JOIN for r in outcomes if isinstance(r, Refusal))
    # a full bucket (one second's worth) on top of the first second, then the rate
    assert 95 <= counts[0] <= 100
    assert all(49 <= c <= 51 for c in counts[1:]), counts


def test_join_rate_leaves_other_lanes_and_the_stage_alone() -> None:
    a = Admission(1000, THRESHOLDS, heartbeat_s=15.0, hold_s=60.0, join_rate=1)
    assert isinstance(a.try_enter(Lane.JOIN, 0.0), Ticket)
    assert isinstance(a.try_enter(Lane.JOIN, 0.1), Refusal)
    for lane in (Lane.STAGE, Lane.HEARTBEAT, Lane.REACTION, Lane.LISTENER_ACTION):
        assert isinstance(a.try_enter(lane, 0.1), Ticket)
    assert isinstance(a.try_enter(Lane.JOIN, 1.2), Ticket)


def test_join_rate_zero_means_in_flight_only() -> None:
    a = Admission(10_000, THRESHOLDS, heartbeat_s=15.0, hold_s=60.0, join_rate=0)
    assert all(isinstance(a.try_enter(Lane.JOIN, 0.0), Ticket) for _ in range(5000))


@pytest.mark.parametrize(("role", "admitted"), [("both", 30), ("stage", 30), ("api", 70)])
def test_an_api_only_process_admits_its_own_join_rate(role: str, admitted: int) -> None:
    settings = Settings(role=role, admit_join_rate=30, admit_join_rate_api=70)  # type: ignore[arg-type]
    a = from_settings(settings)
    got = sum(isinstance(a.try_enter(Lane.JOIN, 0.0), Ticket) for _ in range(200))
    assert got == admitted


def test_join_rate_tolerates_a_clock_that_steps_back() -> None:
    a = Admission(1000, THRESHOLDS, heartbeat_s=15.0, hold_s=60.0, join_rate=2)
    assert isinstance(a.try_enter(Lane.JOIN, 10.0), Ticket)
    assert isinstance(a.try_enter(Lane.JOIN, 10.0), Ticket)
    assert isinstance(a.try_enter(Lane.JOIN, 5.0), Refusal)  # no refill from going back
    assert isinstance(a.try_enter(Lane.JOIN, 10.6), Ticket)


def test_captions_are_shed_before_the_first_lane() -> None:
    adm = Admission(100, THRESHOLDS, heartbeat_s=15.0, hold_s=60.0, captions=0.2)
    assert adm.captions_limit == 20 < adm.limits[SHED_ORDER[0]]
    tickets = []
    for _ in range(19):
        t = adm.try_enter(Lane.STAGE, now=0.0)
        assert isinstance(t, Ticket)
        tickets.append(t)
    assert not adm.sheds_captions(now=0.0)
    tickets.append(adm.try_enter(Lane.STAGE, now=0.0))  # type: ignore[arg-type]
    assert adm.sheds_captions(now=0.0)  # 20 in flight: captions pause, every lane admits
    assert isinstance(adm.try_enter(Lane.REACTION, now=0.0), Ticket)


def test_captions_stay_shed_while_a_lane_was_refused_recently() -> None:
    adm = Admission(10, THRESHOLDS, heartbeat_s=15.0, hold_s=60.0, captions=0.5)
    held = [adm.try_enter(Lane.STAGE, now=0.0) for _ in range(10)]
    assert not isinstance(adm.try_enter(Lane.REACTION, now=0.0), Ticket)
    for t in held:
        adm.leave(t)  # type: ignore[arg-type]
    assert adm.sheds_captions(now=59.0)  # idle again, but reactions were refused
    assert not adm.sheds_captions(now=61.0)


def test_a_captions_threshold_above_the_first_lane_counts_as_the_first_lane() -> None:
    adm = Admission(100, THRESHOLDS, heartbeat_s=15.0, hold_s=60.0, captions=1.0)
    assert adm.captions_limit == adm.limits[SHED_ORDER[0]]
    assert from_settings(Settings(admit_captions=0.3)).captions_limit == int(0.3 * 256)
