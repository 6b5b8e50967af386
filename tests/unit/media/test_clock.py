"""The mix clock's thread: an absolute 20 ms schedule, catch-up and skipping, mixers
added and removed while it runs, and a join on close."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from pnyx.media.clock import TICK_S, MixClock
from tests.support.poll import eventually


class Recorder:
    def __init__(self, work_s: float = 0.0) -> None:
        self.calls: list[tuple[int, float, int]] = []
        self.missed = 0
        self.work_s = work_s
        self.threads: set[str] = set()

    def tick(self, n: int, late: float, behind: int) -> None:
        self.threads.add(threading.current_thread().name)
        self.calls.append((n, late, behind))
        if self.work_s:
            time.sleep(self.work_s)

    def skipped(self, missed: int) -> None:
        self.missed += missed


async def test_ticks_every_20_ms_in_its_own_thread_and_joins_on_close() -> None:
    clock = MixClock("test-clock")
    mixer = Recorder()
    began = time.monotonic()
    clock.add(mixer)
    await eventually(lambda: len(mixer.calls) >= 25, 5, "25 ticks")
    elapsed = time.monotonic() - began
    assert elapsed == pytest.approx(len(mixer.calls) * TICK_S, abs=0.1)
    ns = [n for n, _, _ in mixer.calls]
    assert ns == list(range(ns[0], ns[0] + len(ns)))
    assert mixer.threads == {"test-clock"}
    await clock.close()
    assert not any(t.name == "test-clock" for t in threading.enumerate())
    with pytest.raises(RuntimeError):
        clock.add(Recorder())


async def test_remove_returns_once_no_tick_of_the_mixer_runs() -> None:
    clock = MixClock()
    slow, other = Recorder(work_s=0.01), Recorder()
    clock.add(slow)
    clock.add(other)
    await eventually(lambda: len(slow.calls) >= 3, 5, "3 slow ticks")
    await clock.remove(slow)
    calls = len(slow.calls)
    await eventually(lambda: len(other.calls) >= len(slow.calls) + 5, 5, "5 more of the other")
    assert len(slow.calls) == calls
    assert clock.mixers == (other,)
    await clock.close()


class FakeTime:
    """A clock the thread reads; sleeping advances it. ``stall`` adds a one-off delay."""

    def __init__(self) -> None:
        self.t = 100.0
        self.stalls: dict[int, float] = {}
        self.sleeps = 0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.t += seconds + self.stalls.pop(self.sleeps, 0.0)


async def test_a_late_tick_catches_up_back_to_back_and_a_very_late_one_skips() -> None:
    fake = FakeTime()
    fake.stalls = {3: 0.065, 6: 2.5}  # 65 ms late at the 3rd sleep, 2.5 s at the 6th
    clock = MixClock(now=fake.now, sleep=fake.sleep)
    mixer = Recorder()
    clock.add(mixer)
    await eventually(lambda: len(mixer.calls) >= 12, 5, "12 ticks")
    await clock.close()
    ns = [n for n, _, _ in mixer.calls]
    behind = [b for _, _, b in mixer.calls]
    # After the 65 ms stall: 3 more ticks were already due and run at once.
    i = behind.index(3)
    assert behind[i : i + 4] == [3, 2, 1, 0]
    assert ns[i : i + 4] == list(range(ns[i], ns[i] + 4))
    # After the 2.5 s stall: those ticks are given up (a gap in n), counted.
    gaps = [b - a for a, b in itertools.pairwise(ns) if b - a != 1]
    assert gaps == [mixer.missed + 1] and mixer.missed == 125
    assert all(late <= 1.0 for _, late, _ in mixer.calls)
