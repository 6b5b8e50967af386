"""The thread-safe queues between the event loop and the mix clock's thread: speakers'
Opus packets in (media/inbound.py times them), their mix-minus packets out. No aiortc, no
event loop.

:class:`FrameQueue` is the hand-off between threads: bounded (drop-oldest when full) *and*
with a target depth (trimmed down to it whenever it is read), so a backlog never turns
into standing latency (the inbound queue's target is its bound: its packets' deadlines
are kept by the speaker's playout buffer instead).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from pnyx.media import metrics

T = TypeVar("T")


class FrameQueue(Generic[T]):
    """A bounded FIFO between one producer thread and one consumer thread, with a
    target depth (docs/conventions.md, rule 11).

    * :meth:`put` never blocks: when ``maxlen`` items are already queued the oldest is
      dropped (counted in ``pnyx_media_frames_dropped_total{queue}``);
    * :meth:`take` first drops the oldest items down to ``target``, counted in
      ``pnyx_media_frames_trimmed_total{queue}``, then returns the oldest.

    Either side may run on any thread: ``collections.deque`` appends and pops are atomic
    in CPython. ``dropped`` is written by the producer only, ``trimmed`` by the consumer
    only. (A drop counted while the consumer takes at the same instant may be one too
    many: it is a statistic, not an invariant.)
    """

    def __init__(self, maxlen: int, target: int, queue: str = "") -> None:
        if not 1 <= target <= maxlen:
            raise ValueError(f"need 1 <= target ({target}) <= maxlen ({maxlen})")
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

    def take(self) -> T | None:
        """Trim to ``target`` items, then dequeue the oldest (None when empty)."""
        items = self._items
        excess = len(items) - self.target
        if excess > 0:
            try:
                for _ in range(excess):
                    items.popleft()
            except IndexError:  # pragma: no cover - only this consumer pops
                pass
            self.trimmed += excess
            self._trimmed_metric.inc(excess)
        try:
            return items.popleft()
        except IndexError:
            return None

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
