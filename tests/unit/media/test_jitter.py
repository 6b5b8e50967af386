"""The adaptive jitter buffer of publish sessions (media/ingest.py), fed RTP packets on a
clock the test sets: one frame held on a clean link, more when packets arrive unevenly,
a floor raised by packets that come too late, and back down when the link calms."""

from __future__ import annotations

import random

from aiortc.rtp import RtpPacket

from pnyx.media.ingest import (
    JITTER_CAPACITY,
    JITTER_LATE_HOLD_S,
    JITTER_MAX_PREFETCH,
    JITTER_MIN_PREFETCH,
    AdaptiveJitterBuffer,
)

FRAME_S = 0.02


def rtp(seq: int) -> RtpPacket:
    packet = RtpPacket(payload_type=111, sequence_number=seq % 65536, timestamp=seq * 960)
    packet._data = b"\xfc"
    return packet


class Link:
    """Packets sent every 20 ms, each arriving ``delay(seq)`` later, in arrival order."""

    def __init__(self) -> None:
        self.now = 0.0
        # The setting for quiet networks (jitter_min_frames = 1): the adaptation is visible.
        self.jb = AdaptiveJitterBuffer(
            capacity=JITTER_CAPACITY, clock=lambda: self.now, min_prefetch=1
        )
        self.held: list[int] = []  # frames behind the newest sequence number at release

    def run(self, first: int, count: int, delay: dict[int, float] | None = None) -> None:
        delay = delay or {}
        arrivals = sorted(
            (seq * FRAME_S + delay.get(seq, 0.001), seq) for seq in range(first, first + count)
        )
        for at, seq in arrivals:
            self.now = max(self.now, at)
            _, frame = self.jb.add(rtp(seq))
            if frame is not None:
                self.held.append(seq - frame.timestamp // 960)


def test_a_clean_link_costs_one_frame() -> None:
    link = Link()
    link.run(65_500, 200)  # across the sequence number wrap
    assert link.jb.prefetch == 1
    assert set(link.held[-100:]) == {1}  # released as soon as the next one is in: 20 ms
    assert link.jb.jitter < 0.001


def test_an_uneven_link_holds_more_then_comes_back_down() -> None:
    rng = random.Random(7)
    link = Link()
    link.run(0, 50)
    jittery = {seq: rng.uniform(0.0, 0.04) for seq in range(50, 550)}  # ±20 ms around 20 ms
    link.run(50, 100, jittery)  # the estimate catches up: a packet or two may be late
    adapting = link.jb.late
    assert adapting <= 3
    link.run(150, 400, jittery)
    assert 0.008 < link.jb.jitter < 0.02, link.jb.jitter
    deep = link.jb.prefetch
    assert 2 <= deep <= JITTER_MAX_PREFETCH
    assert link.jb.late == adapting  # then it holds enough: nothing comes after its turn
    link.run(550, 600)  # calm again for 12 s
    assert link.jb.prefetch == 1
    assert set(link.held[-50:]) == {1}  # and the frames it was holding were let go
    assert link.jb.dropped >= deep - 1


def test_a_packet_too_late_raises_the_floor_for_a_while() -> None:
    link = Link()
    link.run(0, 50)
    link.run(50, 10, {55: 0.05})  # 55 arrives after 56 and 57, its turn long gone
    assert link.jb.late == 1
    assert link.jb.prefetch == 2
    link.run(60, round(JITTER_LATE_HOLD_S / FRAME_S) + 50)
    assert link.jb.prefetch == 1


def test_losses_still_cost_nothing_later() -> None:
    link = Link()
    lost = {100, 101, 200}
    for seq in range(300):
        link.now = seq * FRAME_S + 0.001
        if seq not in lost:
            _, frame = link.jb.add(rtp(seq))
            if frame is not None:
                link.held.append(seq - frame.timestamp // 960)
    assert set(link.held[-50:]) == {1}


def test_the_default_floor_is_four_frames() -> None:
    jb = AdaptiveJitterBuffer(capacity=JITTER_CAPACITY, clock=lambda: 0.0)
    assert jb.prefetch == JITTER_MIN_PREFETCH == 4


def test_with_a_floor_of_zero_a_clean_link_holds_nothing_and_reordering_raises_it() -> None:
    link = Link()
    link.jb = AdaptiveJitterBuffer(capacity=JITTER_CAPACITY, clock=lambda: link.now, min_prefetch=0)
    link.run(0, 100)
    assert link.jb.prefetch == 0
    assert set(link.held[-50:]) == {0}  # each packet out as it arrives
    link.run(100, 10, {105: 0.05})  # 105 after 106 and 107: given up, then late
    assert link.jb.late == 1 and link.jb.prefetch == 1
    link.run(110, round(JITTER_LATE_HOLD_S / FRAME_S) + 50)
    assert link.jb.prefetch == 0
