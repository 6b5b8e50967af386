"""The vectorised mix is held to the reference mixer (pnyx.media.mixer), tick by tick."""

from __future__ import annotations

import numpy as np
import pytest

from pnyx.media.levels import MIN_DBOV, level_dbov
from pnyx.media.mixbus import MixBus, levels_dbov
from pnyx.media.mixer import DEFAULT_CEILING, FRAME_SAMPLES, Mixer

from .signals import tone

KEYS = [f"s{i}" for i in range(13)]


def test_matches_the_reference_mixer_through_joins_leaves_attacks_and_releases() -> None:
    rng = np.random.default_rng(7)
    ref: Mixer[str] = Mixer()
    bus: MixBus[str] = MixBus()
    for n in range(400):
        keys = [k for k in KEYS if rng.random() > 0.15]  # people come and go
        amplitude = [0.0, 0.01, 0.3, 1.0][(n // 25) % 4]  # quiet, loud, limited, released
        rows = (
            np.stack(
                [
                    tone(200 + 37 * i, FRAME_SAMPLES, amplitude, start=n * FRAME_SAMPLES)
                    for i in range(len(keys))
                ]
            )
            if keys
            else np.zeros((0, FRAME_SAMPLES), np.float32)
        )
        want = ref.mix(dict(zip(keys, rows, strict=True)))
        got = bus.mix(keys, rows)
        np.testing.assert_allclose(got.program, want.program, atol=1e-6)
        assert got.minus.shape == (len(keys), FRAME_SAMPLES)
        for i, key in enumerate(keys):
            np.testing.assert_allclose(got.minus[i], want.minus[key], atol=1e-6)
        assert got.program.dtype == np.float32 and got.minus.dtype == np.float32
        assert bus.program_gain == pytest.approx(ref.program_gain)


def test_thirteen_full_scale_speakers_are_limited_not_clipped() -> None:
    bus: MixBus[str] = MixBus()
    rows = np.stack([tone(300 + 110 * i, FRAME_SAMPLES, 1.0) for i in range(13)])
    for _ in range(5):
        result = bus.mix(KEYS, rows)
    assert float(np.abs(result.program).max()) <= DEFAULT_CEILING + 1e-6
    assert float(np.abs(result.minus).max()) <= DEFAULT_CEILING + 1e-6
    assert bus.minus_gain("s0") < 1.0
    bus.mix(["s1"], rows[1:2])  # everyone else left: their limiters are forgotten
    assert bus.minus_gain("s0") == 1.0


def test_a_broken_frame_is_silence_for_the_others() -> None:
    bus: MixBus[str] = MixBus()
    rows = np.stack([tone(440, FRAME_SAMPLES, 0.3), np.full(FRAME_SAMPLES, np.nan, np.float32)])
    result = bus.mix(["a", "b"], rows)
    assert np.isfinite(result.program).all() and np.isfinite(result.minus).all()
    np.testing.assert_allclose(result.minus[1], rows[0], atol=1e-6)
    np.testing.assert_allclose(result.minus[0], 0.0, atol=1e-6)


def test_nobody_mixes_to_silence_and_wrong_shapes_are_refused() -> None:
    bus: MixBus[str] = MixBus()
    result = bus.mix([], np.zeros((0, FRAME_SAMPLES), np.float32))
    np.testing.assert_array_equal(result.program, np.zeros(FRAME_SAMPLES, np.float32))
    assert result.minus.shape == (0, FRAME_SAMPLES)
    with pytest.raises(ValueError, match="shape"):
        bus.mix(["a"], np.zeros((2, FRAME_SAMPLES), np.float32))


def test_levels_of_every_row_match_level_dbov() -> None:
    rows = np.stack(
        [
            tone(440, FRAME_SAMPLES, 0.5),
            tone(440, FRAME_SAMPLES, 1e-9),
            np.zeros(FRAME_SAMPLES, np.float32),
            np.ones(FRAME_SAMPLES, np.float32),
        ]
    )
    got = levels_dbov(rows)
    assert got == pytest.approx([level_dbov(r) for r in rows], abs=1e-9)
    assert got[2] == MIN_DBOV and got[3] == 0.0
    assert levels_dbov(np.zeros((0, FRAME_SAMPLES), np.float32)) == []
