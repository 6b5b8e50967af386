"""Mergeable counters and latency histograms, and the one percentile rule (pure).

Workers keep cumulative :class:`Stats`; the parent merges their latest snapshots (plain
dicts, so they cross process boundaries as they are) and reads percentiles off the merged
histograms. Histogram buckets are logarithmic, 16 per doubling (≤ ~4.4 % error).

Every percentile — of a histogram here, of raw samples in the benches (``percentile``),
medians included — is the nearest rank (:func:`nearest_rank`): always a value that was
seen (or its bucket), never one between two.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

_PER_DOUBLING = 16
_FLOOR_S = 1e-5  # 10 µs: everything below lands in bucket 0


def nearest_rank(q: float, n: int) -> int:
    """The rank (1-based) of the ``q`` quantile (0 ≤ q ≤ 1) among ``n`` ordered values:
    the smallest rank with at least a ``q`` share of the values at or below it, that is
    ⌈q·n⌉, and at least 1. ``q`` is taken as written (0.95 is 19/20, not the float below
    it), so 0.07 of 100 is rank 7, not 8."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile is between 0 and 1, not {q}")
    if n < 1:
        raise ValueError(f"no rank among {n} values")
    return max(1, math.ceil(Fraction(str(q)) * n))


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q`` quantile (0 ≤ q ≤ 1) of ``values`` by nearest rank; NaN when empty.
    The median is ``percentile(values, 0.5)``: the lower middle of an even count."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[nearest_rank(q, len(ordered)) - 1]


def bucket_of(seconds: float) -> int:
    if seconds <= _FLOOR_S:
        return 0
    return int(math.log2(seconds / _FLOOR_S) * _PER_DOUBLING) + 1


def bucket_value(bucket: int) -> float:
    """A representative value (geometric middle) of a bucket, in seconds."""
    if bucket <= 0:
        return _FLOOR_S
    return float(_FLOOR_S * 2 ** ((bucket - 0.5) / _PER_DOUBLING))


class Hist:
    """A log-bucketed histogram of durations in seconds."""

    __slots__ = ("buckets", "count", "max", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        b = bucket_of(seconds)
        self.buckets[b] = self.buckets.get(b, 0) + 1
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds

    def merge(self, other: Hist) -> None:
        for b, n in other.buckets.items():
            self.buckets[b] = self.buckets.get(b, 0) + n
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float | None:
        """The ``q`` (0..1) quantile, or None when empty."""
        if not self.count:
            return None
        rank = nearest_rank(q, self.count)
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return min(bucket_value(b), self.max)
        return self.max

    def summary_ms(self) -> dict[str, float | int | None]:
        def ms(v: float | None) -> float | None:
            return None if v is None else round(v * 1000, 2)

        return {
            "count": self.count,
            "p50_ms": ms(self.percentile(0.50)),
            "p95_ms": ms(self.percentile(0.95)),
            "p99_ms": ms(self.percentile(0.99)),
            "max_ms": ms(self.max if self.count else None),
            "mean_ms": ms(self.total / self.count if self.count else None),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": dict(self.buckets),
            "count": self.count,
            "total": self.total,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Hist:
        h = cls()
        h.buckets = {int(k): int(v) for k, v in raw["buckets"].items()}
        h.count = int(raw["count"])
        h.total = float(raw["total"])
        h.max = float(raw["max"])
        return h


class Stats:
    """Named counters and named histograms; cumulative, mergeable."""

    __slots__ = ("counters", "hists")

    def __init__(self) -> None:
        self.counters: dict[str, float] = {}
        self.hists: dict[str, Hist] = {}

    def inc(self, name: str, n: float = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def get(self, name: str) -> float:
        return self.counters.get(name, 0)

    def hist(self, name: str) -> Hist:
        h = self.hists.get(name)
        if h is None:
            h = self.hists[name] = Hist()
        return h

    def observe(self, name: str, seconds: float) -> None:
        self.hist(name).add(seconds)

    def merge(self, other: Stats) -> None:
        for k, v in other.counters.items():
            self.counters[k] = self.counters.get(k, 0) + v
        for k, h in other.hists.items():
            self.hist(k).merge(h)

    def with_prefix(self, prefix: str) -> dict[str, float]:
        n = len(prefix)
        return {k[n:]: v for k, v in sorted(self.counters.items()) if k.startswith(prefix)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "counters": dict(self.counters),
            "hists": {k: h.to_dict() for k, h in self.hists.items()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Stats:
        s = cls()
        s.counters = {str(k): float(v) for k, v in raw["counters"].items()}
        s.hists = {str(k): Hist.from_dict(v) for k, v in raw["hists"].items()}
        return s


def merged(parts: Iterable[Stats]) -> Stats:
    total = Stats()
    for p in parts:
        total.merge(p)
    return total


def note_connection(s: Stats, seconds: float, resumed: bool | None) -> None:
    """A connection was made in ``seconds`` (TCP connect plus TLS handshake); ``resumed``:
    whether TLS resumed a session (None: plain TCP)."""
    s.observe("connect", seconds)
    if resumed is not None:
        s.inc("tls.resumed" if resumed else "tls.full")
        s.observe("connect.resumed" if resumed else "connect.full", seconds)


def connection_figures(s: Stats) -> dict[str, Any]:
    """Connections made (reconnections included), TLS handshakes by kind, and the time
    to connect (TCP connect plus TLS handshake), in all and by kind of handshake."""
    return {
        "made": s.hist("connect").count,
        "tls_full": int(s.get("tls.full")),
        "tls_resumed": int(s.get("tls.resumed")),
        "connect_ms": s.hist("connect").summary_ms(),
        "connect_full_ms": s.hist("connect.full").summary_ms(),
        "connect_resumed_ms": s.hist("connect.resumed").summary_ms(),
    }
