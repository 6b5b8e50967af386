"""The stage mix, as pure numpy: program mix, mix-minus per speaker, and a limiter.

Every 20 ms the runner hands :meth:`Mixer.mix` one frame per contributing speaker: float32
mono, :data:`FRAME_SAMPLES` samples at :data:`SAMPLE_RATE`, in [-1, 1]. Out come the
program mix (what listeners hear, what gets encoded) and, for each contributor, the mix of
everybody else (their "mix-minus", sent back over their peer connection so they do not
hear themself). Mix-minus is computed cheaply as ``total - own`` (in float64, so the own
signal cancels to rounding error), not by re-summing N-1 frames N times.

Each output has its own :class:`Limiter`, which carries its gain from frame to frame, so
thirteen full-scale speakers come out loud but never clipped, and the gain glides back to
unity when they stop. No clock and no I/O: the caller owns the 20 ms tick.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
DEFAULT_CEILING = 10 ** (-1 / 20)  # -1 dBFS: headroom for the AAC encoder's overshoot

Frame = npt.NDArray[np.float32]
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class MixResult(Generic[K]):
    """One tick's output: the program mix and each contributor's mix-minus."""

    program: Frame
    minus: Mapping[K, Frame]


def mix(frames: Mapping[K, npt.ArrayLike], samples: int = FRAME_SAMPLES) -> MixResult[K]:
    """Exact sums, no limiting: ``program = Σ frames``, ``minus[k] = program - frames[k]``.

    With no contributors the program is silence of ``samples`` samples. Every frame must
    be 1-D with the same length (``samples`` when given frames).
    """
    arrays = {key: np.asarray(frame, dtype=np.float64) for key, frame in frames.items()}
    for key, arr in arrays.items():
        if arr.shape != (samples,):
            raise ValueError(f"frame for {key!r} has shape {arr.shape}, expected ({samples},)")
    total = np.zeros(samples, dtype=np.float64)
    for arr in arrays.values():
        total += arr
    minus = {key: (total - arr).astype(np.float32) for key, arr in arrays.items()}
    return MixResult(program=total.astype(np.float32), minus=minus)


class Limiter:
    """A feed-forward peak limiter with a smooth gain that persists between frames.

    Per frame: ``needed = ceiling / peak`` (1 when the peak is under the ceiling).

    * Attack (``needed`` below the current gain): the gain ramps down to ``needed`` over
      ``attack_samples``; within that short ramp each sample's gain is also capped at
      ``ceiling / |x|``, so no sample passes the ceiling even before the ramp completes.
    * Release: the gain moves towards 1 exponentially (time constant ``release_s``),
      linearly interpolated across the frame, and never above ``needed``.

    Finally the output is hard-clipped to [-1, 1] (a safety net; NaN becomes silence).
    """

    def __init__(
        self,
        ceiling: float = DEFAULT_CEILING,
        attack_samples: int = 48,
        release_s: float = 0.2,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        if not 0 < ceiling <= 1:
            raise ValueError(f"ceiling must be in (0, 1], got {ceiling}")
        if attack_samples < 1 or release_s <= 0 or sample_rate <= 0:
            raise ValueError("attack_samples, release_s and sample_rate must be positive")
        self.ceiling = ceiling
        self.attack_samples = attack_samples
        self.release_s = release_s
        self.sample_rate = sample_rate
        self._gain = 1.0

    @property
    def gain(self) -> float:
        """The gain applied at the end of the last frame (1.0 = untouched)."""
        return self._gain

    def process(self, frame: npt.ArrayLike) -> Frame:
        x = np.nan_to_num(np.asarray(frame, dtype=np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
        n = x.shape[0]
        if n == 0:
            return x.astype(np.float32)
        magnitude = np.abs(x)
        peak = float(magnitude.max())
        needed = 1.0 if peak <= self.ceiling else self.ceiling / peak
        start = self._gain
        if needed == start == 1.0:  # under the ceiling at unity gain: untouched
            return np.clip(x, -1.0, 1.0).astype(np.float32)
        if needed < start:
            target = needed
            gain = np.full(n, target)
            ramp = min(self.attack_samples, n)
            gain[:ramp] = np.linspace(start, target, ramp + 1)[1:]
            with np.errstate(divide="ignore"):
                gain = np.minimum(gain, self.ceiling / magnitude)
        else:
            step = 1.0 - math.exp(-n / (self.sample_rate * self.release_s))
            target = min(needed, start + (1.0 - start) * step)
            if target > 1.0 - 1e-4:  # within 0.001 dB: snap to exact unity
                target = 1.0
            gain = np.linspace(start, target, n + 1)[1:]
        self._gain = target
        return np.clip(x * gain, -1.0, 1.0).astype(np.float32)


class Mixer(Generic[K]):
    """Stateful mixer: :func:`mix` plus one :class:`Limiter` per output.

    A contributor's limiter is created the first tick they appear and dropped the first
    tick they are absent, so a speaker who leaves and comes back starts at unity gain.
    """

    def __init__(
        self, samples: int = FRAME_SAMPLES, limiter: Callable[[], Limiter] = Limiter
    ) -> None:
        self.samples = samples
        self._new_limiter = limiter
        self._program = limiter()
        self._minus: dict[K, Limiter] = {}

    @property
    def program_gain(self) -> float:
        return self._program.gain

    def mix(self, frames: Mapping[K, npt.ArrayLike]) -> MixResult[K]:
        raw = mix(frames, self.samples)
        for gone in self._minus.keys() - raw.minus.keys():
            del self._minus[gone]
        minus: dict[K, Frame] = {}
        for key, frame in raw.minus.items():
            limiter = self._minus.get(key)
            if limiter is None:
                limiter = self._minus[key] = self._new_limiter()
            minus[key] = limiter.process(frame)
        return MixResult(program=self._program.process(raw.program), minus=minus)
