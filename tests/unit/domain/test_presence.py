"""Time passing for a space (``Tick``), table-driven: host presence as the stage node
observes it, the grace period, and scheduled spaces whose slot is long gone (issue #11:
"spaces end by themselves")."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pnyx.domain.commands import EndSpace, StartSpace, Tick
from pnyx.domain.events import Event, HostAway, HostBack, SpaceEnded
from pnyx.domain.room import Room
from pnyx.domain.rules import decide
from pnyx.domain.types import EndReason, Limits, SpaceStatus
from pnyx.errors import ErrorKind

from .builders import CO, HOST, SPK, accept, make_room, reject

GRACE = 30.0
AWAY = 2_000.0
SLOT = 5_000.0
EXPIRY = 3_600.0


@dataclass(frozen=True)
class Case:
    name: str
    status: SpaceStatus
    away_since: float | None
    command: Tick
    now: float
    # What must follow: None for "nothing changes" (same room, no events).
    events: tuple[Event, ...] | None
    status_after: SpaceStatus | None = None
    away_after: float | None = None


def _room(case: Case) -> Room:
    return make_room(
        status=case.status,
        cohosts=[CO],
        speakers=[SPK],
        limits=Limits(host_grace_s=GRACE),
        host_away_since=case.away_since,
    )


LIVE, SCHEDULED = SpaceStatus.LIVE, SpaceStatus.SCHEDULED
CASES = [
    # -- presence in a live space -------------------------------------------------------
    Case("present, not away: nothing", LIVE, None, Tick(host_present=True), AWAY, None),
    Case("not observed, not away: nothing", LIVE, None, Tick(), AWAY, None),
    Case(
        "absent, not away: marked away now",
        LIVE,
        None,
        Tick(host_present=False),
        AWAY,
        (HostAway(since=AWAY),),
        LIVE,
        AWAY,
    ),
    Case(
        "present again while away: back",
        LIVE,
        AWAY,
        Tick(host_present=True),
        AWAY + GRACE - 1,
        (HostBack(),),
        LIVE,
        None,
    ),
    Case(
        "present again after the grace: back (presence is judged first)",
        LIVE,
        AWAY,
        Tick(host_present=True),
        AWAY + 10 * GRACE,
        (HostBack(),),
        LIVE,
        None,
    ),
    # -- the grace period ---------------------------------------------------------------
    Case("absent, within the grace: nothing", LIVE, AWAY, Tick(host_present=False), AWAY, None),
    Case(
        "absent, just within the grace: nothing",
        LIVE,
        AWAY,
        Tick(host_present=False),
        AWAY + GRACE - 0.001,
        None,
    ),
    Case(
        "absent, at the grace: ended",
        LIVE,
        AWAY,
        Tick(host_present=False),
        AWAY + GRACE,
        (SpaceEnded(at=AWAY + GRACE, reason=EndReason.HOST_LEFT),),
        SpaceStatus.ENDED,
        None,
    ),
    Case(
        "not observed, past the grace: ended",
        LIVE,
        AWAY,
        Tick(),
        AWAY + GRACE + 5,
        (SpaceEnded(at=AWAY + GRACE + 5, reason=EndReason.HOST_LEFT),),
        SpaceStatus.ENDED,
        None,
    ),
    # -- a live space ignores the schedule ----------------------------------------------
    Case(
        "live with an old slot: nothing",
        LIVE,
        None,
        Tick(host_present=True, scheduled_start=SLOT, expiry_s=EXPIRY),
        SLOT + 10 * EXPIRY,
        None,
    ),
    # -- scheduled spaces ---------------------------------------------------------------
    Case(
        "scheduled, slot to come: nothing",
        SCHEDULED,
        None,
        Tick(scheduled_start=SLOT, expiry_s=EXPIRY),
        SLOT - 1,
        None,
    ),
    Case(
        "scheduled, slot passed within the expiry: nothing",
        SCHEDULED,
        None,
        Tick(scheduled_start=SLOT, expiry_s=EXPIRY),
        SLOT + EXPIRY - 0.001,
        None,
    ),
    Case(
        "scheduled, expiry reached: cancelled",
        SCHEDULED,
        None,
        Tick(scheduled_start=SLOT, expiry_s=EXPIRY),
        SLOT + EXPIRY,
        (SpaceEnded(at=SLOT + EXPIRY, reason=EndReason.EXPIRED),),
        SpaceStatus.CANCELLED,
        None,
    ),
    Case(
        "scheduled, long gone, host 'absent': cancelled all the same",
        SCHEDULED,
        None,
        Tick(host_present=False, scheduled_start=SLOT, expiry_s=0),
        SLOT,
        (SpaceEnded(at=SLOT, reason=EndReason.EXPIRED),),
        SpaceStatus.CANCELLED,
        None,
    ),
    Case("scheduled, slot unknown: nothing", SCHEDULED, None, Tick(), SLOT + 1e9, None),
    Case(
        "scheduled, host absent: presence is not judged before the start",
        SCHEDULED,
        None,
        Tick(host_present=False),
        SLOT,
        None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tick(case: Case) -> None:
    room = _room(case)
    if case.events is None:
        d = decide(room, case.command, case.now)
        assert d.room is room
        assert d.events == ()
        return
    d = accept(room, case.command, now=case.now)
    assert d.events == case.events
    assert d.room.status is case.status_after
    assert d.room.host_away_since == case.away_after
    if d.room.is_over:
        assert d.room.ended_at == case.now
        assert d.room.hands == () and d.room.invitations == ()
        assert d.room.members == room.members  # kept for the record


def test_a_host_who_never_shows_up_ends_the_space_after_the_grace() -> None:
    room = make_room(limits=Limits(host_grace_s=GRACE))
    room = accept(room, Tick(host_present=False), now=AWAY).room
    for now in (AWAY + 1, AWAY + GRACE / 2, AWAY + GRACE - 0.5):
        assert decide(room, Tick(host_present=False), now).room is room
    d = accept(room, Tick(host_present=False), now=AWAY + GRACE)
    assert d.room.end_reason is EndReason.HOST_LEFT


def test_cohosts_do_not_keep_the_space_past_the_grace() -> None:
    # The host's presence is all that counts: co-hosts present (they are on stage and may
    # publish) do not stop the clock.
    room = make_room(cohosts=[CO], limits=Limits(host_grace_s=GRACE), host_away_since=AWAY)
    assert accept(room, Tick(host_present=False), now=AWAY + GRACE).room.is_over


@pytest.mark.parametrize("status", [SpaceStatus.ENDED, SpaceStatus.CANCELLED])
@pytest.mark.parametrize(
    "tick",
    [
        Tick(host_present=True),
        Tick(host_present=False),
        Tick(scheduled_start=SLOT, expiry_s=0),
    ],
    ids=["present", "absent", "expired"],
)
def test_time_changes_nothing_once_over(status: SpaceStatus, tick: Tick) -> None:
    start = SpaceStatus.LIVE if status is SpaceStatus.ENDED else SpaceStatus.SCHEDULED
    room = decide(make_room(status=start), EndSpace(HOST), AWAY).room
    assert room.status is status
    d = decide(room, tick, SLOT + 1e9)
    assert d.room is room
    assert d.events == ()


def test_an_expired_space_cannot_be_started_or_ended() -> None:
    room = make_room(status=SpaceStatus.SCHEDULED)
    room = accept(room, Tick(scheduled_start=SLOT, expiry_s=EXPIRY), now=SLOT + EXPIRY).room
    assert (room.status, room.end_reason) == (SpaceStatus.CANCELLED, EndReason.EXPIRED)
    reject(room, StartSpace(HOST), ErrorKind.CONFLICT, "space_over")
    reject(room, EndSpace(HOST), ErrorKind.CONFLICT, "space_over")
