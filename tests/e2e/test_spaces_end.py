"""Spaces end by themselves (issue #11), against a real ``pnyx serve``:

* a host who only publishes (aiortc, WHIP-style, no stage socket) keeps the space live;
  once the publish session ends, with no socket anywhere, it ends ``host_grace_s`` later;
* a host who opens a stage socket and never publishes keeps it too;
* a scheduled space past its slot plus ``scheduled_expiry_s`` is cancelled.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from websockets.sync.client import connect

from tests.support.api import create_space, ok, register, state, wait_state
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import wait_until
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

GRACE_S = 3.0
SETTLE_S = 1.0  # stage_presence_ttl_s


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    settings = {
        "host_grace_s": str(GRACE_S),
        "stage_presence_ttl_s": str(SETTLE_S),
        "scheduled_expiry_s": "1",
        "expiry_sweep_s": "0.3",
    }
    with pnyx_serve(tmp_path_factory.mktemp("ends"), settings=settings) as server:
        yield server


def live_throughout(c: httpx.Client, space: str, seconds: float) -> None:
    """For ``seconds``: the space is live and its host never marked away."""
    seen: list[dict[str, object]] = []

    def away_or_over() -> bool:
        seen.append(state(c, space))
        return seen[-1]["state"] != "live" or bool(seen[-1]["host_away"])

    with pytest.raises(AssertionError, match="not within"):
        wait_until(away_or_over, seconds, "(must not happen) the host away", interval=0.2)
    assert seen[-1]["state"] == "live", seen[-1]


async def test_a_host_who_only_publishes_keeps_the_space_until_they_stop(
    node: PnyxProcess, c: httpx.Client
) -> None:
    host = register(c, "whip_host")
    space = create_space(c, host)
    speaker = await publish(node.url, space, host.token, ToneTrack(440))
    try:
        await speaker.connected()
        # Well past the settle time and the grace: still live, the host never away. (The
        # blocking client runs in a thread: the speaker's peer connection needs this loop.)
        await asyncio.to_thread(live_throughout, c, space, SETTLE_S + 2 * GRACE_S)
    finally:
        await speaker.close()  # the publish session ends (DELETE); no socket anywhere
    stopped = time.monotonic()
    s = await asyncio.to_thread(wait_state, c, space, lambda s: s["state"] == "ended", timeout=20)
    assert s["end_reason"] == "host_left"
    assert time.monotonic() - stopped >= GRACE_S


def test_a_host_who_never_comes_ends_the_space(node: PnyxProcess, c: httpx.Client) -> None:
    host = register(c, "absent_host")
    created = time.monotonic()
    space = create_space(c, host)
    s = wait_state(c, space, lambda s: s["state"] == "ended", timeout=SETTLE_S + GRACE_S + 10)
    assert s["end_reason"] == "host_left"
    assert time.monotonic() - created >= GRACE_S


def test_a_host_with_a_stage_socket_keeps_the_space(node: PnyxProcess, c: httpx.Client) -> None:
    host = register(c, "socket_host")
    space = create_space(c, host)
    with connect(f"{node.ws_url}/v1/spaces/{space}/stage", open_timeout=10) as ws:
        ws.send(json.dumps({"v": 1, "type": "auth", "token": host.token}))
        assert json.loads(ws.recv(timeout=5))["type"] == "welcome"
        live_throughout(c, space, SETTLE_S + 2 * GRACE_S)
    s = wait_state(c, space, lambda s: s["state"] == "ended", timeout=GRACE_S + 10)
    assert s["end_reason"] == "host_left"


def test_a_scheduled_space_past_its_slot_is_cancelled(node: PnyxProcess, c: httpx.Client) -> None:
    host = register(c, "late_host")
    slot = datetime.now(UTC) + timedelta(seconds=2)
    space = create_space(c, host, scheduled_start=slot.isoformat())
    assert ok(c.get(f"/v1/spaces/{space}"))["state"] == "scheduled"

    def cancelled() -> dict[str, object] | None:
        out = ok(c.get(f"/v1/spaces/{space}"))
        return out if out["state"] == "cancelled" else None

    out = wait_until(cancelled, 15, "the scheduled space to be cancelled")
    assert datetime.now(UTC) >= slot + timedelta(seconds=1)  # slot + scheduled_expiry_s
    assert state(c, space)["end_reason"] == "expired"
    assert out["state"] == "cancelled"
    # Over: the host can no longer start it.
    r = c.post(f"/v1/spaces/{space}/start", headers=host.auth)
    assert r.status_code == 409, r.text
