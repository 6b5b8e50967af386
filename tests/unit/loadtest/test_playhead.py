"""The virtual playhead: playing, stalling, rebuffering, jumping holes (a fake clock:
the tests hand in ``now``)."""

from __future__ import annotations

import pytest

from pnyx.loadtest.playhead import Playhead


def started(at: float = 100.0) -> Playhead:
    ph = Playhead()
    ph.start_at(at)
    ph.add(at, at + 1.0, now=0.0)
    return ph


def test_does_not_play_before_data_covers_the_start() -> None:
    ph = Playhead()
    ph.start_at(100.0)
    ph.add(98.0, 99.5, now=0.0)  # before the start position
    ph.advance(5.0)
    assert not ph.playing and ph.stalls == 0
    ph.add(99.5, 101.0, now=5.0)
    assert ph.playing and ph.position == 100.0


def test_playback_waits_for_a_start_buffer() -> None:
    ph = Playhead(start_buffer_s=0.5)
    ph.start_at(100.0)
    ph.add(99.0, 100.2, now=0.0)  # only 0.2 s ahead of the start
    ph.advance(1.0)
    assert not ph.playing and ph.stalls == 0
    ph.add(100.2, 101.0, now=1.0)
    assert ph.playing
    ph.advance(1.5)
    assert ph.position == pytest.approx(100.5)


def test_plays_with_wall_time_while_buffered() -> None:
    ph = started()
    ph.add(101.0, 102.0, now=0.5)
    ph.advance(1.5)
    assert ph.position == pytest.approx(101.5)
    assert ph.stalls == 0 and not ph.stalled
    assert ph.buffered_end() == pytest.approx(102.0)


def test_running_out_is_a_stall_until_data_arrives() -> None:
    ph = started()
    ph.advance(1.5)  # data ran out at wall time 1.0
    assert ph.stalled and ph.stalls == 1
    assert ph.position == pytest.approx(101.0)
    assert ph.stalled_total(2.0) == pytest.approx(1.0)
    ph.add(101.0, 102.0, now=3.0)  # arrives 2 s after the stall began
    assert not ph.stalled
    assert ph.stalled_s == pytest.approx(2.0)
    ph.advance(3.5)  # playing again from where it stopped
    assert ph.position == pytest.approx(101.5)
    assert ph.stalls == 1


def test_data_in_time_never_stalls() -> None:
    ph = started()
    for i in range(1, 20):  # each second arrives 0.2 s before it is needed
        ph.add(100.0 + i, 101.0 + i, now=i - 0.2)
        ph.advance(i - 0.1)
    ph.advance(19.5)
    assert ph.stalls == 0 and ph.stalled_s == 0


def test_hole_with_data_after_it_is_jumped_not_stalled() -> None:
    ph = started()
    ph.add(103.0, 104.0, now=0.5)  # a 2 s hole (a discontinuity)
    ph.advance(1.5)
    assert ph.stalls == 0 and ph.skips == 1
    assert ph.skipped_s == pytest.approx(2.0)
    assert ph.position == pytest.approx(103.5)


def test_small_rounding_gaps_are_contiguous() -> None:
    ph = started()
    ph.add(101.05, 102.0, now=0.5)  # 50 ms apart: one range
    ph.advance(1.8)
    assert ph.stalls == 0 and ph.skips == 0
    assert ph.buffered_end() == pytest.approx(102.0)


def test_buffered_end_is_the_download_frontier() -> None:
    ph = Playhead()
    assert ph.buffered_end() is None
    ph.start_at(50.0)
    assert ph.buffered_end() == 50.0
    ph.add(49.0, 51.0, now=0.0)
    ph.add(51.0, 52.0, now=0.1)
    assert ph.buffered_end() == pytest.approx(52.0)
