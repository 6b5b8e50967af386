"""The program mix's codec work, in one dedicated thread per space (docs/conventions.md, rule 10).

The mixer hands each 20 ms program frame to :meth:`EncoderThread.submit` (a bounded,
drop-oldest queue, safe from any thread: the mix clock's thread calls it). The thread
encodes AAC (:class:`~pnyx.media.aac.AacEncoder`), cuts parts and segments
(:class:`~pnyx.media.hls.Packager`, which writes the fMP4 fragments) and hands the results
back to the event loop, in order, on an asyncio queue:

* :class:`Init` once, first: the CMAF init segment;
* :class:`Batch` whenever parts/segments complete, with the playlist state that lists them;
* :class:`Done` last, always (``error`` set if the codec failed).

:meth:`finish` ends the stream (flush the encoder, ``Packager.end()``: ENDLIST);
:meth:`abort` stops at once, emitting nothing more than Done (the lease moved on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Final

from pnyx.media import metrics
from pnyx.media.aac import AacEncoder
from pnyx.media.fmp4 import init_segment
from pnyx.media.hls import Output, Packager, PlaylistState
from pnyx.media.mixer import SAMPLE_RATE, Frame

log = logging.getLogger(__name__)

_FINISH: Final = object()
_ABORT: Final = object()


@dataclass(frozen=True, slots=True)
class Init:
    data: bytes


@dataclass(frozen=True, slots=True)
class Batch:
    outputs: tuple[Output, ...]
    state: PlaylistState


@dataclass(frozen=True, slots=True)
class Done:
    error: str | None = None


Message = Init | Batch | Done


class _Inbox:
    """A thread-safe bounded queue that drops the oldest item when full."""

    def __init__(self, maxlen: int) -> None:
        self._items: deque[object] = deque()
        self._maxlen = maxlen
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: object) -> bool:
        with self._cond:
            dropped = len(self._items) >= self._maxlen
            if dropped:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()
            return not dropped

    def put_control(self, item: object) -> None:
        """Enqueue a control item; it is last, so never the one dropped."""
        with self._cond:
            self._items.append(item)
            self._cond.notify()

    def get(self) -> object:
        with self._cond:
            while not self._items:
                self._cond.wait()
            return self._items.popleft()


class EncoderThread:
    def __init__(
        self,
        name: str,
        packager: Packager,
        *,
        bit_rate: int,
        queue_frames: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._packager = packager
        self._bit_rate = bit_rate
        self._inbox = _Inbox(queue_frames)
        self._loop = loop
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self._thread = threading.Thread(target=self._run, name=f"encoder-{name}", daemon=True)
        self._stopping = False

    def start(self) -> None:
        self._thread.start()

    def submit(self, program: Frame) -> None:
        """Queue one program frame (from the mix clock's thread; never waits)."""
        if not self._stopping and not self._inbox.put(program):
            metrics.FRAMES_DROPPED.labels("encoder").inc()

    def finish(self) -> None:
        """End the stream: flush, ENDLIST, then Done."""
        if not self._stopping:
            self._stopping = True
            self._inbox.put_control(_FINISH)

    def abort(self) -> None:
        """Stop without flushing: Done follows whatever was already queued out."""
        if not self._stopping:
            self._stopping = True
            self._inbox.put_control(_ABORT)

    async def join(self) -> None:
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)

    # -- in the thread ------------------------------------------------------------------
    def _emit(self, message: Message) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody listens any more
            self._loop.call_soon_threadsafe(self.messages.put_nowait, message)

    def _run(self) -> None:
        error: str | None = None
        try:
            encoder = AacEncoder(SAMPLE_RATE, bit_rate=self._bit_rate)
            self._emit(
                Init(
                    init_segment(
                        SAMPLE_RATE, 1, encoder.audio_specific_config, bit_rate=self._bit_rate
                    )
                )
            )
            while True:
                item = self._inbox.get()
                if item is _ABORT:
                    break
                if item is _FINISH:
                    outputs = self._push(encoder.flush())
                    outputs += self._packager.end()
                    self._emit(Batch(tuple(outputs), self._packager.state))
                    break
                outputs = self._push(encoder.encode(item))  # type: ignore[arg-type]
                if outputs:
                    self._emit(Batch(tuple(outputs), self._packager.state))
        except Exception as exc:  # the codec failed: report it, never hang the owner
            log.exception("encoder thread %s failed", self._thread.name)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._emit(Done(error))

    def _push(self, access_units: list[bytes]) -> list[Output]:
        out: list[Output] = []
        for au in access_units:
            out += self._packager.push(au)
        return out
