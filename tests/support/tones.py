"""Sine tones in, tones found out: the measurements the audio tests and benches rely on.

Speakers in the tests each publish a pure tone at their own frequency; whatever path the
audio takes (Opus over WebRTC, the server's mixer, AAC in fMP4 over LL-HLS), a listener
decides who it hears by looking for those frequencies in the spectrum.

A tone counts as *present* when, in a Hann-windowed FFT of the samples, the strongest
bin of its band (``freq`` ± ``band_hz``) stands at least ``snr_db`` above the noise
floor, taken as the median bin power over the analysed range, AND its amplitude is at
least ``min_dbfs``. The median ignores the few bins the tones occupy, so the floor is the
codec's noise, not the signal. Silence (all zeros) has no floor: an absolute floor keeps
the ratio finite and the amplitude test decides.

Calibration (tests/e2e/test_audio_harness.py): a 0.1-amplitude tone through AAC-LC at
64 kbit/s or Opus stands 60-100 dB above the floor; an absent tone, even next to three
loud ones, stays within ~10 dB of it. 30 dB sits between the two with margin on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RATE = 48_000
Samples = npt.NDArray[np.float32]

SNR_DB = 30.0  # band peak over the median noise floor
MIN_DBFS = -50.0  # and at least this loud (amplitude, dB relative to full scale)
BAND_HZ = 15.0  # half-width of the band searched around each frequency
ANALYSED = (80.0, 6000.0)  # the range the noise floor is taken from (speech band)
_ABS_FLOOR = 1e-12  # power per bin, relative to N²: keeps silence's ratio finite


def sine(
    freq: float, samples: int, amplitude: float = 0.2, *, start: int = 0, rate: int = RATE
) -> Samples:
    """``samples`` samples of a sine; ``start`` is the index of the first one, so that
    consecutive calls continue the phase."""
    t = (np.arange(samples, dtype=np.float64) + start) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@dataclass(frozen=True, slots=True)
class ToneLevel:
    freq: float
    dbfs: float  # amplitude of the band, dB relative to a full-scale sine
    snr_db: float  # band peak over the median noise floor

    def present(self, snr_db: float = SNR_DB, min_dbfs: float = MIN_DBFS) -> bool:
        return self.snr_db >= snr_db and self.dbfs >= min_dbfs


def _spectrum(samples: npt.ArrayLike, rate: int) -> tuple[np.ndarray, np.ndarray, int]:
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {x.shape}")
    n = len(x)
    if n < rate // 50:
        raise ValueError(f"need at least 20 ms of audio, got {n} samples")
    power = np.abs(np.fft.rfft(x * np.hanning(n))) ** 2
    freqs = np.fft.rfftfreq(n, 1 / rate)
    return power, freqs, n


def tone_levels(
    samples: npt.ArrayLike,
    candidates: tuple[float, ...] | list[float] | set[float],
    *,
    rate: int = RATE,
    band_hz: float = BAND_HZ,
) -> dict[float, ToneLevel]:
    """Level and prominence of each candidate frequency in ``samples``."""
    power, freqs, n = _spectrum(samples, rate)
    analysed = (freqs >= ANALYSED[0]) & (freqs <= ANALYSED[1])
    floor = max(float(np.median(power[analysed])), _ABS_FLOOR * n * n)
    out: dict[float, ToneLevel] = {}
    for freq in sorted(candidates):
        band = (freqs >= freq - band_hz) & (freqs <= freq + band_hz)
        if not band.any():
            raise ValueError(f"{freq} Hz is outside the spectrum of {n} samples at {rate} Hz")
        # Parseval for a Hann-windowed sine of amplitude A: the positive-frequency bins
        # of its main lobe hold 3·A²·N²/32 in total.
        amplitude = float(np.sqrt(32 * power[band].sum() / (3 * n * n)))
        out[freq] = ToneLevel(
            freq=freq,
            dbfs=20 * np.log10(max(amplitude, 1e-12)),
            snr_db=10 * np.log10(max(float(power[band].max()), 1e-300) / floor),
        )
    return out


def tone_energy(
    samples: npt.ArrayLike, freq: float, *, rate: int = RATE, band_hz: float = BAND_HZ
) -> ToneLevel:
    """The level of one frequency (see :func:`tone_levels`)."""
    return tone_levels(samples, (freq,), rate=rate, band_hz=band_hz)[freq]


def dominant_tones(
    samples: npt.ArrayLike,
    rate: int,
    candidates: tuple[float, ...] | list[float] | set[float],
    *,
    snr_db: float = SNR_DB,
    min_dbfs: float = MIN_DBFS,
) -> set[float]:
    """The candidate frequencies present in ``samples``."""
    levels = tone_levels(samples, candidates, rate=rate)
    return {f for f, level in levels.items() if level.present(snr_db, min_dbfs)}


def describe(samples: npt.ArrayLike, candidates: tuple[float, ...], rate: int = RATE) -> str:
    """A one-line summary for assertion messages."""
    levels = tone_levels(samples, candidates, rate=rate)
    return ", ".join(
        f"{f:g} Hz: {lv.dbfs:.0f} dBFS, {lv.snr_db:.0f} dB over floor" for f, lv in levels.items()
    )


def onset(
    samples: npt.ArrayLike,
    freq: float,
    *,
    rate: int = RATE,
    start: int = 0,
    window_s: float = 0.02,
    min_dbfs: float = -40.0,
    hold_s: float = 0.03,
) -> int | None:
    """Index of the first sample at or after ``start`` where ``freq`` switches on (from
    off: a tone already on at ``start`` is not an onset until it has been off), or None.

    A sliding single-frequency DFT over Hann windows of ``window_s``, hopped by an
    eighth of a window. The tone is *on* once its amplitude stays at or above ``min_dbfs`` for
    ``hold_s`` (so a click does not count). The onset is then placed where the windowed
    amplitude first reaches half of the tone's settled amplitude: for a tone switched on
    abruptly that is the centre of the window straddling the switch, i.e. the switch itself,
    to about a millisecond.
    """
    x = np.asarray(samples, dtype=np.float64)[start:]
    win = max(8, int(window_s * rate))
    hop = max(1, win // 8)
    if len(x) < win:
        return None
    levels = _sliding_amplitude(x, freq, rate, win, hop)
    hold = max(1, int(hold_s * rate / hop))
    threshold = 10 ** (min_dbfs / 20)
    off = np.flatnonzero(levels < threshold / 2)  # hysteresis: clearly off first
    if not len(off):
        return None
    run = 0
    for i in range(int(off[0]) + 1, len(levels)):
        run = run + 1 if levels[i] >= threshold else 0
        if run == hold:
            first = i - hold + 1
            ramp = win // hop  # windows that straddle the switch
            settled = float(np.median(levels[min(first + ramp, i) : i + 1]))
            last_off = int(off[off < first].max())
            j = max(last_off, first - 2 * ramp)
            while j < i and levels[j] < settled / 2:
                j += 1
            return start + j * hop + win // 2
    return None


def _sliding_amplitude(x: np.ndarray, freq: float, rate: int, win: int, hop: int) -> np.ndarray:
    """Amplitude of ``freq`` in Hann windows of ``win`` samples every ``hop`` samples.
    (Hann, not rectangular: a loud neighbour 250 Hz away must not leak over the threshold.)"""
    t = np.arange(len(x)) / rate
    iq = x * np.exp(-2j * np.pi * freq * t)
    window = np.hanning(win)
    frames = np.lib.stride_tricks.sliding_window_view(iq, win)[::hop]
    return np.asarray(2 * np.abs(frames @ window) / window.sum())
