"""The jitter queues between the event loop and the mix clock's thread."""

from __future__ import annotations

import threading

import pytest

from pnyx.media import metrics
from pnyx.media.frames import FrameQueue


def count(metric: str, queue: str) -> float:
    family = metrics.FRAMES_TRIMMED if metric == "trimmed" else metrics.FRAMES_DROPPED
    return float(family.labels(queue)._value.get())


def test_take_trims_a_backlog_down_to_the_target_and_counts_it() -> None:
    q: FrameQueue[int] = FrameQueue(10, 2, queue="test")
    trimmed_before = count("trimmed", "test")
    for i in range(7):
        assert q.put(i)
    assert q.take() == 5  # 0..4 trimmed: the two newest are kept, the older one comes out
    assert (q.trimmed, len(q)) == (5, 1)
    assert count("trimmed", "test") - trimmed_before == 5
    assert q.take() == 6
    assert q.take() is None
    assert q.trimmed == 5  # an empty or short queue is never trimmed


def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    q: FrameQueue[int] = FrameQueue(3, 1, queue="test")
    dropped_before = count("dropped", "test")
    assert [q.put(i) for i in range(5)] == [True, True, True, False, False]
    assert (q.dropped, len(q)) == (2, 3)
    assert count("dropped", "test") - dropped_before == 2
    assert q.take() == 4


def test_the_target_must_fit_the_queue() -> None:
    with pytest.raises(ValueError, match="target"):
        FrameQueue(2, 3)
    with pytest.raises(ValueError, match="target"):
        FrameQueue(2, 0)


def test_one_producer_and_one_consumer_thread_lose_nothing_unaccounted() -> None:
    q: FrameQueue[int] = FrameQueue(50, 50)
    got: list[int] = []
    done = threading.Event()

    def consume() -> None:
        while not done.is_set() or len(q):
            item = q.take()
            if item is not None:
                got.append(item)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(20_000):
        q.put(i)
    done.set()
    consumer.join(10)
    assert got == sorted(got)  # in order
    assert len(got) + q.trimmed + q.dropped >= 20_000 - 1  # (a race may count one drop too many)
    assert len(got) + q.trimmed <= 20_000


def test_a_queue_that_drains_keeps_everything() -> None:
    q: FrameQueue[int] = FrameQueue(10, 2)
    taken = []
    for i in range(20):
        q.put(i)
        taken.append(q.take())
    assert taken == list(range(20)) and q.trimmed == 0
