"""The stage mix of :mod:`pnyx.media.mixer`, computed on one 2-D array per tick.

:class:`~pnyx.media.mixer.Mixer` is the reference: a dict of frames in, a limiter object
per output, a dozen small numpy calls per speaker. With thirteen speakers that is some
two hundred calls every 20 ms, and on a small machine their per-call overhead is most of
the cost. :class:`MixBus` does the same arithmetic with the speakers as the rows of one
array: the program mix, every mix-minus and every mix-minus limiter in a fixed number of
array operations, whatever the number of speakers. Same limiter, same rules (a
contributor's limiter is created the tick they appear at unity gain and dropped the tick
they are absent); a unit test holds it to the reference. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from pnyx.media.levels import MAX_DBOV, MIN_DBOV
from pnyx.media.mixer import DEFAULT_CEILING, FRAME_SAMPLES, SAMPLE_RATE, Frame, Limiter

K = TypeVar("K", bound=Hashable)
Frames = npt.NDArray[np.float32]  # (rows, samples)


@dataclass(frozen=True, slots=True)
class BusResult:
    """One tick: the program mix and the mix-minus of each row, in the rows' order."""

    program: Frame
    minus: Frames


class StackedLimiter(Generic[K]):
    """:class:`~pnyx.media.mixer.Limiter`'s rule applied to many rows at once, one gain
    carried per key from tick to tick."""

    def __init__(
        self,
        ceiling: float = DEFAULT_CEILING,
        attack_samples: int = 48,
        release_s: float = 0.2,
        sample_rate: int = SAMPLE_RATE,
        samples: int = FRAME_SAMPLES,
    ) -> None:
        if not 0 < ceiling <= 1:
            raise ValueError(f"ceiling must be in (0, 1], got {ceiling}")
        self.ceiling = ceiling
        self._gains: dict[K, float] = {}
        ramp = min(attack_samples, samples)
        # Sample j of an attack goes (j+1)/ramp of the way from the old gain to the new
        # one (then stays); a release goes (j+1)/samples of the way.
        self._attack = np.minimum(np.arange(1, samples + 1) / ramp, 1.0)
        self._release = np.arange(1, samples + 1) / samples
        self._step = 1.0 - math.exp(-samples / (sample_rate * release_s))
        self.samples = samples

    def gain(self, key: K) -> float:
        return self._gains.get(key, 1.0)

    def process(self, keys: Sequence[K], rows: npt.NDArray[np.float64]) -> Frames:
        """Limit ``rows`` (float64, one per key; finite) and forget keys not in ``keys``."""
        if not keys:
            self._gains = {}
            return np.zeros((0, self.samples), dtype=np.float32)
        start = np.fromiter((self._gains.get(k, 1.0) for k in keys), np.float64, len(keys))
        magnitude = np.abs(rows)
        peak = magnitude.max(axis=1)
        with np.errstate(divide="ignore"):
            needed = np.where(peak <= self.ceiling, 1.0, self.ceiling / peak)
        attack = needed < start
        released = np.minimum(needed, start + (1.0 - start) * self._step)
        released[released > 1.0 - 1e-4] = 1.0  # within 0.001 dB: snap to exact unity
        target = np.where(attack, needed, released)
        self._gains = dict(zip(keys, target.tolist(), strict=True))
        if not attack.any() and (start == 1.0).all() and (target == 1.0).all():
            out = rows  # nobody limited, nobody releasing: unity gain
        else:
            shape = np.where(attack[:, None], self._attack[None, :], self._release[None, :])
            gain = start[:, None] + (target - start)[:, None] * shape
            if attack.any():
                with np.errstate(divide="ignore"):
                    np.minimum(gain, self.ceiling / magnitude, out=gain)
            out = rows * gain
        return np.clip(out, -1.0, 1.0).astype(np.float32)


class MixBus(Generic[K]):
    """Program mix, mix-minus per row, a limiter per output: the whole tick at once."""

    def __init__(self, samples: int = FRAME_SAMPLES) -> None:
        self.samples = samples
        self._program = Limiter()
        self._minus: StackedLimiter[K] = StackedLimiter(samples=samples)

    @property
    def program_gain(self) -> float:
        return self._program.gain

    def minus_gain(self, key: K) -> float:
        return self._minus.gain(key)

    def mix(self, keys: Sequence[K], rows: npt.ArrayLike) -> BusResult:
        """``rows``: one frame per key, shape (len(keys), samples), in [-1, 1]."""
        x = np.asarray(rows, dtype=np.float64)
        if x.shape != (len(keys), self.samples):
            raise ValueError(f"rows have shape {x.shape}, expected ({len(keys)}, {self.samples})")
        total = x.sum(axis=0)
        if not np.isfinite(total).all():  # a broken frame: its NaN becomes silence
            x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
            total = x.sum(axis=0)
        minus = self._minus.process(keys, total[None, :] - x)
        return BusResult(program=self._program.process(total), minus=minus)


def levels_dbov(rows: npt.NDArray[np.float32]) -> list[float]:
    """:func:`~pnyx.media.levels.level_dbov` of every row at once."""
    if rows.shape[0] == 0:
        return []
    x = rows.astype(np.float64)
    rms = np.sqrt(np.einsum("ij,ij->i", x, x) / max(1, x.shape[1]))
    with np.errstate(divide="ignore"):
        db = 20.0 * np.log10(rms)
    db = np.where(rms > 0.0, np.clip(db, MIN_DBOV, MAX_DBOV), MIN_DBOV)
    out: list[float] = db.tolist()
    return out
