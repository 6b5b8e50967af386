"""Mergeable counters and histograms: what workers send, what the parent reads."""

from __future__ import annotations

import json
import math
import random

import pytest

from pnyx.loadtest.stats import Hist, Stats, merged, nearest_rank, percentile


def test_percentile_is_the_nearest_rank() -> None:
    xs = [15.0, 20.0, 35.0, 40.0, 50.0]  # the textbook nearest-rank example
    assert [percentile(xs, q) for q in (0.05, 0.30, 0.40, 0.50, 1.0)] == [15, 20, 20, 35, 50]
    assert percentile(reversed(xs), 0.5) == 35  # any order
    tens = [float(v) for v in range(10, 0, -1)]
    assert percentile(tens, 0.5) == 5  # an even count: the lower middle, never 5.5
    assert percentile(tens, 0.9) == 9
    assert percentile(tens, 0.95) == 10  # 9.5 → rank 10
    assert percentile(tens, 0.0) == 1
    assert percentile([7.0], 0.99) == 7
    assert math.isnan(percentile([], 0.5))


def test_nearest_rank_takes_the_quantile_as_written() -> None:
    assert nearest_rank(0.07, 100) == 7  # 0.07 * 100 is 7.000000000000001 in floats
    assert nearest_rank(0.95, 20) == 19
    assert nearest_rank(0.95, 21) == 20  # 19.95
    assert nearest_rank(0.99, 200) == 198
    assert nearest_rank(0.5, 3) == 2
    assert nearest_rank(0.0, 5) == 1
    with pytest.raises(ValueError, match="between 0 and 1"):
        nearest_rank(95, 100)  # a percent, not a quantile
    with pytest.raises(ValueError, match="no rank"):
        nearest_rank(0.5, 0)


def test_a_histogram_reads_the_same_rank_as_raw_values() -> None:
    values = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512]
    h = Hist()
    for v in values:
        h.add(v)
    for q in (0.05, 0.5, 0.9, 0.95, 0.99):  # buckets far apart: each value its own
        got = h.percentile(q)
        assert got == pytest.approx(percentile(values, q), rel=0.05), q


def test_percentiles_within_bucket_error() -> None:
    rng = random.Random(1)
    values = [rng.uniform(0.001, 0.5) for _ in range(5000)]
    h = Hist()
    for v in values:
        h.add(v)
    values.sort()
    for q in (0.5, 0.95, 0.99):
        exact = values[int(q * len(values)) - 1]
        got = h.percentile(q)
        assert got is not None and got == pytest.approx(exact, rel=0.06)
    assert h.max == max(values) and h.count == 5000
    assert Hist().percentile(0.5) is None


def test_merge_equals_one_histogram_of_everything() -> None:
    rng = random.Random(2)
    parts = [Stats() for _ in range(3)]
    whole = Stats()
    for i in range(3000):
        v = rng.expovariate(50)
        s = parts[i % 3]
        s.observe("part", v)
        s.inc("requests")
        s.inc("bytes", 100)
        whole.observe("part", v)
        whole.inc("requests")
        whole.inc("bytes", 100)
    total = merged(parts)
    assert total.counters == whole.counters
    assert total.hist("part").buckets == whole.hist("part").buckets
    assert total.hist("part").percentile(0.99) == whole.hist("part").percentile(0.99)


def test_snapshots_cross_process_boundaries_as_plain_data() -> None:
    s = Stats()
    s.observe("state", 0.25)
    s.inc("status.503", 2)
    wire = json.loads(json.dumps(s.to_dict()))  # keys become strings
    back = Stats.from_dict(wire)
    assert back.counters == s.counters
    assert back.hist("state").buckets == s.hist("state").buckets
    assert back.with_prefix("status.") == {"503": 2}
