"""Publishing again is make-before-break: a second publish for a member who is on the air
replaces their session only once it carries audio.

One ``pnyx serve`` process (fast clocks, a 3 s ICE connect timeout), the host publishing
tone A with an aiortc speaker and an LL-HLS listener decoding what it receives:

* a second publish for the host whose offer never connects (a leaked token, a stale
  tab: its answer is never applied) gets its ``201`` but never takes the stage: the
  listener hears A throughout, with no gap beyond normal, and once the connect timeout
  has passed the pending session is gone (counted as dropped) and A still plays;
* a second publish that connects with tone B takes over: the listener hears B and no
  longer A, and A's peer connection is closed by the server.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from tests.e2e.test_audio import (
    FREQS,
    LOOK_S,
    RATE,
    SETTLE,
    Background,
    heard_by_listener,
    hears,
    wrap_up,
)
from tests.support import tones
from tests.support.api import User, create_space
from tests.support.api import new_user as user
from tests.support.hls import HlsListener
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import Seen, eventually
from tests.support.webrtc import Speaker, ToneTrack, publish

pytestmark = pytest.mark.e2e

A_HZ, B_HZ = 523.0, 1229.0  # two of test_audio.py's FREQS, told apart by tones.py
CONNECT_TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    settings = {"publish_connect_timeout_s": str(CONNECT_TIMEOUT_S)}
    with pnyx_serve(Path(tmp_path_factory.mktemp("republish")), settings=settings) as n:
        yield n


async def replacements(node: PnyxProcess, outcome: str) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{node.url}/metrics")).text
    m = re.search(rf'^pnyx_media_replacements_total{{outcome="{outcome}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


async def offer_never_connecting(node: PnyxProcess, space: str, token: str) -> str:
    """POST a real offer and never apply the answer (nor keep the peer): the server's ICE
    never connects. Returns the session's Location."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTrack(ToneTrack(B_HZ))
        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient(timeout=20) as http:
            r = await http.post(
                f"{node.url}/v1/spaces/{space}/publish",
                content=pc.localDescription.sdp,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"},
            )
    finally:
        await pc.close()
    assert r.status_code == 201, r.text
    return r.headers["location"]


@dataclass
class OnAir:
    """The host publishing A, and a listener (following in the background) hearing it."""

    host: User
    space: str
    a: Speaker
    listener: HlsListener
    started: float  # wall clock, just before the listener started
    speakers: list[Speaker]  # closed at the end (add any published later)


@asynccontextmanager
async def a_on_the_air(node: PnyxProcess, c: httpx.Client) -> AsyncIterator[OnAir]:
    """A new space whose host publishes A (connected) and a listener that hears A; at the
    end the listener is stopped and checked, the speakers closed and the space ended."""
    host = user(c, "host")
    space = create_space(c, host)
    a = await publish(node.url, space, host.token, ToneTrack(A_HZ))
    speakers = [a]
    try:
        await a.connected()
        started = time.time()
        async with Background(HlsListener(node.url, space)) as listener:
            await eventually(
                hears(lambda: heard_by_listener(listener, started), {A_HZ}),
                within=10,
                what="the listener hears A",
                interval=LOOK_S,
            )
            yield OnAir(host, space, a, listener, started, speakers)
    finally:
        await wrap_up(c, space, host, *speakers)


def assert_no_gap(listener: HlsListener, since: float) -> None:
    """Every part since ``since`` arrived, in order, none skipped, no pause of 1 s."""
    gap, problems = listener.continuity(since=since)
    assert problems == [] and listener.skipped == []
    assert gap < 1.0, f"parts stopped arriving for {gap:.2f}s"


async def test_a_publish_that_never_connects_does_not_take_the_stage(
    node: PnyxProcess, c: httpx.Client
) -> None:
    async with a_on_the_air(node, c) as air:
        listener = air.listener
        dropped_before = await replacements(node, "dropped")
        hijack = time.time()
        await offer_never_connecting(node, air.space, air.host.token)
        # The pending session times out (3 s); A plays on before, during and after,
        # in every half second of what the listener receives.
        span = CONNECT_TIMEOUT_S + 2

        def enough() -> Seen:
            n = len(listener.decode(since=hijack).samples) if listener.parts else 0
            return Seen(n >= SETTLE + span * RATE, f"{n / RATE:.2f} s")

        await eventually(enough, span + 10, f"{span} s of audio after the attempt", interval=0.5)
        samples = listener.decode(since=hijack).samples[SETTLE:]
        step = RATE // 2
        windows = [samples[i : i + step] for i in range(0, len(samples) - step + 1, step)]
        heard = [tones.dominant_tones(w, RATE, FREQS) for w in windows]
        assert all(h == {A_HZ} for h in heard), f"A in every half second: {heard}"

        async def dropped() -> Seen:
            now = await replacements(node, "dropped")
            return Seen(now == dropped_before + 1, f"dropped: {now}")

        await eventually(dropped, 5, "the pending session dropped", interval=0.25)
        after = time.time()
        await eventually(
            hears(lambda: heard_by_listener(listener, after), {A_HZ}),
            within=5,
            what="the listener still hears A after the pending session was dropped",
            interval=LOOK_S,
        )
        assert_no_gap(listener, hijack)
        assert air.a.pc.connectionState == "connected"


async def test_a_publish_that_connects_replaces_the_old_session(
    node: PnyxProcess, c: httpx.Client
) -> None:
    async with a_on_the_air(node, c) as air:
        listener, a = air.listener, air.a
        replaced_before = await replacements(node, "replaced")
        b = await publish(node.url, air.space, air.host.token, ToneTrack(B_HZ))
        air.speakers.append(b)
        await b.connected()
        switched = time.time()
        await eventually(
            hears(lambda: heard_by_listener(listener, switched), {B_HZ}),
            within=10,
            what="the listener hears B and no longer A",
            interval=LOOK_S,
        )
        await eventually(
            lambda: Seen(a.pc.connectionState in ("closed", "failed"), a.pc.connectionState),
            within=10,
            what="A's session closed by the server",
            interval=0.1,
        )
        assert await replacements(node, "replaced") == replaced_before + 1
        assert_no_gap(listener, air.started)
