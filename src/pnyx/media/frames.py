"""20 ms audio frames between the network and the mixer: the thread-safe jitter queues
between the event loop and the mix clock's thread, and re-chunking of decoded audio.
No aiortc, no event loop.

Speakers' audio travels as *packed s16 stereo* 20 ms chunks (:data:`CHUNK_VALUES` int16
values, left/right interleaved): that is what aiortc's Opus decoder produces, so on the
event loop a decoded frame is only viewed as an array, never converted. The mixer converts
all speakers at once (:func:`to_mono`) in its own thread. Frames in any other format,
layout, rate or size go through :class:`PcmChunker` (an FFmpeg resampler made on first
need, and re-chunking).

:class:`FrameQueue` is the hand-off between threads: bounded (drop-oldest when full) *and*
with a target depth (trimmed down to it whenever it is read), so a backlog never turns
into standing latency.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import av
import numpy as np
import numpy.typing as npt

from pnyx.media import metrics
from pnyx.media.mixer import FRAME_SAMPLES, SAMPLE_RATE

T = TypeVar("T")
Pcm = npt.NDArray[np.int16]  # one 20 ms chunk: FRAME_SAMPLES stereo pairs, interleaved
CHUNK_VALUES = FRAME_SAMPLES * 2
SILENT_CHUNK: Pcm = np.zeros(CHUNK_VALUES, dtype=np.int16)
SILENT_CHUNK.setflags(write=False)
_S16_PAIR_TO_MONO = np.float32(1 / 65536)  # (L + R) / 2 / 32768


class FrameQueue(Generic[T]):
    """A bounded FIFO between one producer thread and one consumer thread, with a
    target depth (docs/conventions.md, rule 11).

    * :meth:`put` never blocks: when ``maxlen`` items are already queued the oldest is
      dropped (counted in ``pnyx_media_frames_dropped_total{queue}``);
    * :meth:`take` first drops the oldest items down to ``target`` (plus ``slack``: items
      that a late consumer is about to take back to back), counted in
      ``pnyx_media_frames_trimmed_total{queue}``, then returns the oldest;
    * with ``standing`` > 0, a queue that still holds an item after every one of
      ``standing`` takes in a row (a backlog below ``target`` that never drains: pure
      latency, left by a burst) drops its oldest item too (also counted as trimmed), so
      the depth a burst leaves is given back within ``standing`` takes instead of lasting
      until the producer next runs dry.

    Either side may run on any thread: ``collections.deque`` appends and pops are atomic
    in CPython. ``dropped`` is written by the producer only, ``trimmed`` by the consumer
    only. (A drop counted while the consumer takes at the same instant may be one too
    many: it is a statistic, not an invariant.)
    """

    def __init__(self, maxlen: int, target: int, queue: str = "", *, standing: int = 0) -> None:
        if not 1 <= target <= maxlen:
            raise ValueError(f"need 1 <= target ({target}) <= maxlen ({maxlen})")
        if standing < 0:
            raise ValueError("standing must be >= 0")
        self.standing = standing
        self._standing_run = 0  # takes in a row that left an item behind (the consumer's)
        self._items: deque[T] = deque(maxlen=maxlen)
        self.maxlen = maxlen
        self.target = target
        self.dropped = 0
        self.trimmed = 0
        self._dropped_metric = metrics.FRAMES_DROPPED.labels(queue or "other")
        self._trimmed_metric = metrics.FRAMES_TRIMMED.labels(queue or "other")

    def put(self, item: T) -> bool:
        """Enqueue; returns False when the oldest item had to be dropped to make room."""
        full = len(self._items) >= self.maxlen
        self._items.append(item)  # a deque with maxlen drops the oldest itself
        if full:
            self.dropped += 1
            self._dropped_metric.inc()
        return not full

    def take(self, slack: int = 0) -> T | None:
        """Trim to ``target + slack`` items, then dequeue the oldest (None when empty)."""
        items = self._items
        excess = len(items) - self.target - slack
        if excess > 0:
            try:
                for _ in range(excess):
                    items.popleft()
            except IndexError:  # pragma: no cover - only this consumer pops
                pass
            self.trimmed += excess
            self._trimmed_metric.inc(excess)
        try:
            item = items.popleft()
        except IndexError:
            self._standing_run = 0
            return None
        if self.standing and slack == 0:
            self._standing_run = self._standing_run + 1 if items else 0
            if self._standing_run >= self.standing:
                self._standing_run = 0
                try:
                    items.popleft()
                except IndexError:  # pragma: no cover - only this consumer pops
                    return item
                self.trimmed += 1
                self._trimmed_metric.inc()
        return item

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class PcmChunker:
    """Decoded av.AudioFrames of any format, layout, rate and size in, 20 ms packed s16
    stereo 48 kHz chunks out (:data:`Pcm`).

    The common case — aiortc's Opus decoder: s16, stereo, 48 kHz, 960 samples — is a
    view of the frame's buffer, without copying or converting. Anything else goes through
    an FFmpeg resampler to mono (created on first need), is copied to both channels and
    re-cut into 20 ms chunks.
    """

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None
        self._pending: Pcm = np.zeros(0, dtype=np.int16)

    def push(self, frame: av.AudioFrame) -> list[Pcm]:
        if (
            frame.samples == FRAME_SAMPLES
            and frame.sample_rate == SAMPLE_RATE
            and frame.format.name == "s16"
            and frame.layout.name == "stereo"
            and not len(self._pending)
        ):
            return [_s16(frame)]
        if self._resampler is None:  # to mono, as the mixer hears it; then both channels
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        parts = [np.repeat(_s16(f), 2) for f in self._resampler.resample(frame)]
        buf = np.concatenate([self._pending, *parts]) if parts else self._pending
        whole = len(buf) - len(buf) % CHUNK_VALUES
        out = [buf[i : i + CHUNK_VALUES].copy() for i in range(0, whole, CHUNK_VALUES)]
        self._pending = buf[whole:].copy()
        return out


def _s16(frame: av.AudioFrame) -> Pcm:
    """A packed s16 frame's samples as one flat int16 array (a view: no copy)."""
    return np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1)


def to_mono(chunks: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    """Packed s16 stereo chunks, one per row (n, 2·S) → float32 mono (n, S), the two
    channels averaged, full scale 1.0."""
    left = chunks[:, 0::2].astype(np.float32)
    left += chunks[:, 1::2]
    left *= _S16_PAIR_TO_MONO
    return left
