"""The thread-safe jitter queues between the event loop and the mix clock's thread:
speakers' Opus frames in (media/inbound.py), their mix-minus packets out. No aiortc, no
event loop.

:class:`FrameQueue` is the hand-off between threads: bounded (drop-oldest when full) *and*
with a target depth (trimmed down to it whenever it is read), so a backlog never turns
into standing latency.
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
