"""The memory live state's HyperLogLog (pnyx.live.hll): error bounds and merging."""

from __future__ import annotations

import pytest

from pnyx.live.hll import HyperLogLog, M


def relative_error(sketch: HyperLogLog, n: int) -> float:
    return abs(sketch.count() - n) / n


def test_empty_and_tiny_counts_are_exact_enough() -> None:
    sketch = HyperLogLog()
    assert sketch.count() == 0
    assert sketch.add("ann")
    assert not sketch.add("ann")  # a repeat changes nothing
    assert sketch.count() == 1
    sketch.update(f"m{i}" for i in range(100))
    assert 99 <= sketch.count() <= 102


@pytest.mark.parametrize("seed", range(3))
def test_error_stays_within_bounds_across_cardinalities(seed: int) -> None:
    """Standard error is 1.04/sqrt(16384) ≈ 0.81%: every checkpoint within 2.5 of those
    (2%), including around 2.5·m ≈ 41k where the classic estimator switches method."""
    sketch = HyperLogLog()
    added = 0
    for checkpoint in (1_000, 10_000, 30_000, 40_000, 50_000, 100_000, 200_000):
        sketch.update(f"seed{seed}-{i}" for i in range(added, checkpoint))
        added = checkpoint
        assert relative_error(sketch, checkpoint) <= 0.02, (checkpoint, sketch.count())


def test_repeats_do_not_count() -> None:
    sketch = HyperLogLog()
    for _ in range(3):
        sketch.update(f"m{i}" for i in range(20_000))
    assert relative_error(sketch, 20_000) <= 0.02


def test_merge_and_union_count_the_union() -> None:
    a, b = HyperLogLog(), HyperLogLog()
    a.update(f"m{i}" for i in range(60_000))
    b.update(f"m{i}" for i in range(40_000, 100_000))
    union = HyperLogLog.union([a, b])
    expected = HyperLogLog(bytes(map(max, a.registers, b.registers)))  # the definition
    assert union == expected
    assert relative_error(union, 100_000) <= 0.02
    a.merge(b)
    assert a == expected
    assert HyperLogLog.union([]).count() == 0


def test_bytes_and_str_hash_alike_and_registers_round_trip() -> None:
    a, b = HyperLogLog(), HyperLogLog()
    a.add("ännchen")
    b.add("ännchen".encode())
    assert a == b
    assert HyperLogLog(a.registers) == a
    with pytest.raises(ValueError, match="registers"):
        HyperLogLog(b"\x00" * (M - 1))


def test_small_sketches_stay_sparse_and_count_like_dense_ones() -> None:
    small = HyperLogLog()
    small.update(f"m{i}" for i in range(50))
    assert small.is_sparse
    as_dense = HyperLogLog(small.registers)
    assert not as_dense.is_sparse
    assert small == as_dense
    assert small.count() == as_dense.count()
    big = HyperLogLog()
    big.update(f"m{i}" for i in range(25, 5_000))
    assert not big.is_sparse
    assert HyperLogLog.union([small, small.copy()]).is_sparse
    union = HyperLogLog.union([small, big])
    assert union == HyperLogLog(bytes(map(max, small.registers, big.registers)))
    assert relative_error(union, 5_000) <= 0.02
    small.merge(big)
    assert small == union
    assert not small.is_sparse
