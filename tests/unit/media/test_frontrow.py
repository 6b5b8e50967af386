from __future__ import annotations

import numpy as np
import pytest

from pnyx.media.frontrow import FrontRowEncoder
from pnyx.media.mixer import FRAME_SAMPLES
from pnyx.media.opus import OpusDecoder
from pnyx.protocol import frontrow


class Tap:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def submit(self, space: str, message: bytes) -> None:
        self.messages.append((space, message))


def tone(n: int) -> np.ndarray:
    t = (np.arange(FRAME_SAMPLES) + n * FRAME_SAMPLES) / 48_000
    return (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


def test_frames_are_batched_with_their_sequence_and_media_time() -> None:
    tap = Tap()
    enc = FrontRowEncoder(
        "sp", tap, media_time=96_000, batch_frames=3, bit_rate=64_000, complexity=5
    )
    for n in range(7):
        enc.feed(tone(n))
    assert len(tap.messages) == 2  # the 7th frame waits for its batch
    msgs = [frontrow.decode(m) for _, m in tap.messages]
    assert [m.seq for m in msgs] == [0, 1]
    assert [m.media_time for m in msgs] == [96_000, 96_000 + 3 * FRAME_SAMPLES]
    assert {len(m.frames) for m in msgs} == {3}
    assert enc.media_time == 96_000 + 7 * FRAME_SAMPLES
    decoder = OpusDecoder()
    pcm = np.concatenate([decoder.decode(f) for m in msgs for f in m.frames])
    assert float(np.sqrt(np.mean(pcm[FRAME_SAMPLES:] ** 2))) > 0.1  # the tone, decoded
    enc.close()


def test_silence_keeps_the_clock_going() -> None:
    tap = Tap()
    enc = FrontRowEncoder("sp", tap, media_time=0, batch_frames=2, bit_rate=64_000, complexity=5)
    enc.silence(4 * FRAME_SAMPLES)  # an idle hand-over: four ticks
    enc.feed(tone(4))
    enc.feed(tone(5))
    msgs = [frontrow.decode(m) for _, m in tap.messages]
    assert [m.media_time for m in msgs] == [0, 2 * FRAME_SAMPLES, 4 * FRAME_SAMPLES]
    enc.close()


def test_batch_bounds() -> None:
    with pytest.raises(ValueError, match="batch_frames"):
        FrontRowEncoder("sp", Tap(), media_time=0, batch_frames=0, bit_rate=64_000, complexity=5)
