"""The join storm's arrival schedule and stage script, and the listeners' retry waits."""

from __future__ import annotations

import random

import pytest

from pnyx.loadtest.http import Response
from pnyx.loadtest.joinstorm import offered_by, stage_actions
from pnyx.loadtest.listeners import retry_delay


def test_arrivals_ramp_linearly_then_hold() -> None:
    assert offered_by(0, 100, 10) == 0
    assert offered_by(5, 100, 10) == pytest.approx(125)  # half-way up the ramp
    assert offered_by(10, 100, 10) == pytest.approx(500)  # the ramp's triangle
    assert offered_by(12, 100, 10) == pytest.approx(700)  # then 100 per second
    assert offered_by(3, 100, 0) == pytest.approx(300)  # no ramp


def test_stage_script_cycles_host_actions() -> None:
    script = stage_actions("sp", "hosty", "127.0.0.1:8080", "tok")
    names = [name for name, _ in script]
    assert set(names) == {"pin", "mute", "unmute", "speak_policy"}
    assert names.index("mute") < names.index("unmute")
    for _, data in script:
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"Authorization: Bearer tok" in head
        assert f"Content-Length: {len(body)}".encode() in head
    assert b"POST /v1/spaces/sp/members/hosty/mute HTTP/1.1" in dict(script)["mute"]


def test_retry_waits_follow_retry_after_with_jitter() -> None:
    refused = Response(503, {b"retry-after": b"2", b"pnyx-retry-jitter": b"0.5"}, b"{}", 2)
    rng = random.Random(3)
    waits = [retry_delay(refused, rng) for _ in range(500)]
    assert min(waits) >= 2.0 and max(waits) <= 3.0
    assert max(waits) - min(waits) > 0.5  # spread, not synchronised
    bare = Response(503, {}, b"", 0)
    assert retry_delay(bare, rng, default=1.0) == 1.0
