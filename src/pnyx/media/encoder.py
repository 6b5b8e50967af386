"""The program mix's codec work, in one dedicated thread per space (docs/conventions.md, rule 10).

The mixer hands each 20 ms program frame to :meth:`EncoderThread.submit` (a bounded,
drop-oldest queue, safe from any thread: the mix clock's thread calls it). The thread is
woken only when what was submitted can complete the open part (or the queue is half
full, or the stream ends): about three times a second instead of fifty, each wake-up
encoding the frames that piled up — a part comes out on the same tick as before. It
encodes AAC (:class:`~pnyx.media.aac.AacEncoder`), cuts parts and segments
(:class:`~pnyx.media.hls.Packager`, which writes the fMP4 fragments) and hands the results
back to the event loop, in order, on an asyncio queue:

* :class:`Init` once, first: the CMAF init segment;
* :class:`Batch` whenever parts/segments complete, with the playlist state that lists them;
* :class:`Done` last, always (``error`` set if the codec failed).

:meth:`finish` ends the stream (flush the encoder, ``Packager.end()``: ENDLIST);
:meth:`abort` stops at once, emitting nothing more than Done (the lease moved on).

**Idle.** While nobody publishes, the runner does not mix: it hands over a count of silent
samples now and then (:meth:`EncoderThread.submit_silence`). Until the codec has settled
on silence (its input silent for :data:`SETTLE_AUS` access units and its last output the
silent access unit) those zeros are encoded as usual, so whatever was still in the codec
comes out in order. From then on the thread skips the codec and hands the packager
:func:`~pnyx.media.aac.silent_access_unit`, encoded once per process, one per 1024 samples:
the stream keeps flowing at the same timestamps for about no CPU. The codec, left holding
silence, takes the first real frame as if it had encoded the silence itself; samples are
conserved exactly (a remainder below one access unit goes to the codec first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from pnyx.media import metrics
from pnyx.media.aac import SAMPLES_PER_AU, AacEncoder, silent_access_unit
from pnyx.media.fmp4 import init_segment
from pnyx.media.hls import Output, Packager, PlaylistState
from pnyx.media.mixer import SAMPLE_RATE, Frame

log = logging.getLogger(__name__)

_FINISH: Final = object()
_ABORT: Final = object()
SETTLE_AUS = 8  # silent input, in access units, before the codec is trusted to be silent


@dataclass(frozen=True, slots=True)
class Silence:
    """``samples`` of digital silence, in place of that many samples of program frames."""

    samples: int


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
    """A thread-safe bounded queue that drops the oldest item when full, whose reader
    sleeps until a writer says so (``wake``) or the queue is half full."""

    def __init__(self, maxlen: int) -> None:
        self._items: deque[object] = deque()
        self._maxlen = maxlen
        self._cond = threading.Condition()
        self._woken = False
        self.dropped = 0

    def put(self, item: object, *, wake: bool = True) -> bool:
        with self._cond:
            dropped = len(self._items) >= self._maxlen
            if dropped:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            if wake or 2 * len(self._items) >= self._maxlen:
                self._woken = True
                self._cond.notify()
            return not dropped

    def put_control(self, item: object) -> None:
        """Enqueue a control item (and wake the reader); it is last, so never the one
        dropped."""
        with self._cond:
            self._items.append(item)
            self._woken = True
            self._cond.notify()

    def get_all(self) -> list[object]:
        """Everything queued, once woken."""
        with self._cond:
            while not self._woken:
                self._cond.wait()
            self._woken = False
            items = list(self._items)
            self._items.clear()
            return items


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
        self._codec: _IdleAwareCodec | None = None  # the thread's
        # Samples submitted so far (written by the submitting thread only), and the count
        # at which the open part may complete (written by the encoder thread only).
        self._submitted = 0
        self._wake_at = 0
        self.wakeups = 0  # times the thread woke to encode (tests)

    def start(self) -> None:
        self._thread.start()

    def submit(self, program: Frame) -> None:
        """Queue one program frame (from the mix clock's thread; never waits)."""
        self._queue(program, len(program))

    def submit_silence(self, samples: int) -> None:
        """Queue ``samples`` of silence: nobody publishes (from the mix clock's thread)."""
        self._queue(Silence(samples), samples)

    def _queue(self, item: object, samples: int) -> None:
        if self._stopping:
            return
        self._submitted += samples
        if not self._inbox.put(item, wake=self._submitted >= self._wake_at):
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
            codec = _IdleAwareCodec(encoder, silent_access_unit(SAMPLE_RATE, self._bit_rate))
            self._codec = codec
            taken = 0  # samples taken from the inbox (dropped ones included: see below)
            running = True
            while running:
                outputs: list[Output] = []
                items = self._inbox.get_all()
                self.wakeups += 1
                for item in items:
                    if item is _ABORT:
                        running = False
                        break
                    if item is _FINISH:
                        outputs += self._push(codec.flush())
                        outputs += self._packager.end()
                        running = False
                        break
                    if isinstance(item, Silence):
                        taken += item.samples
                        outputs += self._push(codec.silence(item.samples))
                    else:
                        taken += len(item)  # type: ignore[arg-type]
                        outputs += self._push(codec.encode(item))  # type: ignore[arg-type]
                if outputs:
                    self._emit(Batch(tuple(outputs), self._packager.state))
                # Wake next at the frame that completes the open part: each 1024 samples
                # into the codec bring one access unit out (its delay stays put), less
                # what it already holds short of a frame.
                need = self._packager.aus_to_part * SAMPLES_PER_AU - codec.pending
                self._wake_at = taken + max(1, need)
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

    @property
    def idle_access_units(self) -> int:
        """Access units handed over pre-encoded, without the codec, so far (tests)."""
        return self._codec.skipped if self._codec is not None else 0


class _IdleAwareCodec:
    """The AAC encoder, skipped while its input is silence it has settled on (the thread's
    only; see the module's "Idle")."""

    def __init__(self, encoder: AacEncoder, silent_au: bytes) -> None:
        self._encoder = encoder
        self._silent_au = silent_au
        self._zero_run = 0  # samples of silence the codec was fed last, in a row
        self._last_au = b""  # the codec's latest output
        self._owed = 0  # silent samples not yet handed over (below one access unit)
        self.skipped = 0  # access units handed over without the codec

    @property
    def settled(self) -> bool:
        return self._zero_run >= SETTLE_AUS * SAMPLES_PER_AU and self._last_au == self._silent_au

    def encode(self, pcm: npt.NDArray[np.float32]) -> list[bytes]:
        out = self._pay_owed()
        silent = not pcm.any()
        out += self._feed(pcm)
        self._zero_run = self._zero_run + len(pcm) if silent else 0
        return out

    def silence(self, samples: int) -> list[bytes]:
        if not self.settled:
            return self.encode(np.zeros(samples, dtype=np.float32))
        whole, self._owed = divmod(self._owed + samples, SAMPLES_PER_AU)
        self.skipped += whole
        return [self._silent_au] * whole

    def flush(self) -> list[bytes]:
        return self._pay_owed() + self._encoder.flush()

    @property
    def pending(self) -> int:
        """Samples taken that no access unit carries yet (short of a whole one)."""
        return self._owed + self._encoder.pending_samples

    def _pay_owed(self) -> list[bytes]:
        """Samples owed to the timeline go through the codec before anything else."""
        if not self._owed:
            return []
        owed, self._owed = self._owed, 0
        self._zero_run += owed
        return self._feed(np.zeros(owed, dtype=np.float32))

    def _feed(self, pcm: npt.NDArray[np.float32]) -> list[bytes]:
        out = self._encoder.encode(pcm)
        if out:
            self._last_au = out[-1]
        return out
