"""The 20 ms mix clock: one thread per stage node, off the event loop.

Every running space's mixer (:class:`~pnyx.media.runner.MixRunner`) is ticked by the
node's one :class:`MixClock` thread. Tick ``n`` is due at ``start + n·20 ms`` on
``time.monotonic()``; the thread sleeps until then (``time.sleep``: an absolute-deadline
``clock_nanosleep`` on Linux), so lateness never accumulates into drift and no event-loop
stall (aiortc's work for a dozen peer connections, a slow request) delays the mix. A tick
runs every registered mixer in turn. The event loop is never waited for: mixers talk to it
only through ``loop.call_soon_threadsafe`` and thread-safe queues.

One thread for the node rather than one per space: a node mixes few spaces, and with the
GIL a second mixing thread would only add wake-ups and contention, not parallelism (the
codecs release the GIL and the encoder threads run in parallel either way). The price is
that the spaces of a node share one schedule: ticks that take too long (far beyond the few
ms that a thirteen-speaker space costs, most of it in libopus with the GIL released) make
every space on the node late together, which ``pnyx_media_tick_lateness_seconds`` shows.

A tick that runs late runs the missed ticks back to back (each mixer gets ``late`` and
``behind``, how many more ticks are already due: the stage's speakers play the frames due
at each tick's own time, media/inbound.py); beyond
:data:`MAX_CATCHUP_S` the missed ticks are given up instead (counted). With no mixer
registered the thread waits without ticking. :meth:`MixClock.close` stops and joins it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from pnyx.media import metrics
from pnyx.media.mixer import FRAME_SAMPLES, SAMPLE_RATE

log = logging.getLogger(__name__)

TICK_S = FRAME_SAMPLES / SAMPLE_RATE  # 20 ms
MAX_CATCHUP_S = 1.0  # run missed ticks back to back up to this lateness; beyond, skip them


class Tickable(Protocol):
    def tick(self, n: int, late: float, behind: int) -> None:
        """Mix frame ``n`` (ticks of this clock), ``late`` seconds after it was due, with
        ``behind`` more ticks already due after it. Runs in the clock's thread."""

    def skipped(self, missed: int) -> None:
        """``missed`` ticks were given up (the clock fell too far behind)."""


class MixClock:
    def __init__(
        self,
        name: str = "mix-clock",
        *,
        period_s: float = TICK_S,
        max_catchup_s: float = MAX_CATCHUP_S,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._name = name
        self._period = period_s
        self._max_catchup = max_catchup_s
        self._now = now
        self._sleep = sleep
        self._mixers: tuple[Tickable, ...] = ()
        self._cond = threading.Condition()  # guards _mixers changes and _stopping
        self._running = threading.Lock()  # held by the thread while it runs mixers
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.ticks = 0  # clock ticks run (for tests)

    def add(self, mixer: Tickable) -> None:
        """Tick ``mixer`` from the next tick on (starts the thread on first use)."""
        with self._cond:
            if self._stopping:
                raise RuntimeError("the mix clock is closed")
            if mixer not in self._mixers:
                self._mixers = (*self._mixers, mixer)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()

    async def remove(self, mixer: Tickable) -> None:
        """Stop ticking ``mixer``; returns once the thread is no longer inside its tick."""
        with self._cond:
            self._mixers = tuple(m for m in self._mixers if m is not mixer)
        await asyncio.to_thread(self._wait_tick)

    def _wait_tick(self) -> None:
        with self._running:
            pass

    async def close(self) -> None:
        """Stop the thread and join it. Idempotent."""
        with self._cond:
            self._stopping = True
            self._mixers = ()
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread.is_alive():
            await asyncio.to_thread(thread.join)

    @property
    def mixers(self) -> tuple[Tickable, ...]:
        return self._mixers

    # -- in the thread ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._schedule()
        except BaseException:  # never silently: every space on the node stops mixing
            log.exception("mix clock %s stopped", self._name)
            raise

    def _schedule(self) -> None:
        period = self._period
        n = 0
        start: float | None = None
        while True:
            with self._cond:
                while not self._mixers and not self._stopping:
                    start = None  # idle: re-anchor the schedule when work comes back
                    self._cond.wait()
                if self._stopping:
                    return
                mixers = self._mixers
            now = self._now()
            if start is None:
                start = now - n * period
            due = start + n * period
            if due > now:
                self._sleep(due - now)
                now = self._now()
            late = max(0.0, now - due)
            if late > self._max_catchup:
                missed = int(late / period)
                n += missed
                metrics.TICKS_SKIPPED.inc(missed)
                log.warning("mix clock fell %.0f ms behind: %d ticks skipped", late * 1e3, missed)
                for mixer in mixers:
                    mixer.skipped(missed)
                continue
            metrics.TICKS.inc()
            metrics.TICK_LATENESS.observe(late)
            with self._running:
                for mixer in self._mixers:  # re-read: remove() may have just taken one out
                    try:
                        mixer.tick(n, late, int(late / period))
                    except Exception:  # one broken space must not silence the others
                        log.exception("mix clock %s: a mixer's tick failed", self._name)
            self.ticks += 1
            n += 1
