"""A process's joins and heartbeats reach the live state in batches.

A big space's audience heartbeats tens of thousands of times a second. One PFADD per
heartbeat would make Redis's single command thread the limit of a space's audience, so
each process gathers the listeners it heard and writes them every ``flush_s``: one
pipelined PFADD per space per flush, whatever the number of listeners. A listener shows in
the count at most ``flush_s`` later; a process that dies loses at most that much presence,
which the listeners' next heartbeats restore.

Two more things ride on the same flush: the people who joined (``add_person``: the
space's sketch of distinct people, in the presence round trip) and the signed-in
listeners heard (``add_listed``: one ``ZADD XX`` per space per flush moves their
last-heard time in the host's list, services/audience.py).
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
        self._people: dict[str, set[str]] = {}
        self._listed: dict[str, set[str]] = {}
        self._size = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def add(self, space: str, member: str) -> None:
        self._put(self._pending, space, member)

    def add_person(self, space: str, person: str) -> None:
        """Someone joined (``presence_add_many``'s ``people``)."""
        self._put(self._people, space, person)

    def add_listed(self, space: str, member: str) -> None:
        """A listed (signed-in) listener was heard (``audience_heard_many``)."""
        self._put(self._listed, space, member)

    def _put(self, table: dict[str, set[str]], space: str, member: str) -> None:
        members = table.setdefault(space, set())
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
        pending, people, listed = self._pending, self._people, self._listed
        self._pending, self._people, self._listed, self._size = {}, {}, {}, 0
        now = self._clock()
        for space in pending.keys() | people.keys():
            members = pending.get(space, set())
            try:
                await self._live.presence_add_many(space, members, now, people.get(space, ()))
            except PnyxError as exc:  # the live state is down: the next heartbeats retry
                metrics.PRESENCE_DROPPED.inc(len(members))
                log.warning("presence of %d listeners not written: %s", len(members), exc)
            else:
                metrics.PRESENCE_WRITES.inc()
        for space, heard in listed.items():
            try:
                await self._live.audience_heard_many(space, heard, now)
            except PnyxError as exc:  # as above: their next heartbeats write it again
                log.warning(
                    "space %s: %d listed listeners not marked heard: %s", space, len(heard), exc
                )
