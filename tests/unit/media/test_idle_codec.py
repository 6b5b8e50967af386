"""The idle path of the program encoder (media/encoder.py, "Idle"): silence is handed to
the packager as one pre-encoded access unit once the codec has settled, with no codec
work, and the timeline never slips across idle and back."""

from __future__ import annotations

import numpy as np

from pnyx.media.aac import SAMPLES_PER_AU, AacEncoder, silent_access_unit
from pnyx.media.encoder import SETTLE_AUS, _IdleAwareCodec
from pnyx.media.mixer import FRAME_SAMPLES

TONE = (0.5 * np.sin(np.arange(48_000) * 2 * np.pi * 440 / 48_000)).astype(np.float32)


def _frames(pcm: np.ndarray) -> list[np.ndarray]:
    return [pcm[i : i + FRAME_SAMPLES] for i in range(0, len(pcm), FRAME_SAMPLES)]


def test_the_silent_access_unit_is_what_the_encoder_repeats_on_silence() -> None:
    au = silent_access_unit()
    assert au is silent_access_unit()  # once per process
    encoder = AacEncoder()
    out = encoder.encode(np.zeros(16 * SAMPLES_PER_AU, np.float32))
    assert out[-4:] == [au] * 4


def test_idle_skips_the_codec_and_keeps_the_timeline() -> None:
    codec = _IdleAwareCodec(AacEncoder(), silent_access_unit())
    fed = 0
    out: list[bytes] = []
    for frame in _frames(TONE):
        out += codec.encode(frame)
        fed += len(frame)
    assert not codec.settled
    # Nobody publishes: silence in 80 ms batches. The codec drains first, then is skipped.
    for _ in range(200):
        out += codec.silence(4 * FRAME_SAMPLES)
        fed += 4 * FRAME_SAMPLES
    assert codec.settled
    assert codec.skipped > 150
    skipped_before = codec.skipped
    assert out[-10:] == [silent_access_unit()] * 10
    # Someone publishes again: real access units at once, and not one sample lost.
    for frame in _frames(TONE[:9600]):
        out += codec.encode(frame)
        fed += len(frame)
    assert codec.skipped == skipped_before
    assert not codec.settled
    assert any(au != silent_access_unit() for au in out[-5:])
    out += codec.flush()
    whole = -(-fed // SAMPLES_PER_AU)  # what went in, in access units (padded)
    assert whole <= len(out) <= whole + 1  # + the codec's one-unit priming delay


def test_a_codec_that_never_settles_keeps_encoding() -> None:
    codec = _IdleAwareCodec(AacEncoder(), b"not what the codec makes")
    for _ in range(SETTLE_AUS * 4):
        out = codec.silence(4 * FRAME_SAMPLES)
        assert silent_access_unit() in out or out == []
    assert codec.skipped == 0
