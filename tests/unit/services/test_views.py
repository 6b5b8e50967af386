"""The state view: the latency mode a space tells its players, the state document's wire
format, and the typed reads of the published parts."""

from __future__ import annotations

import pytest

from pnyx.domain.types import SpaceStatus
from pnyx.live.base import Snapshot
from pnyx.services import views


@pytest.mark.parametrize(
    ("listeners", "previous", "expected"),
    [
        (0, None, "low"),
        (1000, "low", "low"),
        (1000, None, "low"),
        (1001, "low", "standard"),
        (900, "standard", "standard"),  # hysteresis: stays until below 80%
        (800, "standard", "standard"),
        (799, "standard", "low"),
        (5000, "standard", "standard"),
    ],
)
def test_latency_mode_switches_above_the_threshold_with_hysteresis(
    listeners: int, previous: str | None, expected: str
) -> None:
    assert views.latency_mode(listeners, previous, 1000) == expected


def test_latency_mode_zero_threshold_is_always_standard() -> None:
    assert views.latency_mode(0, None, 0) == "standard"


def test_state_view_carries_the_latency_mode_and_defaults_to_low() -> None:
    snap = Snapshot(3, {views.STATS: {"listeners": 5, "reactions": {}, "latency": "standard"}})
    assert views.state_view(snap, for_stage=False, heartbeat_s=15.0).latency == "standard"
    bare = Snapshot(1, {})
    assert views.state_view(bare, for_stage=False, heartbeat_s=15.0).latency == "low"


ROOM = {
    "id": "sp1",
    "title": "Town hall ✓",
    "host": "ann",
    "status": "live",
    "speak_policy": "everyone",
    "stage": [
        {"handle": "ann", "role": "host", "muted": False},
        {"handle": "bo", "role": "speaker", "muted": True},
    ],
    "hands": [{"handle": "cy", "raised_at": 12.5}],
    "invited": [{"handle": "di", "role": "cohost"}],
    "pinned": None,
    "host_away": False,
    "end_reason": None,
    "room_version": 4,
}
SNAP = Snapshot(
    9,
    {
        views.ROOM: ROOM,
        views.STATS: {"listeners": 42, "reactions": {"🔥": 2}, "latency": "low"},
        views.LEVELS: {"speaking": ["bo"]},
    },
)


def test_the_state_document_keeps_its_wire_format() -> None:
    """The JSON the web client and the load-test listeners read: names, order, values."""
    view = views.state_view(SNAP, for_stage=False, heartbeat_s=15.0)
    assert view.model_dump_json() == (
        '{"version":9,"space":"sp1","state":"live","title":"Town hall ✓","host":"ann",'
        '"host_away":false,"end_reason":null,"speak_policy":"everyone","stage":['
        '{"handle":"ann","role":"host","muted":false,"speaking":false,"display_name":"ann"},'
        '{"handle":"bo","role":"speaker","muted":true,"speaking":true,"display_name":"bo"}],'
        '"hands":{"count":1,"handles":null},"invited":[{"handle":"di","role":"cohost"}],'
        '"listeners":42,"reactions":{"🔥":2},"pinned":null,"heartbeat_s":15.0,"latency":"low"}'
    )


def test_only_the_stage_sees_who_raised_a_hand() -> None:
    assert views.state_view(SNAP, for_stage=True, heartbeat_s=15.0).hands.handles == ["cy"]
    assert views.state_view(SNAP, for_stage=False, heartbeat_s=15.0).hands.handles is None


def test_the_room_status_is_read_as_a_space_status() -> None:
    assert views.room_status(SNAP) is SpaceStatus.LIVE
    ended = Snapshot(10, {views.ROOM: {**ROOM, "status": "ended"}})
    assert views.room_status(ended) is SpaceStatus.ENDED
    assert views.room_status(Snapshot(1, {views.STATS: {"listeners": 3}})) is None
    assert views.room_status(None) is None


def test_the_listener_count_is_zero_until_published() -> None:
    assert views.listener_count(SNAP) == 42
    assert views.listener_count(Snapshot(1, {views.ROOM: ROOM})) == 0
    assert views.listener_count(None) == 0
