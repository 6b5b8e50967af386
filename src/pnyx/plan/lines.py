"""The lines of a plan, and the book that collects them with the figures each rests on."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from pnyx.plan.figures import Figures

EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Line:
    key: str  # stable: the JSON key of the prediction
    value: float
    unit: str
    how: str  # the formula in words
    figures: tuple[str, ...]  # the figure keys used directly
    via: tuple[str, ...]  # the lines it is computed from
    sources: tuple[str, ...]  # every figure key it rests on (its own and its lines')


def up(x: float) -> int:
    """Round a count up, forgiving float noise (3.0000000001 machines are 3)."""
    return max(0, math.ceil(x - EPS))


@dataclass
class Book:
    """Collects the lines of a plan and the figures each one rests on."""

    figures: Figures
    lines: dict[str, Line] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def f(self, key: str) -> float:
        return self.figures[key]

    def add(
        self,
        key: str,
        value: float,
        unit: str,
        how: str,
        *,
        figures: Iterable[str] = (),
        lines: Iterable[str] = (),
    ) -> float:
        own, via = tuple(sorted(set(figures))), tuple(lines)
        sources = set(own)
        for name in via:
            sources.update(self.lines[name].sources)
        self.lines[key] = Line(key, value, unit, how, own, via, tuple(sorted(sources)))
        return value

    def __getitem__(self, key: str) -> float:
        return self.lines[key].value
