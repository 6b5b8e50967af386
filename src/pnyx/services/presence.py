"""A process's joins and heartbeats reach the live state in batches.

A big space's audience heartbeats tens of thousands of times a second. One PFADD per
heartbeat would make Redis's single command thread the limit of a space's audience, so
each process gathers the listeners it heard and writes them every ``flush_s``: one
pipelined PFADD per space per flush, whatever the number of listeners. A listener shows in
the count at most ``flush_s`` later; a process that dies loses at most that much presence,
which the listeners' next heartbeats restore.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from pnyx.errors import PnyxError
from pnyx.live.base import LiveState
from pnyx.services import metrics

log = logging.getLogger(__name__)


class PresenceBatcher:
    def __init__(
        self,
        live: LiveState,
        clock: Callable[[], float],
        *,
        flush_s: float = 0.2,
        max_pending: int = 100_000,
    ) -> None:
        self._live = live
        self._clock = clock
        self._flush_s = flush_s
        self._max_pending = max_pending
        self._pending: dict[str, set[str]] = {}
        self._size = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def add(self, space: str, member: str) -> None:
        members = self._pending.setdefault(space, set())
        if member not in members:
            members.add(member)
            self._size += 1
            if self._size >= self._max_pending:
                self._wake.set()  # flush early rather than grow without bound

    @property
    def pending(self) -> int:
        return self._size

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="presence-batcher")

    async def stop(self) -> None:
        """Stop, writing what is pending first."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_s)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        pending, self._pending, self._size = self._pending, {}, 0
        now = self._clock()
        for space, members in pending.items():
            try:
                await self._live.presence_add_many(space, members, now)
            except PnyxError as exc:  # the live state is down: the next heartbeats retry
                metrics.PRESENCE_DROPPED.inc(len(members))
                log.warning("presence of %d listeners not written: %s", len(members), exc)
            else:
                metrics.PRESENCE_WRITES.inc()
