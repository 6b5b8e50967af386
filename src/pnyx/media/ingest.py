"""Speakers' WebRTC, terminated with aiortc: the only module that imports it.

:meth:`IngestSession.accept` takes a speaker's SDP offer (WHIP-style, non-trickle, Opus)
and returns a session whose answer carries every ICE candidate. On the one peer
connection:

* the speaker's audio comes in: aiortc's receive path up to its jitter buffer, which
  is replaced by :class:`_Arrivals` (every packet released as it arrives), so that every
  packet, still Opus, goes on :attr:`IngestSession.inbound` with its RTP timestamp and
  arrival time (an :class:`~pnyx.media.inbound.EncodedFrame` on a thread-safe, bounded
  queue) — the mix clock's thread orders, times and decodes them (media/inbound.py: the
  speaker's jitter buffer is there, with playout deadlines), instead of aiortc's decoder
  thread, which is never fed;
* their mix-minus goes out: the mixer Opus-encodes it in the clock's thread and puts the
  packets on :attr:`IngestSession.outbound`; when the mixer wakes the session (on the
  loop, once per tick) it sends them at once (:class:`~pnyx.media.rtp_path.DirectSender`:
  aiortc's RTP serialisation and SRTP, without its sending task).

Both directions skip aiortc's per-packet tasks and queues (media/rtp_path.py).

No STUN or TURN server is configured on the node's side (aiortc would otherwise ask a
public one): the stage node is reached at its host addresses, or at the public ones of a
1:1 NAT; speakers bring their own STUN/TURN (handed to them by the API). The
:class:`~pnyx.media.ice.IcePolicy` decides which of the speaker's candidates the node
checks, and which addresses and ports it gathers on (media/ice.py). The session ends by
itself when the connection fails or closes, when the speaker's track ends, when ICE has
not connected within ``connect_timeout_s``, or when no audio has come in for
``idle_timeout_s`` once connected (a peer that vanished without a word: browsers and
aiortc keep sending frames, silent ones, while muted, so only a dead peer goes quiet; ICE
consent would take ~30 s to notice); :attr:`IngestSession.ended` is then set and
:attr:`IngestSession.why` says why. The owner closes it. :attr:`IngestSession.heard` is
set at the first audio frame: the owner waits for it before letting a new session replace
a speaker's working one (services/media.py, make-before-break).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from pnyx.errors import ErrorKind, PnyxError
from pnyx.media import ice, metrics, rtp_path
from pnyx.media.frames import FrameQueue
from pnyx.media.inbound import EncodedFrame
from pnyx.media.opus import OpusPacket

log = logging.getLogger(__name__)

# What a broken or unacceptable offer makes aiortc raise while applying it.
_REFUSED = (
    ValueError,
    LookupError,
    TypeError,
    InvalidAccessError,
    InvalidStateError,
    OperationError,
)


# aiortc's audio jitter buffer: 16 packets, a frame released once 4 newer ones are in (80 ms)
# (GapSkippingJitterBuffer's, for the test and bench clients; sessions use _Arrivals).
JITTER_CAPACITY = 16
JITTER_PREFETCH = 4


class GapSkippingJitterBuffer(JitterBuffer):
    """aiortc's audio jitter buffer, except that a missing packet does not hold up the
    frames after it: the oldest frame is released once ``prefetch`` newer frames are in,
    *counting across gaps*, so a packet still missing when its turn comes is simply lost.

    aiortc's own stops counting at the first gap: after one lost packet it releases
    nothing until the buffer overflows (16 packets later, ~300 ms without audio) and from
    then on releases one frame per arrival with 14 still held instead of 4 — one lost
    packet adds ~200 ms to that speaker's latency for the rest of the session. A packet
    arriving after its turn is dropped as too old, as aiortc drops any.
    """

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        origin = self._origin
        if origin is None:
            return None
        groups: list[tuple[int, list[RtpPacket]]] = []  # per frame: (offset, packets)
        previous = -2
        for offset in range(self._capacity):
            packet = self._packets[(origin + offset) % self._capacity]
            if packet is None:
                continue
            if groups and offset == previous + 1 and packet.timestamp == groups[-1][1][0].timestamp:
                groups[-1][1].append(packet)  # the same frame, continued
            else:
                groups.append((offset, [packet]))
                if len(groups) > max(self._prefetch, 1):
                    first = groups[0][1]
                    self.remove(groups[1][0])  # up to the next frame, gaps included
                    return JitterFrame(
                        data=b"".join(p._data for p in first),  # type: ignore[attr-defined]
                        timestamp=first[0].timestamp,
                    )
            previous = offset
        return None


class _Arrivals(JitterBuffer):
    """Stands in for an aiortc receiver's jitter buffer: every audio packet is released
    as it arrives, with the RTP timestamp it was sent with (``raw``: aiortc's timestamp
    mapper, which the frame passes on aiortc's own path, takes any older timestamp for a
    wrap). The speaker's :class:`~pnyx.media.inbound.SpeakerInput` orders and times them."""

    def __init__(self) -> None:
        super().__init__(capacity=JITTER_CAPACITY)

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        data = packet._data  # type: ignore[attr-defined]
        return False, _Arrival(data, packet.timestamp)


class _Arrival(JitterFrame):
    def __init__(self, data: bytes, timestamp: int) -> None:
        super().__init__(data, timestamp)
        self.raw = timestamp


OnFrame = Callable[[RTCRtpCodecParameters, bytes, int], None]


class _DecoderTap:
    """Stands in for an aiortc receiver's decoder queue: every packet its jitter buffer
    (:class:`_Arrivals`) releases goes to ``on_frame`` (on the loop) instead of aiortc's
    decoder thread, which waits on the real queue for the end-of-stream ``None`` alone."""

    def __init__(self, real: queue.Queue[Any], on_frame: OnFrame) -> None:
        self._real = real
        self._on_frame = on_frame

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:
            self._real.put(None)  # the receiver stops: its thread ends, then its track
            return
        frame = item[1]
        assert isinstance(frame, _Arrival)
        self._on_frame(item[0], frame.data, frame.raw)

    def get(self) -> Any:  # aiortc's decoder thread
        return self._real.get()


def _take_over_receivers(pc: RTCPeerConnection, on_frame: OnFrame) -> None:
    """Give the audio receivers an :class:`_Arrivals` buffer and send every packet to
    ``on_frame`` rather than to a decoder thread (before any packet)."""
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if transceiver.kind != "audio" or receiver is None:
            continue
        if not hasattr(receiver, "_RTCRtpReceiver__jitter_buffer") or not hasattr(
            receiver, "_RTCRtpReceiver__decoder_queue"
        ):
            raise RuntimeError("this aiortc's receiver has no jitter buffer or decoder queue")
        receiver._RTCRtpReceiver__jitter_buffer = _Arrivals()
        receiver._RTCRtpReceiver__decoder_queue = _DecoderTap(
            receiver._RTCRtpReceiver__decoder_queue, on_frame
        )


def check_offer(offer_sdp: str) -> None:
    """Refuse (PnyxError MALFORMED) an offer that is not one sending audio m-section."""
    try:
        parsed = SessionDescription.parse(offer_sdp)
    except Exception as exc:  # aiortc's parser raises whatever the garbage provokes
        raise PnyxError(
            ErrorKind.MALFORMED, f"the SDP offer does not parse: {exc}", code="bad_sdp"
        ) from exc
    kinds = [m.kind for m in parsed.media]
    if kinds != ["audio"]:
        found = ", ".join(kinds) or "none"
        raise PnyxError(
            ErrorKind.MALFORMED,
            f"the SDP offer must have exactly one m=audio section (found: {found})",
            code="bad_sdp",
        )
    if not any(c.name.lower() == "opus" for c in parsed.media[0].rtp.codecs):
        raise PnyxError(
            ErrorKind.MALFORMED,
            "the SDP offer's audio must offer Opus (a=rtpmap:<pt> opus/48000/2): the stage "
            "mixes Opus only",
            code="bad_sdp",
        )
    direction = parsed.media[0].direction
    if direction not in (None, "sendrecv", "sendonly"):
        raise PnyxError(
            ErrorKind.MALFORMED,
            f"the SDP offer's audio is {direction}: publish with a=sendrecv (or a=sendonly)",
            code="bad_sdp",
        )


class _SendingTrack(MediaStreamTrack):
    """The track the mix-minus is sent for: it gives the answer its sending direction and
    the sender its kind. Its frames are never read: the session's
    :class:`~pnyx.media.rtp_path.DirectSender` sends the mixer's packets itself."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        super().stop()
        self._stopped.set()

    async def recv(self) -> OpusPacket:  # type: ignore[override]
        await self._stopped.wait()
        raise MediaStreamError


class IngestSession:
    """One speaker's peer connection. Create with :meth:`accept`; close with :meth:`close`."""

    def __init__(
        self,
        pc: RTCPeerConnection,
        *,
        inbound: FrameQueue[EncodedFrame],
        outbound: FrameQueue[OpusPacket],
    ) -> None:
        self.id = secrets.token_urlsafe(12)
        self.inbound = inbound
        self.outbound = outbound
        self.answer_sdp = ""
        self.ended = asyncio.Event()
        self.why = ""
        self.heard_at = 0.0  # loop time of the last audio frame from the speaker
        self.heard = asyncio.Event()  # the first audio frame came: it carries audio
        self._pc = pc
        self._send = _SendingTrack()
        self._direct = rtp_path.DirectSender()
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._closer: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._foreign = 0  # frames of a codec other than Opus, dropped

    def wake(self) -> None:
        """The mixer put a packet on :attr:`outbound` (call on the loop): send what it
        holds, trimmed to its target depth first (after a stalled loop, the newest)."""
        self._direct.send(iter(self.outbound.take, None))

    @classmethod
    async def accept(
        cls,
        offer_sdp: str,
        *,
        inbound: FrameQueue[EncodedFrame],
        outbound: FrameQueue[OpusPacket],
        connect_timeout_s: float,
        idle_timeout_s: float,
        policy: ice.IcePolicy = ice.IcePolicy(),  # noqa: B008 (frozen)
    ) -> IngestSession:
        """Answer ``offer_sdp``; PnyxError MALFORMED when it is unusable. ``inbound`` and
        ``outbound`` are the jitter queues to and from the mixer; ``policy`` the ICE rules
        (the speaker's candidates the node may check, where it gathers, its 1:1 NAT)."""
        check_offer(offer_sdp)
        filtered = ice.filter_offer(offer_sdp, policy, ice.own_addresses(policy))
        for _, why in filtered.dropped:
            metrics.ICE_CANDIDATES_DROPPED.labels(why).inc()
        if filtered.dropped:
            log.debug("ICE: not checking the candidates %s", filtered.dropped)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        session = cls(pc, inbound=inbound, outbound=outbound)
        try:
            pc.on("track", session._on_track)
            pc.on("connectionstatechange", session._on_state)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=filtered.sdp, type="offer"))
            except _REFUSED as exc:
                raise PnyxError(
                    ErrorKind.MALFORMED, f"the SDP offer was refused: {exc}", code="bad_sdp"
                ) from exc
            _take_over_receivers(pc, session._on_frame)
            ice.install_gatherer(pc, policy)
            pc.addTrack(session._send)
            rtp_path.check(pc)
            session._direct.install(pc)
            # aiortc gathers every candidate before returning: the answer is complete.
            await pc.setLocalDescription(await pc.createAnswer())
            rtp_path.receive_directly(pc)
            session.answer_sdp = ice.rewrite_answer(pc.localDescription.sdp, policy)
            if "\na=candidate:" not in session.answer_sdp:
                raise PnyxError(  # e.g. every port of ice_port_min..ice_port_max in use
                    ErrorKind.UNAVAILABLE,
                    "the stage node has no free ICE port right now; retry shortly",
                    code="no_ice_port",
                    retry_after=1.0,
                )
        except BaseException:
            await session.close()
            raise
        session._spawn(session._watchdog(connect_timeout_s, idle_timeout_s))
        return session

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _end(self, why: str) -> None:
        if not self.ended.is_set():
            self.why = why
            self.ended.set()
            metrics.SESSIONS_ENDED.labels(why).inc()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and not self._closed:
            self._spawn(self._read(track))

    def _on_state(self) -> None:
        state = self._pc.connectionState
        log.debug("session %s: connection %s", self.id, state)
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self._end(f"connection_{state}")

    def _on_frame(self, codec: RTCRtpCodecParameters, data: bytes, timestamp: int) -> None:
        """A packet of the speaker's audio (on the loop), as it arrived."""
        if codec.name.lower() != "opus":  # check_offer wants Opus offered; this one sent else
            self._foreign += 1
            if self._foreign == 1:
                log.warning("session %s: dropping %s audio: the stage mixes Opus", self.id, codec)
            return
        now = time.monotonic()  # the mix clock's clock (uvloop's loop.time() is cached)
        self.heard_at = self._loop.time()
        self.inbound.put(EncodedFrame(data, timestamp, now))
        if not self.heard.is_set():
            self.heard.set()

    async def _read(self, track: MediaStreamTrack) -> None:
        """Wait for the speaker's track to end (its frames come to :meth:`_on_frame`)."""
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                self._end("track_ended")
                return

    async def _watchdog(self, connect_timeout_s: float, idle_timeout_s: float) -> None:
        try:
            await asyncio.wait_for(self._connected.wait(), connect_timeout_s)
        except TimeoutError:
            self._end("connect_timeout")
            return
        loop = asyncio.get_running_loop()
        self.heard_at = max(self.heard_at, loop.time())
        while True:
            quiet = loop.time() - self.heard_at
            if quiet >= idle_timeout_s:
                log.info("session %s: no audio for %.1f s: ending it", self.id, quiet)
                self._end("idle")
                return
            await asyncio.sleep(idle_timeout_s - quiet)

    @property
    def connected(self) -> bool:
        return bool(self._pc.connectionState == "connected")

    async def close(self) -> None:
        """Close the peer connection and stop the session's tasks. Idempotent; a caller
        cancelled while waiting does not interrupt the closing (aiortc breaks if its
        close is cancelled half-way), which any later call awaits."""
        if self._closer is None:
            self._closed = True
            self._end("closed")
            self._closer = asyncio.create_task(self._close(), name=f"close-{self.id}")
        await asyncio.shield(self._closer)

    async def _close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._send.stop()
        with contextlib.suppress(Exception):  # closing a half-set-up connection may fail
            await self._pc.close()
