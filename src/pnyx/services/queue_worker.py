"""A bounded queue owned by one task (docs/conventions.md, rules 9 and 11).

The shape of the notification fan-out (services/notifications.py), the push sender
(services/push.py) and the big-host push job (services/push_fanout.py):

- ``put`` does no I/O and never waits. When ``capacity`` items already wait, the oldest
  is dropped, counted (``dropped``) and handed to ``on_drop`` (a log line, a metric).
- One task, started by ``start`` and cancelled and awaited by ``stop``, takes the items
  in order and awaits ``handle`` on each, one at a time. A ``PnyxError`` from it is
  counted (``failed``) and handed to ``on_error``, and the next item follows; any other
  exception is a bug: it ends the task, and ``stop`` raises it.
- ``stop`` cancels the item in hand; the items still waiting stay queued, unhandled (the
  node is going away; a later ``start`` would take them).
- ``room(below)`` lets a producer that may wait (the big-host job) hold back until fewer
  than ``below`` items wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from pnyx.errors import PnyxError

T = TypeVar("T")


class QueueWorker(Generic[T]):
    def __init__(
        self,
        name: str,
        handle: Callable[[T], Awaitable[object]],
        capacity: int,
        *,
        on_error: Callable[[T, PnyxError], None],
        on_drop: Callable[[T], None] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"a queue worker holds at least one item, not {capacity}")
        self.name = name  # the task's name
        self.capacity = capacity
        self._handle = handle
        self._on_error = on_error
        self._on_drop = on_drop
        self._items: deque[T] = deque()
        self._wake = asyncio.Event()  # set when an item is put
        self._taken = asyncio.Event()  # set whenever the task takes an item
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # items dropped because the queue was full
        self.failed = 0  # items whose handler raised a PnyxError

    @property
    def pending(self) -> int:
        """Items waiting (not counting the one in hand)."""
        return len(self._items)

    @property
    def busy(self) -> bool:
        """An item is in hand."""
        return self._busy

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing in hand."""
        return not self._items and not self._busy

    @property
    def running(self) -> bool:
        return self._task is not None

    def put(self, item: T) -> None:
        """Queue ``item``; drops the oldest when full. No I/O, never waits."""
        if len(self._items) >= self.capacity:
            oldest = self._items.popleft()
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop(oldest)
        self._items.append(item)
        self._wake.set()

    async def room(self, below: int) -> None:
        """Return once fewer than ``below`` items wait."""
        while len(self._items) >= below:
            self._taken.clear()
            await self._taken.wait()

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError(f"{self.name}: already started")
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the task and wait for it; waiting items stay queued."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._items:
                item = self._items.popleft()
                self._taken.set()
                self._busy = True
                try:
                    await self._handle(item)
                except PnyxError as exc:
                    self.failed += 1
                    self._on_error(item, exc)
                finally:
                    self._busy = False
