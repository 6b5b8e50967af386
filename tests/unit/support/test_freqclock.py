"""The frequency clock (tests/support/freqclock.py) measures what it is built to: a seam's
repeat or skip and its silence, on a signal made to have them, also when the player plays
slower after the seam and when it held (underran) shortly before."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from tests.support import freqclock as fc

RATE = fc.RATE


def clock(seconds: float) -> npt.NDArray[np.float32]:
    return fc.Clock().next(int(seconds * RATE))


def silence(seconds: float) -> npt.NDArray[np.float32]:
    return np.zeros(int(seconds * RATE), np.float32)


def part(x: npt.NDArray[np.float32], start: float, end: float) -> npt.NDArray[np.float32]:
    return x[int(start * RATE) : int(end * RATE)]


def test_a_skip_after_a_silence_and_a_repeat_without_one() -> None:
    x = clock(10)
    out = np.concatenate(
        [part(x, 0, 3), silence(0.3), part(x, 3.1, 6), part(x, 5.85, 10)]
    )  # skip 100 ms after 300 ms of silence at 3 s; repeat 150 ms at 6.2 s
    track = fc.clock_track(out, RATE)
    skip = fc.seam(track, 3.3, before_s=0.4, after_s=0.2)
    assert skip.jump_ms == pytest.approx(100, abs=6)
    assert skip.longest_silence_ms == pytest.approx(300, abs=6)
    repeat = fc.seam(track, 6.25)  # 50 ms off: the jump itself is found
    assert repeat.repeat_ms == pytest.approx(150, abs=2)
    assert repeat.silence_ms == 0


def test_an_aligned_seam_with_an_underrun_before_and_a_slow_player_after() -> None:
    x = clock(12)
    # media 3.0 s on played at 0.85x, time-stretched (the pitch kept, as a browser does)
    tau = 3.0 + 0.85 * np.arange(int(2 * RATE)) / RATE
    steps = 2 * np.pi * fc.frequency_at(tau) / RATE
    stretched = (fc.AMPLITUDE * np.sin(np.cumsum(steps))).astype(np.float32)
    out = np.concatenate(
        [part(x, 0, 2.5), silence(0.04), part(x, 2.5, 3.0), silence(0.25), stretched]
    )  # an underrun (held 40 ms) at 2.5 s; the seam at 3.04 s resumes where it stopped
    track = fc.clock_track(out, RATE)
    seam = fc.seam(track, 3.3, before_s=0.35, after_s=0.1)
    assert abs(seam.jump_ms) <= 6
    assert seam.longest_silence_ms == pytest.approx(250, abs=6)


def test_no_clock_no_measure() -> None:
    track = fc.clock_track(silence(3), RATE)
    with pytest.raises(AssertionError, match="not heard"):
        fc.seam(track, 1.5)
