"""The owned, bounded queue behind the notification fan-out and the push senders
(services/queue_worker.py): drop-oldest when full, stop with items pending, a handler
that raises, backpressure with ``room``."""

from __future__ import annotations

import asyncio

import pytest

from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.queue_worker import QueueWorker
from tests.support.poll import eventually

WITHIN = 5.0  # every wait here is bounded by this


class Recorder:
    """A handler that records what it is handed; ``gate`` (when given) holds each item
    until set, and items in ``fail`` raise a PnyxError."""

    def __init__(
        self, *, gate: asyncio.Event | None = None, fail: frozenset[int] = frozenset()
    ) -> None:
        self.gate = gate
        self.fail = fail
        self.started: list[int] = []
        self.done: list[int] = []
        self.cancelled: list[int] = []
        self.errors: list[tuple[int, str]] = []
        self.drops: list[int] = []

    async def handle(self, item: int) -> None:
        self.started.append(item)
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(item)
            raise
        if item in self.fail:
            raise PnyxError(ErrorKind.UNAVAILABLE, f"item {item} failed", code="test")
        self.done.append(item)

    def on_error(self, item: int, exc: PnyxError) -> None:
        self.errors.append((item, exc.message))

    def on_drop(self, item: int) -> None:
        self.drops.append(item)

    def worker(self, capacity: int) -> QueueWorker[int]:
        return QueueWorker[int](
            "test-worker", self.handle, capacity, on_error=self.on_error, on_drop=self.on_drop
        )


async def test_a_full_queue_drops_the_oldest_and_counts() -> None:
    rec = Recorder()
    worker = rec.worker(capacity=3)
    for i in range(10):  # no task yet: put never waits
        worker.put(i)
        assert worker.pending <= 3
    assert (worker.pending, worker.dropped, rec.drops) == (3, 7, list(range(7)))
    worker.start()
    try:
        await eventually(lambda: worker.idle, WITHIN, "the queue to drain", interval=0.01)
    finally:
        await worker.stop()
    assert rec.done == [7, 8, 9]  # the newest, in order


async def test_a_flood_stays_within_capacity() -> None:
    gate = asyncio.Event()
    rec = Recorder(gate=gate)
    worker = rec.worker(capacity=50)
    worker.start()
    try:
        worker.put(-1)
        await eventually(lambda: rec.started, WITHIN, "the first item in hand", interval=0.01)
        for i in range(10_000):  # the handler is stuck: everything past 50 is dropped
            worker.put(i)
            assert worker.pending <= 50
        assert worker.dropped == 10_000 - 50
        gate.set()
        await eventually(lambda: worker.idle, WITHIN, "the queue to drain", interval=0.01)
    finally:
        await worker.stop()
    assert rec.done == [-1, *range(10_000 - 50, 10_000)]
    assert worker.dropped == len(rec.drops) == 10_000 - 50


async def test_stop_cancels_the_item_in_hand_and_leaves_the_rest_queued() -> None:
    gate = asyncio.Event()  # never set: the first item is held until stop
    rec = Recorder(gate=gate)
    worker = rec.worker(capacity=10)
    worker.start()
    for i in range(4):
        worker.put(i)
    await eventually(lambda: worker.busy, WITHIN, "an item in hand", interval=0.01)
    await asyncio.wait_for(worker.stop(), WITHIN)
    assert rec.started == [0]
    assert rec.cancelled == [0]
    assert rec.done == []
    assert (worker.pending, worker.busy, worker.running) == (3, False, False)
    assert (worker.dropped, worker.failed) == (0, 0)

    # stopped: puts still queue (bounded), nothing takes them until a start
    worker.put(4)
    assert worker.pending == 4
    gate.set()
    worker.start()
    try:
        await eventually(lambda: worker.idle, WITHIN, "the rest to be taken", interval=0.01)
    finally:
        await worker.stop()
    assert rec.done == [1, 2, 3, 4]  # the cancelled item is not retried


async def test_a_handler_that_raises_is_counted_and_the_next_item_follows() -> None:
    rec = Recorder(fail=frozenset({1, 3}))
    worker = rec.worker(capacity=10)
    worker.start()
    try:
        for i in range(5):
            worker.put(i)
        await eventually(lambda: worker.idle, WITHIN, "the queue to drain", interval=0.01)
        assert worker.running
    finally:
        await worker.stop()
    assert rec.done == [0, 2, 4]
    assert rec.errors == [(1, "item 1 failed"), (3, "item 3 failed")]
    assert worker.failed == 2


async def test_an_unexpected_exception_ends_the_task_and_stop_raises_it() -> None:
    async def broken(item: int) -> None:
        raise RuntimeError(f"bug on {item}")

    errors: list[int] = []
    worker = QueueWorker[int](
        "test-broken", broken, 5, on_error=lambda item, exc: errors.append(item)
    )
    worker.start()
    worker.put(1)
    worker.put(2)
    await eventually(lambda: not worker.busy and worker.pending == 1, WITHIN, "the task to die")
    with pytest.raises(RuntimeError, match="bug on 1"):
        await asyncio.wait_for(worker.stop(), WITHIN)
    assert errors == []  # a bug is not a handled failure
    assert (worker.pending, worker.failed, worker.running) == (1, 0, False)


async def test_room_holds_a_producer_until_the_task_takes_items() -> None:
    gate = asyncio.Event()
    rec = Recorder(gate=gate)
    worker = rec.worker(capacity=10)
    for i in range(4):
        worker.put(i)
    await asyncio.wait_for(worker.room(5), WITHIN)  # 4 < 5: at once

    waiting = asyncio.create_task(worker.room(2))
    await asyncio.sleep(0)
    assert not waiting.done()  # 4 wait and nothing takes them
    worker.start()
    try:
        # the task takes item 0 (3 wait) and is held by the gate: still no room below 2
        await eventually(lambda: worker.busy, WITHIN, "an item in hand", interval=0.01)
        assert not waiting.done()
        gate.set()  # it takes 1 and 2: one waits, the producer may go on
        await asyncio.wait_for(waiting, WITHIN)
        await eventually(lambda: worker.idle, WITHIN, "the queue to drain", interval=0.01)
    finally:
        waiting.cancel()
        await worker.stop()
    assert rec.done == [0, 1, 2, 3]


async def test_bounds_and_misuse() -> None:
    rec = Recorder()
    with pytest.raises(ValueError, match="at least one"):
        rec.worker(capacity=0)
    worker = rec.worker(capacity=1)
    await worker.stop()  # never started: nothing to do
    worker.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            worker.start()
    finally:
        await worker.stop()
    await worker.stop()  # twice: nothing to do
