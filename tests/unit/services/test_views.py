"""The latency mode a space tells its players, and where the state view carries it."""

from __future__ import annotations

import pytest

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
    assert views.state_view(snap, for_stage=False, heartbeat_s=15.0)["latency"] == "standard"
    bare = Snapshot(1, {})
    assert views.state_view(bare, for_stage=False, heartbeat_s=15.0)["latency"] == "low"
