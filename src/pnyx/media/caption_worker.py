"""The node's caption worker: one thread that recognises every captioned space's windows
(docs/conventions.md, rule 10: codec-like work in a thread of its own, never the loop's).

Windows come from each space's :class:`~pnyx.media.captions.CaptionCutter` in the mix
clock's thread (:meth:`CaptionWorker.submit`: a bounded queue for the whole node, the
oldest window dropped when full). The recognising runs at the lowest CPU priority (the
recogniser's process at ``nice`` 19), so when the machine is short of CPU the mix clock and
the encoders win and captions fall behind; a window that waited longer than ``max_lag_s``
is dropped, and so is every window while ``shed()`` says the node is shedding load.
Captions are the first thing a node gives up, audio never. The thread itself keeps the
normal priority: it holds the interpreter lock now and then (resampling a window), and a
holder at the lowest priority can be descheduled while the audio threads wait for it.

Results go to ``deliver(window, cues)``, called in the worker's thread (the owner hands
them to its loop). The recogniser is made on first use; on a node it is a
:class:`~pnyx.media.recognizer_process.RecognizerProcess` (the model in a child process at
``nice`` 19, so that recognising never holds the node's interpreter lock), closed when the
worker stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from pnyx.media import metrics
from pnyx.media.captions import Cue, Window, attribute, to_16k
from pnyx.media.recognizer import Recognizer

log = logging.getLogger(__name__)


class CaptionWorker:
    def __init__(
        self,
        recognizer: Callable[[], Recognizer],
        deliver: Callable[[Window, list[Cue]], None],
        *,
        queue_windows: int,
        max_lag_s: float,
        shed: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._recognizer = recognizer
        self._deliver = deliver
        self._max_lag = max_lag_s
        self._shed = shed
        self._clock = clock
        self._queue: deque[Window | None] = deque()
        self._max = queue_windows
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="captions", daemon=True)
        self._started = False
        self._current: str | None = None  # the space whose window is being recognised
        self._recognizer_made: Recognizer | None = None  # closed (if it can be) at the end

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def submit(self, window: Window) -> None:
        """Queue a window (any thread; never waits)."""
        with self._cond:
            if len(self._queue) >= self._max:
                self._queue.popleft()
                metrics.CAPTION_WINDOWS.labels("queue").inc()
            self._queue.append(window)
            self._cond.notify()

    def forget(self, space: str) -> None:
        """The space stopped here: drop its queued windows."""
        with self._cond:
            kept = [w for w in self._queue if w is None or w.space != space]
            self._queue.clear()
            self._queue.extend(kept)

    def stop(self) -> None:
        with self._cond:
            self._queue.clear()
            self._queue.append(None)
            self._cond.notify()
        if self._started:
            self._thread.join(timeout=10)

    def drain(self, space: str, within: float) -> bool:
        """Wait (a thread, not the loop) until ``space``'s queued windows are done, for at
        most ``within`` seconds; False if they were not."""

        def done() -> bool:
            return self._current != space and all(
                w is None or w.space != space for w in self._queue
            )

        with self._cond:
            return self._cond.wait_for(done, within)

    # -- in the thread ------------------------------------------------------------------
    def _take(self) -> Window | None:
        with self._cond:
            self._current = None
            self._cond.notify_all()  # a drain may be waiting for the window just done
            while not self._queue:
                self._cond.wait()
            window = self._queue.popleft()
            self._current = window.space if window is not None else None
            return window

    def _run(self) -> None:
        try:
            self._recognise()
        finally:
            close = getattr(self._recognizer_made, "close", None)
            if close is not None:
                close()

    def _recognise(self) -> None:
        recognizer: Recognizer | None = None
        while (window := self._take()) is not None:
            if self._clock() - window.made > self._max_lag:
                metrics.CAPTION_WINDOWS.labels("late").inc()
                continue
            if self._shed():
                metrics.CAPTION_WINDOWS.labels("shed").inc()
                continue
            began = time.perf_counter()
            try:
                if recognizer is None:
                    recognizer = self._recognizer_made = self._recognizer()
                phrases = recognizer.transcribe(to_16k(window.audio))
            except Exception:
                log.exception("captions: recognising a window of space %s failed", window.space)
                metrics.CAPTION_WINDOWS.labels("failed").inc()
                continue
            finally:
                metrics.CAPTION_SECONDS.observe(time.perf_counter() - began)
            cues = [
                Cue(
                    # A whole-window phrase is timed by the speech in it, not its lead-in
                    # and the pause that ended it.
                    window.start_s + max(p.start, window.onset),
                    window.start_s + min(p.end, window.speech_end or window.duration),
                    attribute(window.speaking, p.start, p.end),
                    p.text,
                )
                for p in phrases
            ]
            metrics.CAPTION_WINDOWS.labels("done").inc()
            self._deliver(window, cues)
