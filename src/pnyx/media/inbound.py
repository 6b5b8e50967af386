"""A speaker's voice between the network and the mix: Opus packets in as they arrive,
20 ms float32 mono frames out, each played at its deadline, decoded in the mix clock's
thread, losses concealed. This is the speaker's jitter buffer.

The ingest session (on the event loop) puts every Opus packet the speaker sends — its
payload, RTP timestamp and arrival time, :class:`EncodedFrame` — on a
:class:`~pnyx.media.frames.FrameQueue` (thread-safe, bounded) as it arrives, in arrival
order: nothing is held on the loop. Each tick the clock's thread asks every speaker's
:class:`SpeakerInput` for the frame due then, and it decodes it with the speaker's own
:class:`~pnyx.media.opus.OpusDecoder`. Nothing crosses threads per packet but a deque
append.

**Playout deadlines.** Every packet's *transit* (its arrival time less its RTP timestamp
in seconds) is recorded. Over the last :data:`WINDOW` packets, the fastest is the base
(the link's own delay plus the clocks' offset) and the others' excess over it is the jitter
the link showed; the playout delay is the :data:`DELAY_QUANTILE` of that excess, between
the floor (the setting ``jitter_min_frames``) and :data:`MAX_DELAY_S`. A frame with
timestamp ``t`` is due at ``t + base + delay``, so

* on loopback or a quiet LAN the delay is about nothing, and a link whose packets arrive
  0 to 40 ms late holds about 38 ms: what the measured jitter needs, no fixed count of
  frames;
* reordering within the delay costs nothing (frames are played in timestamp order,
  whatever order they came in);
* the playout point follows the target: one frame of concealment is inserted when the
  delay grows (at most one per :data:`GROW_EVERY_S`), one frame is skipped when the frame
  being played is more than 1.5 frames older than due (the delay came down, or the
  clocks drifted; at most one per :data:`SHRINK_EVERY_S`);
* when a speaker starts (or resumes after silence or DTX) their first frame waits for its
  deadline; frames whose deadline passed by more than a frame are a backlog and are
  dropped, not played late. A burst after a stall (of the link, or of the node's own
  event loop: arrival is stamped there) is jitter like any other: the delay grows for as
  long as the window remembers it (2 s), at most to :data:`MAX_DELAY_S`, then comes
  back down; stalls that keep coming keep it up, so that a CPU-starved node conceals less.

**Losses are concealed**, as far as the decoder can: a frame missing at its deadline is
rebuilt from the next packet's in-band FEC when that packet is already in (senders that
negotiate ``useinbandfec=1``, as browsers do, put a low-rate copy of each frame in the
next packet), else by packet loss concealment, and given up: arriving later, it is
dropped (``late``). With nothing queued at all, concealment goes on for up to
:data:`MAX_CONCEAL_FRAMES` frames (libopus fades it out), then silence (None): a speaker
who stopped sending, or uses DTX, goes quiet, and their next packet starts anew.

A sender whose timestamps jump (a restarted encoder: its packets seem to arrive a second
earlier than any before, or five seconds later) starts a new timeline: what was pending
is dropped and the delay is measured anew. **A stream that runs slower than real time**
(a sender that cannot keep up, or a node whose event loop falls further and further
behind, so every packet arrives later than the one before by more than the most the
buffer holds) would otherwise have every packet dropped as stale for ever: after
:data:`RESYNC_AFTER` packets in a row dropped that way the playout point is moved to the
newest one (the window's old transits forgotten) and the most is held, so the speaker
is heard again, with gaps where the stream falls behind, rather than never (a stream at
3/4 of real time: about half the ticks play the speaker, the rest conceal or are silent).
Packets of other durations than 20 ms (2.5 to 120 ms) are re-cut into 20 ms frames.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from pnyx.media import metrics
from pnyx.media.aac import CodecError
from pnyx.media.frames import FrameQueue
from pnyx.media.mixer import FRAME_SAMPLES, Frame
from pnyx.media.opus import OpusDecoder

RATE = 48_000  # Opus's RTP clock
MAX_CONCEAL_FRAMES = 5  # 100 ms of concealment after the last packet, then silence
_MAX_GAP = MAX_CONCEAL_FRAMES * FRAME_SAMPLES  # a longer jump in timestamps is a new start

WINDOW = 100  # packets the delay is estimated over (2 s of 20 ms packets)
ESTIMATE_EVERY = 25  # packets between two estimates (half a second), or a late one
DELAY_QUANTILE = 0.97  # of the packets' excess transit: the rest are concealed (FEC, PLC)
MAX_DELAY_S = 0.2  # the most a speaker is held back, however bad their link
GROW_EVERY_S = 0.06  # at most one frame inserted this often while the delay grows
SHRINK_EVERY_S = 0.2  # at most one frame skipped this often while it comes down
_SHRINK_AT = FRAME_SAMPLES * 3 // 2  # samples behind the deadline that make a skip
_GROW_AT = 0  # playing ahead of the deadline at all makes an insertion
# A packet arriving this much earlier than the fastest one so far (or this much later)
# is on a new timeline, not jitter: the sender's timestamps jumped forward (or back).
_NEW_TIMELINE_EARLIER_S = 1.0
_NEW_TIMELINE_LATER_S = 5.0  # beyond any stall a queue of mix_queue_frames still holds
RESYNC_AFTER = 10  # packets in a row too late to start from (200 ms): start at the newest
_MAX_PENDING = 64  # packets held at most (1.3 s of 20 ms packets): a flood is cut
_TS = 1 << 32  # RTP timestamps wrap
_HALF = 1 << 31
_MAX_TAKES = 12  # packets decoded for one frame at most (2.5 ms packets need 8)
_MAX_DRAIN = 256  # packets taken off the queue per tick at most
_EMPTY = np.zeros(0, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One Opus packet as it arrived."""

    data: bytes
    timestamp: int  # RTP, 48 kHz, as sent (wraps at 2**32)
    arrival: float  # time.monotonic() when it reached the node


class SpeakerInput:
    """One speaker's packets, played as 20 ms frames at their deadlines. Used by the mix
    clock's thread only (the queue's producer is the event loop)."""

    def __init__(
        self,
        queue: FrameQueue[EncodedFrame],
        *,
        min_delay_s: float = 0.0,
        max_delay_s: float = MAX_DELAY_S,
    ) -> None:
        self.queue = queue
        self.min_delay = min_delay_s
        self.max_delay = max(min_delay_s, max_delay_s)
        self.delay = min_delay_s  # seconds beyond the fastest packet: the playout delay
        self.late = 0  # packets that came after their deadline (dropped)
        self.skipped = 0  # frames dropped to come down to the delay (or a stale backlog)
        self.inserted = 0  # frames of concealment inserted to go up to it
        self.resyncs = 0  # times the playout point moved to the newest packet (RESYNC_AFTER)
        self._stale_run = 0  # packets dropped in a row as too late to start from
        self._decoder: OpusDecoder | None = None  # made in the clock's thread, at first use
        self._pending: dict[int, EncodedFrame] = {}  # by unwrapped timestamp
        self._last_raw: int | None = None  # the newest RTP timestamp seen, as sent
        self._last: int = 0  # ... unwrapped
        self._transits: deque[float] = deque(maxlen=WINDOW)
        self._since_estimate = 0
        self._base: float | None = None  # the fastest transit in the window
        self._next: int | None = None  # unwrapped timestamp of the next sample to play
        self._rest: Frame = _EMPTY  # samples short of a whole frame
        self._ready: deque[Frame] = deque()  # whole frames decoded, not yet taken
        self._conceal_left = 0
        self._adjusted_at = -math.inf
        self._plc = metrics.FRAMES_CONCEALED.labels("plc")
        self._fec = metrics.FRAMES_CONCEALED.labels("fec")
        self._late_metric = metrics.PLAYOUT_DROPPED.labels("late")
        self._stale_metric = metrics.PLAYOUT_DROPPED.labels("stale")
        self._shrink_metric = metrics.PLAYOUT_DROPPED.labels("shrink")

    def lag(self, now: float) -> float | None:
        """How long after it would have arrived on the speaker's fastest path the frame
        played at ``now`` was sent: the playout delay actually applied (None: not
        playing)."""
        if self._next is None or self._base is None:
            return None
        return now - self._base - self._next / RATE

    def take(self, now: float) -> Frame | None:
        """The frame due at ``now`` (the tick's time, ``time.monotonic()``'s clock): the
        speaker's audio (a fresh array), concealment, or None (silence)."""
        self._drain()
        if self._ready:
            return self._ready.popleft()
        if self._next is None:
            if not self._start(now):
                return None
        elif not len(self._rest):
            inserted = self._adjust(now)
            if inserted is not None:
                return inserted
        for _ in range(_MAX_TAKES):
            item = self._pending.pop(self._next, None) if self._next is not None else None
            if item is None:
                return self._missing(now)
            if not self._decode(item):
                return self._missing(now)  # a corrupt packet: concealed like a lost one
            if self._ready:
                return self._ready.popleft()
        return None  # pragma: no cover - a flood of sub-frame packets

    # -- arrivals ----------------------------------------------------------------------
    def _drain(self) -> None:
        queue = self.queue
        for _ in range(_MAX_DRAIN):
            item = queue.take()
            if item is None:
                return
            self._arrived(item)

    def _arrived(self, item: EncodedFrame) -> None:
        raw = item.timestamp
        ts = self._unwrap(raw)
        transit = item.arrival - ts / RATE
        base = self._base
        if (
            base is not None
            and not -_NEW_TIMELINE_EARLIER_S < transit - base < _NEW_TIMELINE_LATER_S
        ):
            self._new_timeline()  # the sender's timestamps jumped (a restarted encoder)
            ts = self._unwrap(raw)
            transit = item.arrival - ts / RATE
        self._transits.append(transit)
        if self._base is None or transit < self._base:
            self._base = transit
        self._since_estimate += 1
        if self._next is not None and ts < self._next:
            self.late += 1  # its deadline passed: concealed already, or played around
            self._late_metric.inc()
            self._estimate()  # at once: the delay may have to grow
            return
        if self._since_estimate >= ESTIMATE_EVERY:
            self._estimate()
        pending = self._pending
        pending[ts] = item
        if len(pending) > _MAX_PENDING:
            del pending[min(pending)]
            self.skipped += 1
            self._stale_metric.inc()

    def _unwrap(self, raw: int) -> int:
        """``raw`` on the speaker's unwrapped timeline (reordered packets included)."""
        if self._last_raw is None:
            self._last_raw = self._last = raw
            return raw
        step = (raw - self._last_raw) % _TS
        if step >= _HALF:
            step -= _TS  # an older packet (reordered)
        ts = self._last + step
        if step > 0:
            self._last_raw, self._last = raw, ts
        return ts

    def _new_timeline(self) -> None:
        """Forget the old timeline: what is pending on it, its transits, where it played."""
        self.skipped += len(self._pending)
        self._stale_metric.inc(len(self._pending))
        self._pending.clear()
        self._transits.clear()
        self._since_estimate = 0
        self._base = None
        self._last_raw = None
        self._next = None
        self._rest = _EMPTY

    def _estimate(self) -> None:
        """The base and the delay, from the window of transits."""
        self._since_estimate = 0
        spread = sorted(self._transits)
        base = spread[0]
        excess = spread[int(DELAY_QUANTILE * (len(spread) - 1))] - base
        self._base = base
        self.delay = min(self.max_delay, max(self.min_delay, excess))
        metrics.PLAYOUT_DELAY.observe(self.delay)

    def _due(self, now: float) -> float:
        """The (unwrapped) timestamp due at ``now``."""
        assert self._base is not None
        return (now - self._base - self.delay) * RATE

    # -- playing -----------------------------------------------------------------------
    def _start(self, now: float) -> bool:
        """Begin at the first frame whose deadline has come, dropping a stale backlog."""
        pending = self._pending
        if not pending:
            return False
        due = self._due(now)
        newest: tuple[int, EncodedFrame] | None = None
        for ts in sorted(pending):
            if ts + FRAME_SAMPLES > due:
                if ts > due:
                    return False  # not yet: wait for its deadline
                self._next = ts
                self._rest = _EMPTY
                self._stale_run = 0
                return True
            newest = ts, pending.pop(ts)  # its deadline passed a frame ago: a backlog
            self.skipped += 1
            self._stale_metric.inc()
            self._stale_run += 1
        if newest is not None and self._stale_run >= RESYNC_AFTER:
            self._resync(*newest)
        return False

    def _resync(self, ts: int, newest: EncodedFrame) -> None:
        """Every packet for a while came too late to start from: the stream runs slower
        than real time. Play from the newest one's transit on, as if it were the fastest,
        holding the most (the stream keeps falling behind: the longer it stays playable,
        the more of it is heard before the next resync)."""
        transit = newest.arrival - ts / RATE
        self._transits.clear()
        self._transits.append(transit)
        self._since_estimate = 0
        self._base = transit
        self.delay = self.max_delay
        self._stale_run = 0
        self.resyncs += 1
        metrics.PLAYOUT_RESYNCS.inc()

    def _adjust(self, now: float) -> Frame | None:
        """Follow the target delay: skip a frame, or return one inserted."""
        assert self._next is not None
        behind = self._due(now) - self._next
        if now - self._adjusted_at < GROW_EVERY_S:
            return None
        if behind >= _SHRINK_AT:
            if now - self._adjusted_at < SHRINK_EVERY_S:
                return None
            self._adjusted_at = now
            self._pending.pop(self._next, None)
            self._next += FRAME_SAMPLES
            self.skipped += 1
            self._shrink_metric.inc()
            return None
        if behind < _GROW_AT and self._decoder is not None:
            self._adjusted_at = now
            self.inserted += 1
            self._plc.inc()
            try:
                return self._decoder.conceal()
            except CodecError:
                return None
        return None

    def _missing(self, now: float) -> Frame | None:
        """The next frame is not there: conceal it, or go quiet (and start anew)."""
        assert self._next is not None
        pending = self._pending
        if pending and min(pending) - self._next > _MAX_GAP:
            self._next = None  # a jump (DTX, a pause): a new start at its deadline
            return self.take(now) if self._start(now) else None
        if not pending:
            if self._conceal_left <= 0 or self._decoder is None:
                self._next = None  # stopped: silence until the next packet
                self._rest = _EMPTY
                return None
            self._conceal_left -= 1
        decoder = self._opus()
        follow = pending.get(self._next + FRAME_SAMPLES)
        try:
            if follow is not None:
                self._fec.inc()
                pcm = decoder.recover(follow.data)
            else:
                self._plc.inc()
                pcm = decoder.conceal()
        except CodecError:
            pcm = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        self._play(pcm, self._next)
        return self._ready.popleft() if self._ready else None

    def _opus(self) -> OpusDecoder:
        if self._decoder is None:
            self._decoder = OpusDecoder()
        return self._decoder

    def _decode(self, item: EncodedFrame) -> bool:
        assert self._next is not None
        try:
            pcm = self._opus().decode(item.data)
        except CodecError:
            metrics.DECODE_ERRORS.inc()
            return False
        self._conceal_left = MAX_CONCEAL_FRAMES
        self._play(pcm, self._next)
        return True

    def _play(self, pcm: Frame, ts: int) -> None:
        """``pcm`` (from ``ts`` on) into whole frames; the next sample due follows it."""
        self._next = ts + len(pcm)
        if len(pcm) == FRAME_SAMPLES and not len(self._rest):
            self._ready.append(pcm)
            return
        buf = np.concatenate([self._rest, pcm]) if len(self._rest) else pcm
        whole = len(buf) - len(buf) % FRAME_SAMPLES
        for i in range(0, whole, FRAME_SAMPLES):
            self._ready.append(buf[i : i + FRAME_SAMPLES])
        self._rest = buf[whole:]
