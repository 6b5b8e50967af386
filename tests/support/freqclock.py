"""A frequency clock: a tone whose frequency tells the time, to measure where in the
media a player is and how far it jumps when it switches paths.

The clock sweeps linearly from ``F_LO`` to ``F_HI`` over ``PERIOD_S`` and starts again
(a sawtooth in frequency, phase-continuous). The frequency heard at an instant gives the
media time modulo the period: ``(f - F_LO) / SLOPE``. At 500 Hz per second, a frequency
read to within 2 Hz places the media to within 4 ms.

:func:`clock_track` turns a recording of what a player played into ``d = media time -
output time`` every ``HOP_S``: constant while the player plays on, it jumps by ``-g`` over
a silence of ``g`` that resumes where it stopped, by ``+s`` over a skip of ``s`` and by
``-r`` over a repeat of ``r``. :func:`seam` measures one switch: the media time's jump
(the change in ``d`` plus the silence in between: 0 for a perfect seam, < 0 a repeat,
> 0 a skip) and the longest silence around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RATE = 48_000
F_LO = 500.0
F_HI = 2500.0
PERIOD_S = 4.0
SLOPE = (F_HI - F_LO) / PERIOD_S  # Hz per second
AMPLITUDE = 0.3

WINDOW_S = 0.02  # frequency read over this (the sweep moves 10 Hz in it)
HOP_S = 0.005
SILENT_RMS = 1e-3  # -60 dBFS: a hop quieter than this is silence
LOUD_RMS = 0.03  # a window is read only when the clock is this loud in it
EDGE = 0.03  # windows this close (fraction of the sweep) to the wrap are not read
PAD = 16_384  # FFT length: bins of 2.9 Hz, refined by a parabola through the peak


def wrap(x: float) -> float:
    """A difference of media times as the clock tells it: the nearest one, within half
    a period either way."""
    return float(x - PERIOD_S * round(x / PERIOD_S))


def frequency_at(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(F_LO + SLOPE * np.mod(t, PERIOD_S))


class Clock:
    """Samples of the clock, in consecutive blocks (phase-continuous across calls)."""

    def __init__(self, rate: int = RATE, amplitude: float = AMPLITUDE) -> None:
        self.rate = rate
        self.amplitude = amplitude
        self.n = 0
        self.phase = 0.0

    def next(self, samples: int) -> npt.NDArray[np.float32]:
        t = (np.arange(samples, dtype=np.float64) + self.n) / self.rate
        steps = 2 * np.pi * frequency_at(t) / self.rate
        phases = self.phase + np.cumsum(steps) - steps
        self.phase = float((phases[-1] + steps[-1]) % (2 * np.pi))
        self.n += samples
        return (self.amplitude * np.sin(phases)).astype(np.float32)


@dataclass(frozen=True)
class Track:
    t: npt.NDArray[np.float64]  # window centres (s from the recording's start)
    d: npt.NDArray[np.float64]  # media time - output time (s), unwrapped; NaN: not read
    silent: npt.NDArray[np.bool_]  # per hop: silence


def clock_track(samples: npt.ArrayLike, rate: int) -> Track:
    x = np.asarray(samples, dtype=np.float64)
    win = int(WINDOW_S * rate)
    hop = int(HOP_S * rate)
    count = max(0, (len(x) - win) // hop + 1)
    window = np.hanning(win)
    freqs = np.fft.rfftfreq(PAD, 1 / rate)
    t = np.empty(count)
    d = np.full(count, np.nan)
    silent = np.empty(count, dtype=bool)
    previous: float | None = None
    for i in range(count):
        seg = x[i * hop : i * hop + win]
        t[i] = (i * hop + win / 2) / rate
        rms = float(np.sqrt(np.mean(seg[(win - hop) // 2 : (win + hop) // 2] ** 2)))
        silent[i] = rms < SILENT_RMS
        if float(np.sqrt(np.mean(seg**2))) < LOUD_RMS:
            continue
        spectrum = np.abs(np.fft.rfft(seg * window, PAD))
        k = int(np.argmax(spectrum))
        if not 0 < k < len(spectrum) - 1:
            continue
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-30)
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c else 0.0
        f = freqs[k] + shift * (freqs[1] - freqs[0])
        u = (f - F_LO) / (F_HI - F_LO)
        if not EDGE < u < 1 - EDGE:
            continue
        value = u * PERIOD_S - t[i]
        if previous is not None:  # unwrap: the nearest to the last one read
            value -= PERIOD_S * np.round((value - previous) / PERIOD_S)
        d[i] = previous = value
    return Track(t, d, silent)


@dataclass(frozen=True)
class Seam:
    at_s: float  # where it was measured (s from the recording's start)
    jump_ms: float  # the media time's jump across it: < 0 a repeat, > 0 a skip
    silence_ms: float  # silence in the seam's window (all of it)
    longest_silence_ms: float
    residual_ms: float  # the worst misfit of the lines before and after (noise, glitches)
    # other media heard right at it (FOREIGN_NEAR_S either side): read windows off the
    # line of their side by more than FOREIGN_OFF_S (a seek's old place, two paths at once;
    # reported, for a seam that measures oddly)
    foreign_ms: float

    @property
    def repeat_ms(self) -> float:
        return max(0.0, -self.jump_ms)

    @property
    def skip_ms(self) -> float:
        return max(0.0, self.jump_ms)


def _run(track: Track, start: int, step: int, span_s: float) -> npt.NDArray[np.intp]:
    """Indices of the run of read windows from ``start`` going ``step`` (+1 or -1) while
    the media time heard goes on smoothly (no jump, no hole), at most ``span_s`` long."""
    t, d = track.t, track.d
    out = [start]
    i = start
    while True:
        j = i + step
        # unread windows: a few (a glitch), or the clock's wrap if it is loud throughout
        while 0 <= j < len(d) and np.isnan(d[j]) and abs(t[j] - t[i]) < WRAP_HOLE_S:
            if abs(t[j] - t[i]) >= RUN_HOLE_S and track.silent[j]:
                break
            j += step
        if not 0 <= j < len(d) or np.isnan(d[j]) or abs(t[j] - t[start]) > span_s:
            break
        hops = abs(j - i)
        if hops * HOP_S > RUN_HOLE_S:  # across the wrap: the drift of a player at 0.8x
            allowed = RUN_STEP_S + HOLE_DRIFT_S * hops
        else:
            allowed = RUN_STEP_S * max(1, hops)
        if abs(d[j] - d[i]) > allowed:
            break
        out.append(j)
        i = j
    return np.array(sorted(out))


def _first_run(
    track: Track, starts: npt.NDArray[np.intp], step: int, span_s: float, limit: float
) -> npt.NDArray[np.intp]:
    best = np.array([], dtype=np.intp)
    for k in starts:
        if (track.t[k] - limit) * step > 0:
            break
        run = _run(track, int(k), step, span_s)
        if len(run) > len(best):
            best = run
        if len(run) >= 20:
            break
    return best


SETTLE_S = 0.25  # how far from the silence a run may start
FOREIGN_NEAR_S = 0.2
FOREIGN_OFF_S = 0.1  # a second or so off: other media; less: a window read at an onset
RUN_HOLE_S = 0.03  # unread windows a run may step over (not silence: that is a hole)
RUN_STEP_S = 0.003  # d may move this much per hop within a run (a player at 0.85x: 0.75 ms)
# the windows near the clock's wrap are not read (EDGE): a run steps over them, no further
WRAP_HOLE_S = 2 * EDGE * PERIOD_S + 0.05
HOLE_DRIFT_S = 0.001  # per hop across such a hole (a player at 0.8x)


def seam(
    track: Track, at_s: float, *, before_s: float = 0.3, after_s: float = 0.1, span_s: float = 0.4
) -> Seam:
    """The switch near ``at_s``, where the player may go silent within
    ``[at_s - before_s, at_s + after_s]`` (if it does: from the first silent hop there to
    the end of the last; else at ``at_s``). The media time heard is fitted with a line
    on the smooth run of windows (up to ``span_s``) that ends where the silence starts
    and on the one that starts where it ends (a player may play slower for a while: the
    lines follow); the jump is the difference of the two lines there, less what was
    heard in between (sound within the silent stretch, played at speed)."""
    t, d = track.t, track.d
    tau = d + t  # media time heard (d is unwrapped)
    between = (t >= at_s - before_s) & (t <= at_s + after_s)
    silent_idx = np.flatnonzero(track.silent & between)
    if len(silent_idx):
        stop = t[silent_idx[0]] - HOP_S / 2
        resume = t[silent_idx[-1]] + HOP_S / 2
    else:  # no silence: the switch is the biggest jump in the window (if any)
        stop = resume = at_s
        near = np.flatnonzero(~np.isnan(d) & between)
        if len(near) > 1:
            k = int(np.argmax(np.abs(np.diff(d[near]))))
            if abs(d[near[k + 1]] - d[near[k]]) > RUN_STEP_S:
                stop = resume = (t[near[k]] + t[near[k + 1]]) / 2
    read = np.flatnonzero(~np.isnan(d))
    before = read[t[read] < stop - WINDOW_S / 2]
    after = read[t[read] > resume + WINDOW_S / 2]
    if not len(before) or not len(after):
        raise AssertionError(f"the clock was not heard on both sides of {at_s:.2f} s")
    # the runs nearest the silence that are long enough (a switch may leave a few odd
    # windows right at it: a seek's first samples, two paths heard together)
    pre = _first_run(track, before[::-1], -1, span_s, t[before[-1]] - SETTLE_S)
    post = _first_run(track, after, +1, span_s, t[after[0]] + SETTLE_S)
    if len(pre) < 20 or len(post) < 20:
        raise AssertionError(
            f"no smooth run of the clock on both sides of {at_s:.2f} s "
            f"({len(pre)} windows before, {len(post)} after)"
        )
    a = np.polyfit(t[pre], tau[pre], 1)
    b = np.polyfit(t[post], tau[post], 1)
    residual = max(
        float(np.max(np.abs(np.polyval(a, t[pre]) - tau[pre]))),
        float(np.max(np.abs(np.polyval(b, t[post]) - tau[post]))),
    )
    longest = run = 0
    for quiet in track.silent[between]:
        run = run + 1 if quiet else 0
        longest = max(longest, run)
    silence = len(silent_idx) * HOP_S
    heard_between = max(0.0, (resume - stop) - silence)
    # The unwrapping of ``d`` may take another turn at a glitch (a few windows of other
    # media right at a seam): the jump is the nearest one.
    jump = wrap(float(np.polyval(b, resume) - np.polyval(a, stop)) - heard_between)
    near_before = before[t[before] >= stop - FOREIGN_NEAR_S]
    near_after = after[t[after] <= resume + FOREIGN_NEAR_S]
    off = np.concatenate(
        [
            _off_line(tau[near_before] - np.polyval(a, t[near_before])),
            _off_line(tau[near_after] - np.polyval(b, t[near_after])),
        ]
    )
    return Seam(
        at_s=at_s,
        jump_ms=jump * 1000,
        silence_ms=silence * 1000,
        longest_silence_ms=longest * HOP_S * 1000,
        residual_ms=residual * 1000,
        foreign_ms=float(np.sum(off)) * HOP_S * 1000,
    )


def _off_line(misfit: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Windows off their line by more than FOREIGN_OFF_S (modulo the period)."""
    return np.asarray([abs(wrap(float(m))) > FOREIGN_OFF_S for m in misfit], dtype=bool)
