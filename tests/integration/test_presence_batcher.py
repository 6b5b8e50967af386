"""Presence written in batches: one write per space per flush, nothing lost on stop, and
a live state that fails drops the batch without breaking the batcher."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.memory import MemoryLiveState
from pnyx.services.presence import PresenceBatcher

NOW = 1_000_000.0


class CountingLive(MemoryLiveState):
    def __init__(self) -> None:
        super().__init__(presence_bucket_s=5.0)
        self.writes = 0
        self.fail = False
        self.wrote = asyncio.Event()

    async def presence_add_many(
        self, space: str, members: Iterable[str], now: float, people: Iterable[str] = ()
    ) -> None:
        self.writes += 1
        self.wrote.set()
        if self.fail:
            raise PnyxError(ErrorKind.UNAVAILABLE, "down")
        await super().presence_add_many(space, members, now, people)


async def test_one_write_per_space_per_flush_and_every_listener_counted() -> None:
    live = CountingLive()
    batcher = PresenceBatcher(live, lambda: NOW, flush_s=60)
    for i in range(3000):
        batcher.add("a", f"l{i}")
        batcher.add("a", f"l{i}")  # a second heartbeat in the same flush is free
    for i in range(500):
        batcher.add("b", f"m{i}")
    assert batcher.pending == 3500
    await batcher.flush()
    assert live.writes == 2
    assert batcher.pending == 0
    assert abs(await live.presence_count("a", NOW, 45) - 3000) <= 3000 * 0.02
    assert abs(await live.presence_count("b", NOW, 45) - 500) <= 500 * 0.02


async def test_stop_writes_what_is_pending() -> None:
    live = CountingLive()
    batcher = PresenceBatcher(live, lambda: NOW, flush_s=60)
    batcher.start()
    batcher.add("a", "ann")
    await batcher.stop()
    assert await live.presence_count("a", NOW, 45) == 1


async def test_a_failing_live_state_drops_the_batch_and_the_next_one_lands() -> None:
    live = CountingLive()
    batcher = PresenceBatcher(live, lambda: NOW, flush_s=60)
    live.fail = True
    batcher.add("a", "ann")
    await batcher.flush()  # logged and counted, not raised
    live.fail = False
    batcher.add("a", "bob")
    await batcher.flush()
    assert await live.presence_count("a", NOW, 45) == 1


async def test_a_full_batch_is_flushed_early() -> None:
    live = CountingLive()
    batcher = PresenceBatcher(live, lambda: NOW, flush_s=60, max_pending=10)
    batcher.start()
    try:
        for i in range(10):
            batcher.add("a", f"l{i}")
        async with asyncio.timeout(5):  # long before the 60 s flush
            await live.wrote.wait()
        assert live.writes == 1
    finally:
        await batcher.stop()


async def test_people_ride_on_the_presence_write_and_listed_members_are_marked_heard() -> None:
    live = CountingLive()
    clock = [NOW]
    batcher = PresenceBatcher(live, lambda: clock[0], flush_s=60)
    await live.audience_add("a", "l1 ann", NOW - 100, cap=10)
    await live.audience_add("a", "l2 bob", NOW - 100, cap=10)
    batcher.add("a", "l1")
    batcher.add_person("a", "@ann")
    batcher.add_person("a", "@ann")  # the same person twice in a flush: once
    batcher.add_person("b", "~client-kept-id-0001")  # a space with people only
    batcher.add_listed("a", "l1 ann")
    assert batcher.pending == 4
    await batcher.flush()
    assert live.writes == 2  # one per space, people included
    assert await live.presence_people("a") == 1
    assert await live.presence_people("b") == 1
    page = await live.audience_page("a", None, 10, heard_since=NOW - 50)
    assert [m for m, _ in page] == ["l1 ann"]  # bob was not heard since
