"""The speaker's playout buffer (media/inbound.py) on simulated links: it holds what the
measured jitter needs (nothing on a clean link, about the spread on a jittery one),
conceals only what is lost, and comes back down when the link calms."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np

from pnyx.media.frames import FrameQueue
from pnyx.media.inbound import MAX_DELAY_S, EncodedFrame, SpeakerInput
from pnyx.media.mixer import FRAME_SAMPLES
from pnyx.media.opus import OpusEncoder

from .signals import tone

FRAME_S = FRAME_SAMPLES / 48_000
T0 = 500.0
PHASE = 0.007  # the mix tick runs this long after a packet's nominal arrival


def opus_packets(n: int) -> list[bytes]:
    encoder = OpusEncoder()
    return [
        bytes(encoder.encode(tone(440, FRAME_SAMPLES, 0.3, start=i * FRAME_SAMPLES), 0)[0])
        for i in range(n)
    ]


PAYLOADS = opus_packets(50)  # reused round-robin: the decoder does not mind


class Link:
    """Packets sent every 20 ms, delayed by ``delay(seq)`` (None: lost), read by a 20 ms
    tick; records, for every frame the speaker's own packet played, how long after its
    on-time arrival it played."""

    def __init__(self, *, min_delay_s: float = 0.0, first_ts: int = 4_294_000_000) -> None:
        self.queue: FrameQueue[EncodedFrame] = FrameQueue(256, 256)
        self.source = SpeakerInput(self.queue, min_delay_s=min_delay_s)
        self.first_ts = first_ts
        self.lags: list[float] = []
        self.concealed = 0
        self.silent = 0
        self.order: list[int] = []
        self._seq = 0
        self._tick = 0
        self._in_flight: list[tuple[float, int]] = []

    def run(self, seconds: float, delay: Callable[[int], float | None]) -> None:
        played: list[int] = []
        decode = self.source._decode

        def spy(item: EncodedFrame) -> bool:
            ok = decode(item)
            if ok:
                played.append((item.timestamp - self.first_ts) % (1 << 32) // FRAME_SAMPLES)
            return ok

        self.source._decode = spy  # type: ignore[method-assign]
        end = self._seq + round(seconds / FRAME_S)
        for seq in range(self._seq, end):
            d = delay(seq)
            if d is not None:
                self._in_flight.append((T0 + seq * FRAME_S + d, seq))
        self._in_flight.sort()
        self._seq = end
        while self._tick < end:
            now = T0 + self._tick * FRAME_S + PHASE
            while self._in_flight and self._in_flight[0][0] <= now:
                at, seq = self._in_flight.pop(0)
                ts = (self.first_ts + seq * FRAME_SAMPLES) % (1 << 32)
                self.queue.put(EncodedFrame(PAYLOADS[seq % len(PAYLOADS)], ts, at))
            before = len(played)
            out = self.source.take(now)
            if len(played) > before:
                self.lags.append(now - (T0 + played[-1] * FRAME_S))
                self.order.append(played[-1])
            elif out is None:
                self.silent += 1
            else:
                self.concealed += 1
            self._tick += 1
        self.source._decode = decode  # type: ignore[method-assign]

    def p(self, q: float, last: int) -> float:
        return float(np.percentile(self.lags[-last:], q))


def test_a_clean_link_holds_nothing() -> None:
    link = Link()
    link.run(10, lambda seq: 0.001)
    assert link.source.delay < 1e-6
    assert link.p(100, 400) <= PHASE + 1e-6  # played at the first tick after it came
    assert link.concealed == 0 and link.source.late == 0


def test_a_floor_holds_that_much_on_a_clean_link() -> None:
    link = Link(min_delay_s=0.06)
    link.run(10, lambda seq: 0.001)
    assert link.source.delay == 0.06
    assert 0.06 <= link.p(50, 400) <= 0.06 + FRAME_S


def test_a_jittery_lossy_link_holds_the_spread_and_conceals_only_the_losses() -> None:
    rng = random.Random(3)
    lost = 0

    def delay(seq: int) -> float | None:
        nonlocal lost
        if rng.random() < 0.02:
            lost += 1
            return None
        return rng.uniform(0.0, 0.04)  # 20 ms of jitter: packets reorder

    link = Link()
    link.run(60, delay)
    assert 0.03 <= link.source.delay <= 0.042
    # Played about the spread after on time (plus up to a tick), never more.
    assert link.p(95, 2000) <= 0.04 + FRAME_S + PHASE
    assert link.concealed <= lost * 1.3  # barely more than was lost: few packets too late
    assert link.order == sorted(link.order)  # in order, whatever order they came in


def test_the_delay_grows_with_the_jitter_then_comes_back_down() -> None:
    rng = random.Random(5)
    link = Link()
    link.run(5, lambda seq: 0.001)
    link.run(5, lambda seq: rng.uniform(0.0, 0.08))  # a bad spell: up to 80 ms late
    assert 0.06 <= link.source.delay <= 0.08
    assert link.p(50, 100) >= 0.06
    link.run(6, lambda seq: 0.001)  # calm again
    assert link.source.delay < 1e-6
    assert link.p(100, 50) <= FRAME_S + PHASE + 1e-6  # skipped back down, within a frame
    assert link.source.skipped >= 3 and link.source.inserted >= 3


def test_no_link_is_held_back_more_than_the_most() -> None:
    rng = random.Random(9)
    link = Link()
    link.run(20, lambda seq: rng.uniform(0.0, 0.6))
    assert link.source.delay == MAX_DELAY_S
    assert link.p(100, 500) <= MAX_DELAY_S + FRAME_S + PHASE + 1e-6


def test_a_stream_slower_than_real_time_is_still_heard() -> None:
    # A sender (or a node's event loop) that keeps only 3/4 of real time: each packet
    # arrives 1/3 of a frame later than the one before, without end. The buffer cannot
    # hold that; it must not drop every packet as stale for ever either.
    link = Link()
    behind = lambda seq: seq * FRAME_S / 3  # noqa: E731
    link.run(6, behind)
    before = len(link.order)
    link.run(6, behind)
    ticks = round(6 / FRAME_S)
    heard = len(link.order) - before  # ticks of the last 6 s that played the speaker
    assert link.source.resyncs > 0
    assert heard >= 0.35 * ticks, (heard, ticks, link.source.resyncs)  # 47 % here
    assert link.order == sorted(link.order)  # never a frame played twice, or backwards
