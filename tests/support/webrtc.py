"""A real WebRTC speaker for the tests and benches, on aiortc: it publishes a tone the way
a stage member's client does (one WHIP-shaped HTTP exchange) and records what the server
sends back on the same peer connection (the speaker's mix-minus).

    track = ToneTrack(523.0)
    async with await publish(node.url, space, host.token, track) as me:
        await me.connected()
        ...  # me.received holds the mix-minus, with arrival times

Everything stays on this machine: no ICE servers, host candidates only (unless a test
hands ``publish`` an ``RTCConfiguration``, e.g. TURN only: tests/support/ice.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import ssl
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import av
import httpx
import numpy as np
import numpy.typing as npt
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from tests.support import tones
from tests.support.poll import Seen, eventually

RATE = 48_000
FRAME_S = 0.02
FRAME_SAMPLES = int(RATE * FRAME_S)  # 960
_TIME_BASE = fractions.Fraction(1, RATE)


class ToneTrack(MediaStreamTrack):
    """A microphone that hears a pure tone: 20 ms frames of 48 kHz mono, paced in real time.

    Frame ``n`` holds the samples "captured" during ``[t0 + n·20 ms, t0 + (n+1)·20 ms)``
    and is handed to the sender at the end of that interval, as a real capture device
    would (the first frame at once: ``t0`` is 20 ms before the first ``recv``).
    The tone can be switched on and off; :meth:`switch` returns the capture instant
    (``time.time()`` scale) of the first sample in the new state, which is the reference
    for latency measurements. A frame delivered late (a busy event loop) keeps its
    nominal capture instant, so any lateness counts against the measured latency.
    """

    kind = "audio"

    def __init__(self, freq_hz: float, amplitude: float = 0.2, *, on: bool = True) -> None:
        super().__init__()
        if not 0 <= amplitude <= 1:
            raise ValueError("amplitude must be in [0, 1]")
        self.freq_hz = freq_hz
        self.amplitude = amplitude
        self._on = on
        self._n = 0  # frames delivered
        self._t0: float | None = None
        self._pending: list[tuple[bool, asyncio.Future[float]]] = []
        self.switches: list[tuple[float, bool]] = []  # (capture instant, on)

    @property
    def on(self) -> bool:
        return self._on

    def switch(self, on: bool) -> asyncio.Future[float]:
        """Switch the tone on or off from the next frame; the future resolves to the capture
        instant of that frame's first sample once the frame has been delivered."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pending.append((on, done))
        return done

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.time() - FRAME_S
        else:
            await asyncio.sleep(max(0.0, self._t0 + (self._n + 1) * FRAME_S - time.time()))
        captured = self._t0 + self._n * FRAME_S
        resolved = []
        for on, done in self._pending:
            self._on = on
            self.switches.append((captured, on))
            resolved.append(done)
        self._pending.clear()
        amplitude = self.amplitude if self._on else 0.0
        pcm = tones.sine(self.freq_hz, FRAME_SAMPLES, amplitude, start=self._n * FRAME_SAMPLES)
        frame = av.AudioFrame.from_ndarray(
            np.round(pcm * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = self._n * FRAME_SAMPLES
        frame.time_base = _TIME_BASE
        self._n += 1
        for done in resolved:
            if not done.done():
                done.set_result(captured)
        return frame


@dataclass
class Recording:
    """Audio received on a WebRTC track: mono float32 samples at 48 kHz, and when each
    frame arrived (``time.time()`` when the decoded frame reached us)."""

    rate: int = RATE
    _chunks: list[npt.NDArray[np.float32]] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)  # sample index of each chunk
    _arrivals: list[float] = field(default_factory=list)
    _length: int = 0

    def append(self, samples: npt.NDArray[np.float32], arrived: float) -> None:
        self._chunks.append(samples)
        self._starts.append(self._length)
        self._arrivals.append(arrived)
        self._length += len(samples)

    def __len__(self) -> int:
        return self._length

    @property
    def seconds(self) -> float:
        return self._length / self.rate

    @property
    def last_arrival(self) -> float | None:
        return self._arrivals[-1] if self._arrivals else None

    def index_at(self, moment: float) -> int:
        """Index of the first sample that arrived at or after ``moment``."""
        i = self._chunk_at(moment)
        return self._starts[i] if i < len(self._starts) else self._length

    def samples(self, since: float | None = None, until: float | None = None) -> npt.NDArray[Any]:
        """The samples that arrived in ``[since, until)`` (wall-clock), concatenated."""
        first = 0 if since is None else self._chunk_at(since)
        last = len(self._chunks) if until is None else self._chunk_at(until)
        if first >= last:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._chunks[first:last])

    def _chunk_at(self, moment: float) -> int:
        return int(np.searchsorted(np.asarray(self._arrivals), moment, side="left"))

    def arrival_of(self, index: int) -> float:
        """When sample ``index`` was heard: its frame's arrival plus its offset in the frame."""
        i = int(np.searchsorted(np.asarray(self._starts), index, side="right")) - 1
        if i < 0 or index >= self._length:
            raise IndexError(index)
        return self._arrivals[i] + (index - self._starts[i]) / self.rate

    def onset(self, freq: float, after: float) -> float | None:
        """Wall-clock time at which ``freq`` was first heard switching on, among samples
        that arrived at or after ``after``; None if it has not (yet)."""
        start = self.index_at(after)
        if self._length - start < self.rate // 10:
            return None
        found = tones.onset(self.samples(since=after), freq, rate=self.rate)
        return None if found is None else self.arrival_of(start + found)

    def gaps(self, since: float | None = None) -> float:
        """The longest interval between consecutive frame arrivals (seconds)."""
        arrivals = np.asarray(self._arrivals)
        if since is not None:
            arrivals = arrivals[arrivals >= since]
        return float(np.diff(arrivals).max()) if len(arrivals) > 1 else 0.0


class PublishRefused(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"publish refused: {status} {body[:300]}")
        self.status = status
        self.body = body


class Speaker:
    """One published peer connection. Use :func:`publish` to make one."""

    def __init__(
        self,
        pc: RTCPeerConnection,
        track: ToneTrack,
        token: str,
        client: httpx.AsyncClient,
        own_client: bool,
    ) -> None:
        self.pc = pc
        self.track = track
        self.received = Recording()
        self.resource: str | None = None  # the Location to DELETE
        self.redirects: list[str] = []  # publish URLs that answered 307
        self.retries = 0  # 503s retried
        self.states: list[str] = []  # the peer connection's connectionState history
        self.delete_status: int | None = None
        self._token = token
        self._client = client
        self._own_client = own_client
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

        @pc.on("track")
        def _on_track(remote: MediaStreamTrack) -> None:
            if remote.kind == "audio" and self._reader is None:
                self._reader = asyncio.ensure_future(self._read(remote))

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            self.states.append(pc.connectionState)

    async def _read(self, remote: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await remote.recv()
                arrived = time.time()
                pcm = frame.to_ndarray()
                channels = len(frame.layout.channels)
                mono = pcm[0] if frame.format.is_planar else pcm.reshape(-1)[::channels]
                if mono.dtype == np.int16:
                    mono = mono.astype(np.float32) / 32768.0
                self.received.append(np.asarray(mono, dtype=np.float32), arrived)

    async def connected(self, within: float = 10.0) -> None:
        """Wait until the peer connection is up (ICE and DTLS done)."""
        if self.pc.connectionState in ("failed", "closed"):
            raise ConnectionError(f"peer connection is {self.pc.connectionState}")
        await eventually(
            lambda: Seen(self.pc.connectionState == "connected", self.pc.connectionState),
            within,
            "ICE+DTLS",
            interval=0.02,
        )

    async def hearing(self, seconds: float = 0.5, within: float = 10.0) -> None:
        """Wait until some mix-minus audio (``seconds`` of it) has been received."""
        await eventually(
            lambda: Seen(self.received.seconds >= seconds, f"{self.received.seconds:.2f} s"),
            within,
            f"{seconds} s of mix-minus audio",
            interval=0.02,
        )

    async def close(self) -> None:
        """Leave cleanly: DELETE the resource, then close the peer connection."""
        if self._closed:
            return
        try:
            if self.resource is not None:
                with contextlib.suppress(httpx.HTTPError):
                    r = await self._client.delete(self.resource, headers=self._auth)
                    self.delete_status = r.status_code
        finally:
            await self._shutdown()

    async def drop(self) -> None:
        """Lose the network: from now on nothing leaves or reaches this peer (no DELETE,
        no RTCP BYE, no DTLS close_notify reach the server). Like pulling the cable.
        :meth:`close` still has to be called to free the local resources."""
        self.track.stop()
        for transceiver in self.pc.getTransceivers():
            dtls = transceiver.sender.transport
            if dtls is None:
                continue
            # aiortc 1.16 internals: RTCDtlsTransport → RTCIceTransport → aioice Connection.
            connection = dtls.transport._connection
            for protocol in list(connection._protocols):
                transport = getattr(protocol, "transport", None)
                if transport is not None:
                    transport.abort()
        self.resource = None  # never DELETE: the server has to notice on its own

    async def _shutdown(self) -> None:
        self._closed = True
        self.track.stop()
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._own_client:
            await self._client.aclose()

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    async def __aenter__(self) -> Speaker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def publish(
    base_url: str,
    space: str,
    token: str,
    track: ToneTrack,
    *,
    client: httpx.AsyncClient | None = None,
    http_timeout: float = 20.0,
    retry_for: float = 10.0,
    configuration: RTCConfiguration | None = None,
    verify: ssl.SSLContext | bool = True,
) -> Speaker:
    """Publish ``track`` to ``space`` as the account behind ``token``.

    Creates the offer (waiting for ICE gathering), POSTs it as ``application/sdp``, follows
    one 307 to the node that runs the space's stage, retries a 503 (no stage node yet) for
    up to ``retry_for`` seconds as ``Retry-After`` says, and applies the answer. Raises
    :class:`PublishRefused` with the status for any other answer than 201 (and closes the
    peer connection). The returned speaker records its mix-minus in ``.received``.
    ``configuration``: the peer connection's (default: no ICE servers, host candidates).
    ``verify``: how its own HTTP client checks an HTTPS server (a context trusting a
    test certificate, say).
    """
    own = client is None
    http = client or httpx.AsyncClient(timeout=http_timeout, verify=verify)
    pc = RTCPeerConnection(configuration or RTCConfiguration(iceServers=[]))
    speaker = Speaker(pc, track, token, http, own)
    try:
        pc.addTrack(track)  # one sendrecv transceiver: the mix-minus comes back on it
        await pc.setLocalDescription(await pc.createOffer())  # gathers candidates
        url = f"{base_url.rstrip('/')}/v1/spaces/{space}/publish"
        headers = {**speaker._auth, "Content-Type": "application/sdp"}
        body = pc.localDescription.sdp
        deadline = time.monotonic() + retry_for
        while True:
            r = await http.post(url, content=body, headers=headers)
            if r.status_code == 307 and not speaker.redirects:
                speaker.redirects.append(url)
                url = urljoin(url, r.headers["location"])
                continue
            if r.status_code != 503 or time.monotonic() > deadline:
                break
            # Nobody runs the space's stage yet (or it is moving): retry as told.
            speaker.retries += 1
            await asyncio.sleep(min(2.0, float(r.headers.get("retry-after", "0.5"))))
        if r.status_code != 201:
            raise PublishRefused(r.status_code, r.text)
        if "location" not in r.headers:
            raise PublishRefused(r.status_code, "201 without a Location header")
        speaker.resource = urljoin(str(r.url), r.headers["location"])
        answer = RTCSessionDescription(sdp=r.text, type="answer")
        await pc.setRemoteDescription(answer)
    except BaseException:
        await speaker._shutdown()
        raise
    return speaker


async def gather(*coros: Awaitable[Speaker]) -> list[Speaker]:
    """Publish several speakers at once; if one fails, close the others."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        for r in results:
            if isinstance(r, Speaker):
                await r.close()
        raise failures[0]
    return [r for r in results if isinstance(r, Speaker)]
