"""A live space's running figures, kept by its ticker: pure code, handed ``now``.

Every step costs the same whatever the audience: the listener count and the distinct
count come in as numbers (HyperLogLog counts read by the caller), and everything kept is
bounded: the timeline has at most ``max_points`` points (past that, neighbours merge and
the step doubles), joins per minute the last ``MINUTES_KEPT`` minutes, speakers the
handles that spoke. The JSON form is what the live state and the store keep.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

MAX_STEP_S = 10.0  # a gap longer than this between ticks (a lease moving) counts this much
MINUTES_KEPT = 1440  # joins per minute: a day of them


@dataclass(slots=True)
class Figures:
    sample_s: float
    max_points: int
    peak: int = 0
    peak_at: float | None = None
    listening_s: float = 0.0
    unique: int = 0  # distinct listener ids (one per join): joins per minute
    people: int = 0  # distinct people (accounts, kept client ids): unique listeners
    last: float | None = None  # the last step's time
    reacted_to: int | None = None  # reactions are counted up to this second (included)
    timeline: list[list[float]] = field(default_factory=list)  # [at, listeners (max)]
    minutes: list[list[float]] = field(default_factory=list)  # [minute start, joins]
    reactions: dict[str, int] = field(default_factory=dict)
    speakers: dict[str, float] = field(default_factory=dict)  # handle -> seconds speaking

    def step(
        self, now: float, listeners: int, unique: int, speaking: Iterable[str], people: int = 0
    ) -> None:
        """``unique``: the distinct listener ids so far (joins); ``people``: the distinct
        people so far (both HyperLogLog estimates, kept at their highest)."""
        self.people = max(self.people, people)
        dt = 0.0 if self.last is None else max(0.0, min(now - self.last, MAX_STEP_S))
        self.last = now
        self.listening_s += listeners * dt
        for handle in speaking:
            self.speakers[handle] = self.speakers.get(handle, 0.0) + dt
        if listeners > self.peak or self.peak_at is None:
            self.peak, self.peak_at = listeners, now
        self._sample(now, listeners)
        self._joins(now, unique)

    def _sample(self, now: float, listeners: int) -> None:
        if not self.timeline or now - self.timeline[-1][0] >= self.sample_s:
            self.timeline.append([now, listeners])
        else:  # a point is the most listeners seen in its step
            self.timeline[-1][1] = max(self.timeline[-1][1], listeners)
        if len(self.timeline) > self.max_points:  # coarser: merge neighbours
            pairs = zip_longest(self.timeline[0::2], self.timeline[1::2])
            self.timeline = [a if b is None else [a[0], max(a[1], b[1])] for a, b in pairs]
            self.sample_s *= 2

    def _joins(self, now: float, unique: int) -> None:
        """Joins per minute from the distinct count's growth (each join is a new
        listener id, so the sketch grows by one per join, within its error)."""
        minute = math.floor(now / 60) * 60
        if not self.minutes or self.minutes[-1][0] != minute:
            self.minutes.append([minute, 0])
            del self.minutes[:-MINUTES_KEPT]
        self.minutes[-1][1] += max(0, unique - self.unique)
        self.unique = max(self.unique, unique)

    def add_reactions(self, counts: Mapping[str, int], up_to: int) -> None:
        for emoji, n in counts.items():
            self.reactions[emoji] = self.reactions.get(emoji, 0) + n
        self.reacted_to = up_to

    def to_json(self) -> dict[str, Any]:
        return {
            "sample_s": self.sample_s,
            "max_points": self.max_points,
            "peak": self.peak,
            "peak_at": self.peak_at,
            "listening_s": self.listening_s,
            "unique": self.unique,
            "people": self.people,
            "last": self.last,
            "reacted_to": self.reacted_to,
            "timeline": self.timeline,
            "minutes": self.minutes,
            "reactions": self.reactions,
            "speakers": self.speakers,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Figures:
        return cls(
            sample_s=float(doc["sample_s"]),
            max_points=int(doc["max_points"]),
            peak=int(doc["peak"]),
            peak_at=doc.get("peak_at"),
            listening_s=float(doc["listening_s"]),
            unique=int(doc["unique"]),
            people=int(doc.get("people", 0)),
            last=doc.get("last"),
            reacted_to=doc.get("reacted_to"),
            timeline=[list(p) for p in doc.get("timeline", [])],
            minutes=[list(m) for m in doc.get("minutes", [])],
            reactions=dict(doc.get("reactions", {})),
            speakers=dict(doc.get("speakers", {})),
        )
