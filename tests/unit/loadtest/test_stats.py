"""Mergeable counters and histograms: what workers send, what the parent reads."""

from __future__ import annotations

import json
import random

import pytest

from pnyx.loadtest.stats import Hist, Stats, merged


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
