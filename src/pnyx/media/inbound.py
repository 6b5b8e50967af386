"""A speaker's voice between their jitter buffer and the mix: Opus packets in, 20 ms
float32 mono frames out, decoded in the mix clock's thread, losses concealed.

The ingest session (on the event loop) puts every frame its jitter buffer releases — the
Opus payload and its RTP timestamp, :class:`EncodedFrame` — on a
:class:`~pnyx.media.frames.FrameQueue` (thread-safe, bounded, trimmed to a target depth).
Each tick the clock's thread takes one per speaker through their :class:`SpeakerInput`,
which decodes it with the speaker's own :class:`~pnyx.media.opus.OpusDecoder`. Nothing
crosses threads per packet but a deque append: no decoder thread per speaker, no
hand-back of decoded audio to the loop (aiortc's own receive path, which this replaces,
costs a thread wake-up, a task and a queue on the loop for every 20 ms of every speaker).

Losses are concealed, as far as the decoder can:

* a hole seen ahead (the next frame's RTP timestamp is further on than the samples
  played so far) is filled before that frame is played: one missing 20 ms frame is
  rebuilt from the next packet's in-band FEC (senders that negotiate
  ``useinbandfec=1``, as browsers do, put a low-rate copy of each frame in the next
  packet; libopus conceals when there is none), a longer hole with packet loss
  concealment, frame by frame;
* a tick that finds nothing queued (the packet is late or lost) plays concealment, up
  to :data:`MAX_CONCEAL_FRAMES` in a row after the last packet (libopus fades it out),
  then silence (None): a speaker who stopped sending, or who uses DTX, goes quiet. A
  packet that turns up after its slot was concealed is still played, which puts that
  speaker one frame later: the frame is owed, and the next hole is not filled for as
  many frames as are owed (so a lost packet, which shows up as an empty tick first and a
  hole later, costs one frame of concealment, not two and a frame of delay);
* holes that were made on purpose are never filled: frames the jitter queue trimmed
  (a backlog turned away) and frames the jitter buffer dropped to shrink
  (:attr:`EncodedFrame.resync`).

Packets of other durations than 20 ms (2.5 to 120 ms) are re-cut into 20 ms frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from pnyx.media import metrics
from pnyx.media.aac import CodecError
from pnyx.media.frames import FrameQueue
from pnyx.media.mixer import FRAME_SAMPLES, Frame
from pnyx.media.opus import OpusDecoder

MAX_CONCEAL_FRAMES = 5  # 100 ms of concealment after the last packet, then silence
_MAX_GAP = MAX_CONCEAL_FRAMES * FRAME_SAMPLES  # a longer jump in timestamps is a new start
_TS = 1 << 32  # RTP timestamps wrap
_MAX_TAKES = 12  # queue items read for one frame at most (2.5 ms packets need 8)
_EMPTY = np.zeros(0, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One Opus packet as the jitter buffer released it."""

    data: bytes
    timestamp: int  # RTP, 48 kHz
    resync: bool = False  # frames before this one were dropped on purpose: no hole to fill


class SpeakerInput:
    """One speaker's queue of Opus packets, read as 20 ms frames. Used by the mix
    clock's thread only (the queue's producer is the event loop)."""

    def __init__(self, queue: FrameQueue[EncodedFrame]) -> None:
        self.queue = queue
        self._decoder: OpusDecoder | None = None  # made in the clock's thread, at first use
        self._rest: Frame = _EMPTY  # decoded samples short of a whole frame
        self._ready: deque[Frame] = deque()  # whole frames decoded, not yet taken
        self._held: EncodedFrame | None = None  # a frame waiting behind a hole being filled
        self._expected: int | None = None  # RTP timestamp of the next sample due
        self._conceal_left = 0
        self._owed = 0  # frames played late after their slot was concealed
        self._plc = metrics.FRAMES_CONCEALED.labels("plc")
        self._fec = metrics.FRAMES_CONCEALED.labels("fec")

    def take(self, slack: int = 0) -> Frame | None:
        """The next 20 ms (a fresh array), concealment, or None (silence)."""
        if self._ready:
            return self._ready.popleft()
        for _ in range(_MAX_TAKES):
            item, self._held = self._held, None
            if item is None:
                trimmed = self.queue.trimmed
                item = self.queue.take(slack)
                if self.queue.trimmed != trimmed:
                    self._resync()  # the queue turned a backlog away: not a hole
            if item is None:
                return self._underrun()
            if item.resync:
                self._resync()
            filled = self._fill_hole(item)
            if filled is not None:
                return filled
            if not self._decode(item):
                return self._underrun()  # a corrupt packet: concealed like a lost one
            if self._ready:
                return self._ready.popleft()
        return None  # pragma: no cover - a flood of sub-frame packets

    def _opus(self) -> OpusDecoder:
        if self._decoder is None:
            self._decoder = OpusDecoder()
        return self._decoder

    def _resync(self) -> None:
        """Forget the timeline: the next frame plays as it comes."""
        self._expected = None
        self._owed = 0

    def _fill_hole(self, item: EncodedFrame) -> Frame | None:
        """Before ``item``, one frame of a hole in the timestamps (None: no hole)."""
        expected = self._expected
        if expected is None or len(self._rest):
            return None
        gap = (item.timestamp - expected) % _TS
        if not 0 < gap <= _MAX_GAP:
            return None
        if self._owed:  # frames played late already stand in for this much of the hole
            paid = min(self._owed, gap // FRAME_SAMPLES)
            self._owed -= paid
            gap -= paid * FRAME_SAMPLES
            expected = (expected + paid * FRAME_SAMPLES) % _TS
            self._expected = expected
            if gap <= 0:
                return None
        self._held = item
        self._expected = (expected + FRAME_SAMPLES) % _TS
        try:
            if gap == FRAME_SAMPLES:
                self._fec.inc()
                return self._opus().recover(item.data)
            self._plc.inc()
            return self._opus().conceal()
        except CodecError:
            return None

    def _underrun(self) -> Frame | None:
        if self._conceal_left <= 0 or self._expected is None or self._decoder is None:
            return None
        self._conceal_left -= 1
        self._expected = (self._expected + FRAME_SAMPLES) % _TS
        self._rest = _EMPTY
        self._plc.inc()
        try:
            return self._decoder.conceal()
        except CodecError:
            return None

    def _decode(self, item: EncodedFrame) -> bool:
        try:
            pcm = self._opus().decode(item.data)
        except CodecError:
            metrics.DECODE_ERRORS.inc()
            return False
        if self._expected is not None:
            late = (self._expected - item.timestamp) % _TS  # its slot was concealed
            if 0 < late <= _MAX_GAP:
                self._owed += late // FRAME_SAMPLES
        self._expected = (item.timestamp + len(pcm)) % _TS
        self._conceal_left = MAX_CONCEAL_FRAMES
        if len(pcm) == FRAME_SAMPLES and not len(self._rest):
            self._ready.append(pcm)
            return True
        buf = np.concatenate([self._rest, pcm]) if len(self._rest) else pcm
        whole = len(buf) - len(buf) % FRAME_SAMPLES
        for i in range(0, whole, FRAME_SAMPLES):
            self._ready.append(buf[i : i + FRAME_SAMPLES])
        self._rest = buf[whole:]
        return True
