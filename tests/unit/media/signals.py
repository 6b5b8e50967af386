"""Test signals and measurements shared by the media tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RATE = 48_000


def tone(
    freq: float, samples: int, amplitude: float = 0.5, start: int = 0
) -> npt.NDArray[np.float32]:
    """A sine of ``freq`` Hz; ``start`` is the index of its first sample (phase continuity)."""
    t = (np.arange(samples) + start) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(samples: npt.ArrayLike, rate: int = RATE) -> float:
    """The frequency of the largest FFT bin (Hann-windowed, DC excluded)."""
    x = np.asarray(samples, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def band_energy(samples: npt.ArrayLike, freq: float, rate: int = RATE) -> float:
    """|FFT| at the bin of ``freq`` (use bin-aligned frequencies and no window)."""
    x = np.asarray(samples, dtype=np.float64)
    index = round(freq * len(x) / rate)
    return float(np.abs(np.fft.rfft(x))[index])
