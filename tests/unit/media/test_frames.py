"""The jitter queues between the event loop and the mix clock's thread, and the chunking
of decoded audio into 20 ms packed s16 stereo chunks."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest

from pnyx.media import metrics
from pnyx.media.frames import CHUNK_VALUES, FrameQueue, PcmChunker, to_mono
from pnyx.media.mixer import FRAME_SAMPLES

from .signals import tone


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


def test_slack_keeps_frames_for_ticks_already_due() -> None:
    q: FrameQueue[int] = FrameQueue(10, 2)
    for i in range(6):
        q.put(i)
    assert q.take(slack=3) == 1  # target 2 + 3 due ticks: only one trimmed
    assert [q.take(2), q.take(1), q.take(0)] == [2, 3, 4]


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


def s16_stereo(pcm: np.ndarray, rate: int = 48_000) -> av.AudioFrame:
    s16 = np.round(pcm * 32767).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(
        np.repeat(s16, 2).reshape(1, -1), format="s16", layout="stereo"
    )
    frame.sample_rate = rate
    return frame


def test_aiortcs_decoded_frames_pass_as_views() -> None:
    pcm = tone(440, FRAME_SAMPLES, 0.5)
    frame = s16_stereo(pcm)
    (chunk,) = PcmChunker().push(frame)
    assert chunk.dtype == np.int16 and chunk.shape == (CHUNK_VALUES,)
    mono = to_mono(chunk[None, :])[0]
    np.testing.assert_allclose(mono, pcm, atol=1 / 32767)


def test_other_formats_rates_and_sizes_are_resampled_and_rechunked() -> None:
    chunker = PcmChunker()
    pcm = tone(440, 4410, 0.5)  # 100 ms of mono float at 44.1 kHz, in odd-sized frames
    out = []
    for part in np.array_split(pcm, 7):
        frame = av.AudioFrame.from_ndarray(part.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = 44_100
        out += chunker.push(frame)
    assert 3 <= len(out) <= 5 and all(c.shape == (CHUNK_VALUES,) for c in out)
    mono = to_mono(np.stack(out)).reshape(-1)
    assert 0.45 < float(np.abs(mono[FRAME_SAMPLES:]).max()) < 0.55


def test_to_mono_averages_the_channels() -> None:
    chunk = np.zeros((1, CHUNK_VALUES), np.int16)
    chunk[0, 0::2] = 16384  # left at +0.5
    chunk[0, 1::2] = -16384  # right at -0.5
    np.testing.assert_array_equal(to_mono(chunk), np.zeros((1, FRAME_SAMPLES), np.float32))
    chunk[0, 1::2] = 16384
    np.testing.assert_allclose(to_mono(chunk), 0.5)


def test_a_standing_backlog_is_given_back() -> None:
    q: FrameQueue[int] = FrameQueue(10, 2, standing=5)
    for i in range(3):  # a burst: three at once, then one per take
        q.put(i)
    taken = []
    for i in range(3, 13):
        q.put(i)
        taken.append(q.take())
    # The first take trims to the target (two, 0 and 1, go), leaving one behind; after
    # five takes in a row that left one behind, it is dropped (7), and the queue drains.
    assert taken == [2, 3, 4, 5, 6, 8, 9, 10, 11, 12]
    assert q.trimmed == 3 and len(q) == 0


def test_a_queue_that_drains_keeps_everything() -> None:
    q: FrameQueue[int] = FrameQueue(10, 2, standing=5)
    taken = []
    for i in range(20):
        q.put(i)
        taken.append(q.take())
    assert taken == list(range(20)) and q.trimmed == 0
