from __future__ import annotations

import numpy as np
import pytest

from pnyx.media.levels import MIN_DBOV, SpeakingDetector, level_dbov

from .signals import tone

LOUD = -20.0
QUIET = -70.0


def test_silence_and_empty_frames_are_at_the_floor() -> None:
    assert level_dbov(np.zeros(960, dtype=np.float32)) == MIN_DBOV == -127.0
    assert level_dbov(np.zeros(0, dtype=np.float32)) == -127.0
    assert level_dbov(np.full(960, 1e-9, dtype=np.float32)) == -127.0


@pytest.mark.parametrize(
    ("amplitude", "expected"),
    [(1.0, -3.0103), (0.1, -23.0103), (0.001, -63.0103)],
)
def test_sine_levels(amplitude: float, expected: float) -> None:
    assert level_dbov(tone(1000.0, 960, amplitude)) == pytest.approx(expected, abs=1e-3)


def test_full_scale_square_is_zero_and_overload_is_clamped() -> None:
    square = np.where(np.arange(960) % 2 == 0, 1.0, -1.0).astype(np.float32)
    assert level_dbov(square) == pytest.approx(0.0, abs=1e-9)
    assert level_dbov(square * 4) == 0.0


def feed(detector: SpeakingDetector, levels: list[float]) -> list[bool]:
    return [detector.update_level(level) for level in levels]


def test_onset_needs_consecutive_loud_frames() -> None:
    detector = SpeakingDetector(threshold_dbov=-45.0, onset_frames=3, hangover_frames=5)
    assert feed(detector, [LOUD, LOUD, QUIET, LOUD, LOUD]) == [False] * 5
    assert feed(detector, [LOUD]) == [True]
    assert detector.speaking


def test_hangover_keeps_speaking_through_short_pauses() -> None:
    detector = SpeakingDetector(threshold_dbov=-45.0, onset_frames=1, hangover_frames=5)
    assert feed(detector, [LOUD]) == [True]
    assert feed(detector, [QUIET] * 4 + [LOUD] + [QUIET] * 4) == [True] * 9
    assert feed(detector, [QUIET]) == [False]
    assert feed(detector, [QUIET] * 10) == [False] * 10


def test_threshold_is_inclusive_and_frames_are_measured() -> None:
    detector = SpeakingDetector(threshold_dbov=-45.0, onset_frames=2, hangover_frames=2)
    assert feed(detector, [-45.0, -45.0]) == [False, True]
    loud = tone(300.0, 960, 0.3)
    silent = np.zeros(960, dtype=np.float32)
    assert detector.update(loud)
    assert detector.level == pytest.approx(level_dbov(loud))
    assert [detector.update(silent), detector.update(silent)] == [True, False]
    assert detector.level == -127.0


def test_detector_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="threshold"):
        SpeakingDetector(threshold_dbov=3.0)
    with pytest.raises(ValueError, match="at least 1"):
        SpeakingDetector(onset_frames=0)
