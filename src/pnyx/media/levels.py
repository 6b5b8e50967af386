"""Audio levels and speaking detection, pure and clock-free.

:func:`level_dbov` is the RMS level of a frame relative to full scale, the quantity RFC 6464
carries in its audio-level header extension: 0 dBov is a full-scale square wave, a
full-scale sine is about -3 dBov, digital silence is the floor, -127 dBov.

:class:`SpeakingDetector` turns a stream of per-frame levels into a speaking flag with
hysteresis: it starts after ``onset_frames`` consecutive frames at or above the threshold
and stops after ``hangover_frames`` consecutive frames below it. It counts frames handed
to it and never reads a clock (like LiveKit's audio-level code, which is handed the time).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

MIN_DBOV = -127.0
MAX_DBOV = 0.0


def level_dbov(frame: npt.ArrayLike) -> float:
    """RMS level of ``frame`` (float samples, full scale 1.0) in dBov, in [-127, 0]."""
    samples = np.asarray(frame, dtype=np.float64)
    if samples.size == 0:
        return MIN_DBOV
    rms = math.sqrt(float(np.mean(samples * samples)))
    if not rms > 0.0:  # silence, or NaN from a broken frame
        return MIN_DBOV
    return max(MIN_DBOV, min(MAX_DBOV, 20.0 * math.log10(rms)))


class SpeakingDetector:
    """Speaking / not speaking, with onset and hangover counted in frames (20 ms each)."""

    def __init__(
        self, threshold_dbov: float = -45.0, onset_frames: int = 3, hangover_frames: int = 25
    ) -> None:
        if not MIN_DBOV <= threshold_dbov <= MAX_DBOV:
            raise ValueError(f"threshold {threshold_dbov} dBov is outside [-127, 0]")
        if onset_frames < 1 or hangover_frames < 1:
            raise ValueError("onset_frames and hangover_frames must be at least 1")
        self.threshold_dbov = threshold_dbov
        self.onset_frames = onset_frames
        self.hangover_frames = hangover_frames
        self._speaking = False
        self._run = 0  # consecutive frames on the "other side" of the threshold
        self._level = MIN_DBOV

    @property
    def speaking(self) -> bool:
        return self._speaking

    @property
    def level(self) -> float:
        """The level of the last frame handed in, in dBov."""
        return self._level

    def update(self, frame: npt.ArrayLike) -> bool:
        """Hand in the next frame; returns whether the speaker is now speaking."""
        return self.update_level(level_dbov(frame))

    def update_level(self, level: float) -> bool:
        """Hand in the next frame's level (e.g. from an RFC 6464 header); returns speaking."""
        self._level = level
        loud = level >= self.threshold_dbov
        if loud != self._speaking:
            self._run += 1
            if self._run >= (self.onset_frames if loud else self.hangover_frames):
                self._speaking = loud
                self._run = 0
        else:
            self._run = 0
        return self._speaking
