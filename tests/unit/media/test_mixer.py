from __future__ import annotations

import itertools

import numpy as np
import pytest

from pnyx.media.mixer import DEFAULT_CEILING, FRAME_SAMPLES, Limiter, Mixer, mix

from .signals import band_energy, tone


def const(value: float) -> np.ndarray:
    return np.full(FRAME_SAMPLES, value, dtype=np.float32)


def test_mix_sums_exactly_and_subtracts_own() -> None:
    result = mix({"a": const(0.25), "b": const(0.125), "c": const(-0.5)})

    np.testing.assert_array_equal(result.program, const(-0.125))
    np.testing.assert_array_equal(result.minus["a"], const(-0.375))
    np.testing.assert_array_equal(result.minus["b"], const(-0.25))
    np.testing.assert_array_equal(result.minus["c"], const(0.375))
    assert result.program.dtype == np.float32
    assert set(result.minus) == {"a", "b", "c"}


def test_mix_of_nobody_is_silence_and_of_one_gives_them_silence() -> None:
    nobody: dict[str, np.ndarray] = {}
    empty = mix(nobody)
    np.testing.assert_array_equal(empty.program, const(0.0))
    assert empty.minus == {}

    alone = mix({"host": const(0.5)})
    np.testing.assert_array_equal(alone.program, const(0.5))
    np.testing.assert_array_equal(alone.minus["host"], const(0.0))


def test_mix_rejects_frames_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        mix({"a": np.zeros(480, dtype=np.float32)})
    with pytest.raises(ValueError, match="shape"):
        mix({"a": np.zeros((1, FRAME_SAMPLES), dtype=np.float32)})


def test_mix_minus_contains_everyone_but_the_listener() -> None:
    # Bin-aligned tones (960 samples → 50 Hz bins), one per speaker.
    tones = {"a": 400.0, "b": 1000.0, "c": 2500.0}
    frames = {name: tone(freq, FRAME_SAMPLES, 0.3) for name, freq in tones.items()}
    result = mix(frames)
    full = band_energy(frames["a"], 400.0)

    for name, own_freq in tones.items():
        minus = result.minus[name]
        assert band_energy(minus, own_freq) < 1e-4 * full
        assert abs(float(np.dot(minus, frames[name]))) < 1e-3
        for other, freq in tones.items():
            if other != name:
                assert band_energy(minus, freq) == pytest.approx(full, rel=1e-4)
        assert band_energy(result.program, own_freq) == pytest.approx(full, rel=1e-4)


def test_thirteen_full_scale_speakers_never_clip_and_the_limiter_recovers() -> None:
    mixer: Mixer[str] = Mixer()
    names = [f"s{i}" for i in range(13)]
    peaks: list[float] = []
    for n in range(25):  # 0.5 s of everybody shouting the same full-scale tone
        frame = tone(1000.0, FRAME_SAMPLES, 1.0, start=n * FRAME_SAMPLES)
        out = mixer.mix(dict.fromkeys(names, frame))
        for signal in (out.program, *out.minus.values()):
            assert np.all(np.abs(signal) <= DEFAULT_CEILING + 1e-6)
        peaks.append(float(np.max(np.abs(out.program))))
    assert min(peaks[1:]) > 0.85  # limited, not muted
    assert mixer.program_gain == pytest.approx(DEFAULT_CEILING / 13, rel=1e-3)

    gains = []
    quiet = np.zeros(FRAME_SAMPLES, dtype=np.float32)
    for n in range(100):  # then one speaker at -20 dBFS for 2 s
        quiet = tone(1000.0, FRAME_SAMPLES, 0.1, start=n * FRAME_SAMPLES)
        out = mixer.mix({"s0": quiet})
        gains.append(mixer.program_gain)
        assert np.all(np.abs(out.program) <= 1.0)
    assert all(b >= a for a, b in itertools.pairwise(gains))  # smooth release
    assert max(b - a for a, b in itertools.pairwise(gains)) < 0.1
    assert gains[-1] == 1.0
    np.testing.assert_allclose(out.program, quiet, atol=1e-7)


def test_limiter_leaves_quiet_audio_untouched() -> None:
    limiter = Limiter()
    frame = tone(440.0, FRAME_SAMPLES, 0.5)
    np.testing.assert_array_equal(limiter.process(frame), frame)
    assert limiter.gain == 1.0


def test_limiter_attack_never_passes_the_ceiling_even_in_the_first_frame() -> None:
    limiter = Limiter(ceiling=0.5)
    frame = np.full(FRAME_SAMPLES, 4.0, dtype=np.float32)
    frame[::2] = -4.0
    out = limiter.process(frame)
    assert np.max(np.abs(out)) <= 0.5 + 1e-7
    assert limiter.gain == pytest.approx(0.125)
    np.testing.assert_allclose(np.abs(out[100:]), 0.5, rtol=1e-6)


def test_limiter_turns_garbage_into_bounded_audio() -> None:
    frame = np.array([np.nan, np.inf, -np.inf, 0.5] * 240, dtype=np.float32)
    out = Limiter().process(frame)
    assert np.all(np.isfinite(out))
    assert np.all(np.abs(out) <= 1.0)


def test_limiter_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="ceiling"):
        Limiter(ceiling=1.5)
    with pytest.raises(ValueError, match="positive"):
        Limiter(attack_samples=0)


def test_mixer_follows_who_is_speaking() -> None:
    mixer: Mixer[str] = Mixer()
    loud = np.full(FRAME_SAMPLES, 0.9, dtype=np.float32)
    mixer.mix({"a": loud, "b": loud, "c": loud})  # every limiter engages
    out = mixer.mix({"a": const(0.1), "d": const(0.2)})
    assert set(out.minus) == {"a", "d"}
    # "d" is new: its limiter starts at unity, so its mix-minus is exactly "a".
    np.testing.assert_array_equal(out.minus["d"], const(0.1))
