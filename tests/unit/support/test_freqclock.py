"""The frequency clock (tests/support/freqclock.py) measures what it is built to: a seam's
repeat or skip and its silence, on a signal made to have them, also when the player plays
slower after the seam and when it held (underran) shortly before, anywhere in the clock's
period (its wrap included), and with a glitch of other media right at the seam."""

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


def test_a_glitch_at_the_seam_does_not_take_the_clock_round_a_turn() -> None:
    """25 ms of other media (1.9 s earlier: a seek's first samples) right where a seam
    resumes: the jump is still read as the 26 ms skip it is, not a period (4 s) more."""
    x = clock(10)
    for offset in (1.9, -1.9, 1.95, -1.95):
        glitch = part(x, 3.026 + offset, 3.051 + offset)
        out = np.concatenate([part(x, 0, 3), silence(0.2), glitch, part(x, 3.051, 9)])
        seam = fc.seam(fc.clock_track(out, RATE), 3.1, before_s=0.4, after_s=0.25)
        assert seam.jump_ms == pytest.approx(26, abs=8), offset
        assert seam.foreign_ms == pytest.approx(25, abs=10), offset  # and it is reported


@pytest.mark.parametrize("phase", [round(0.1 * k, 1) for k in range(40)])
def test_seams_anywhere_in_the_clock_s_period(phase: float) -> None:
    """A seam read anywhere in the period, the clock's wrap (whose windows are not read)
    included: a silence then a skip, a skip and a repeat without silence."""
    x = clock(10)
    at = 4 + phase
    lead = part(x, at - 1, at)
    cases = [
        (np.concatenate([lead, silence(0.2), part(x, at + 0.03, at + 1.5)]), 1.2, 30, 0.45),
        (np.concatenate([lead, part(x, at + 0.5, at + 2)]), 1.0, 500, 0.1),
        (np.concatenate([lead, part(x, at - 0.15, at + 1.2)]), 1.0, -150, 0.1),
    ]
    for out, at_s, jump_ms, before_s in cases:
        seam = fc.seam(fc.clock_track(out, RATE), at_s, before_s=before_s, after_s=0.25)
        assert seam.jump_ms == pytest.approx(jump_ms, abs=8), (at_s, jump_ms)
        assert seam.foreign_ms == 0, (at_s, jump_ms)
