"""Clients that ride out a failover, as real ones do (shared by tests/e2e/test_failover.py
and bench/failover.py).

- :class:`SelfHealingSpeaker`: a WHIP-shaped speaker (aiortc) that holds the stage socket
  and publishes again by itself, to the same URL, when the socket closes, its peer
  connection fails or the mix-minus stops (the stage node sends it every 20 ms) — what
  the web client does (``src/pnyx/web/js/publisher.js``).
- :func:`keep_listening`: an LL-HLS player that keeps asking the same playlist URL
  through errors (it never rejoins).
- :func:`kill_drill`: the kill-a-node drill with both (shared by tests/e2e/test_failover.py
  and tests/multihost/test_rehearsal.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass

import httpx
import websockets

from tests.support import hls, tones, webrtc
from tests.support.poll import Seen, eventually

MIX_MINUS_STALL_S = 1.2  # no mix-minus this long: the stage node is gone
PRIMING = 2048  # samples an AAC decoder needs before a part's audio is its own


class SelfHealingSpeaker:
    def __init__(
        self,
        base_url: str,
        space: str,
        token: str,
        freq_hz: float,
        *,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.base_url = base_url
        self.space = space
        self.token = token
        self.freq_hz = freq_hz
        self.verify = verify  # how an HTTPS base_url is checked (a context trusting its cert)
        self.speaker: webrtc.Speaker | None = None
        self.published_at: list[float] = []  # wall clock of every 201
        self.failures: list[str] = []  # publishes that failed (and were tried again)
        self._lost = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    async def start(self) -> None:
        await self._publish()
        self._tasks = [
            asyncio.create_task(self._socket(), name="speaker-socket"),
            asyncio.create_task(self._keep_publishing(), name="speaker-republish"),
        ]

    async def _publish(self) -> None:
        old, self.speaker = self.speaker, None
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.close(), 2)
        track = webrtc.ToneTrack(self.freq_hz)
        speaker = await webrtc.publish(
            self.base_url, self.space, self.token, track, retry_for=15, verify=self.verify
        )
        self.published_at.append(time.time())
        self.speaker = speaker
        await speaker.connected(within=10)

    async def _socket(self) -> None:
        """Hold the stage socket; when it closes (not by us), the stage may have moved."""
        url = "ws" + self.base_url.removeprefix("http") + f"/v1/spaces/{self.space}/stage"
        tls: ssl.SSLContext | None = None
        if url.startswith("wss:"):
            tls = self.verify if isinstance(self.verify, ssl.SSLContext) else None
            tls = tls or ssl.create_default_context()
        while not self._closing:
            with contextlib.suppress(OSError, websockets.WebSocketException, TimeoutError):
                async with websockets.connect(url, open_timeout=5, ssl=tls) as ws:
                    await ws.send(json.dumps({"type": "auth", "v": 1, "token": self.token}))
                    async for raw in ws:
                        msg = json.loads(raw)
                        if msg.get("type") == "ping":
                            await ws.send(json.dumps({"type": "pong", "v": 1, "seq": msg["seq"]}))
            if not self._closing:
                self._lost.set()
                await asyncio.sleep(0.2)

    async def _keep_publishing(self) -> None:
        while not self._closing:
            speaker = self.speaker
            failed = speaker is not None and speaker.pc.connectionState in ("failed", "closed")
            last = None if speaker is None else speaker.received.last_arrival
            stalled = last is not None and time.time() - last > MIX_MINUS_STALL_S
            if self._lost.is_set() or failed or stalled:
                self._lost.clear()
                try:
                    await self._publish()
                except Exception as exc:  # tried again on the next pass
                    self.failures.append(f"{type(exc).__name__}: {exc}"[:200])
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.speaker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.speaker.close(), 5)


async def keep_listening(listener: hls.HlsListener, stop: asyncio.Event) -> None:
    """Follow the live playlist until ``stop`` (or its end), retrying the same URL after
    any error, as a player does."""
    while not stop.is_set() and not listener.ended:
        try:
            await asyncio.wait_for(listener.step(), 20)
        except (hls.HlsError, httpx.HTTPError, TimeoutError, ValueError):
            await asyncio.sleep(0.1)


def toned(listener: hls.HlsListener, part: hls.FetchedPart, freq_hz: float) -> bool:
    """Whether ``part`` (decoded on its own) carries the tone."""
    assert listener.init is not None
    samples = hls.decode_fmp4(listener.init + part.data).samples[PRIMING:]
    if len(samples) < tones.RATE // 20:
        return False
    return tones.tone_energy(samples, freq_hz).present()


async def last_part(url: str, space: str) -> tuple[int, int]:
    """(msn, part index) of the newest part a node's live playlist lists."""
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.get(f"{url}/media/{space}/live.m3u8")
    parts = hls.parse_playlist(r.text).parts if r.status_code == 200 else []
    return (parts[-1].msn, parts[-1].index) if parts else (-1, -1)


@dataclass(frozen=True)
class Drill:
    """What :func:`kill_drill` saw. Times are wall clock (``time.time()``)."""

    killed: float  # the SIGKILL
    back: float  # the first toned part, newer than anything the dead node wrote, arrived
    republished: list[float]  # the speaker's publishes after the kill
    failures: list[str]  # the speaker's failed publishes (tried again)
    parts: list[hls.FetchedPart]  # every part the listener received, in order
    dead_wrote: tuple[int, int]  # (msn, part) of the newest part the survivor listed

    @property
    def took(self) -> float:
        return self.back - self.killed

    def after_kill(self) -> list[tuple[int, int]]:
        """(msn, part) of the parts that arrived after the kill, in arrival order."""
        return [(p.msn, p.index) for p in self.parts if p.arrived >= self.killed]


async def kill_drill(
    edge_url: str,
    space: str,
    token: str,
    victim: subprocess.Popen[bytes],
    survivor_url: str,
    *,
    tone_hz: float,
    back_within_s: float,
    verify: ssl.SSLContext | bool = True,
) -> Drill:
    """The kill-a-node drill: a :class:`SelfHealingSpeaker` (the host, ``token``) and a
    listener that keeps its playlist URL, both through ``edge_url`` (``verify``: how an
    HTTPS edge is checked); once the listener hears the tone, ``victim`` (the node running
    the space's stage) is SIGKILLed, and the tone must come back at the listener, in parts
    newer than the newest the survivor lists right after the kill, within
    ``back_within_s`` + 10 s (the caller asserts the tighter bound)."""
    speaker = SelfHealingSpeaker(edge_url, space, token, tone_hz, verify=verify)
    await speaker.start()
    stop = asyncio.Event()
    try:
        async with (
            httpx.AsyncClient(timeout=15.0, verify=verify) as client,
            hls.HlsListener(edge_url, space, client=client) as listener,
        ):
            await listener.start(within=20)
            following = asyncio.create_task(keep_listening(listener, stop))
            try:

                def heard(after: tuple[int, int]) -> Seen:
                    newer = [p for p in listener.parts if (p.msn, p.index) > after]
                    found = [p for p in newer if toned(listener, p, tone_hz)]
                    return Seen(bool(found), f"{len(newer)} newer parts, {len(found)} toned")

                await eventually(lambda: heard((-1, -1)), 20, "the tone at the listener")
                published = len(speaker.published_at)
                victim.send_signal(signal.SIGKILL)
                killed = time.time()
                victim.wait(timeout=10)
                dead_wrote = await last_part(survivor_url, space)
                await eventually(
                    lambda: heard(dead_wrote),
                    back_within_s + 10,
                    "the tone again, in parts the survivor made",
                    interval=0.1,
                )
                back = min(
                    p.arrived
                    for p in listener.parts
                    if (p.msn, p.index) > dead_wrote and toned(listener, p, tone_hz)
                )
            finally:
                stop.set()
                following.cancel()
                await asyncio.gather(following, return_exceptions=True)
    finally:
        await speaker.close()
    return Drill(
        killed=killed,
        back=back,
        republished=speaker.published_at[published:],
        failures=list(speaker.failures),
        parts=list(listener.parts),
        dead_wrote=dead_wrote,
    )
