"""A space's mixer, ticked every 20 ms by the node's :class:`~pnyx.media.clock.MixClock`
thread, and the hand-off of its program mix to the encoder.

Each tick, in the clock's thread:

1. takes one 20 ms frame from each publisher's inbound jitter queue (a thread-safe
   :class:`~pnyx.media.frames.FrameQueue` of Opus packets filled on the event loop by
   their ingest session), trimmed to its target depth first, and decodes it
   (:class:`~pnyx.media.inbound.SpeakerInput`) — concealment, then silence, when the
   queue is empty, so a late or silent speaker never stalls the mix;
2. keeps only the chunks of members who are *allowed* (on stage and not muted, as the
   owner last said through :meth:`MixRunner.set_allowed`, an atomically swapped frozenset):
   server-side mute, whatever a client sends;
3. mixes them all at once (:class:`~pnyx.media.mixbus.MixBus`: limiter, mix-minus),
   updates speaking detection, Opus-encodes each publisher's mix-minus (the program for a
   muted one) with their own encoder and puts the packet on their outbound queue, wakes
   their send tracks with one ``call_soon_threadsafe``, and submits the program frame to
   the :class:`EncoderThread`.

While nobody publishes, a tick mixes nothing: it counts, and every
:data:`IDLE_BATCH_TICKS` ticks hands the encoder that much silence
(:meth:`EncoderThread.submit_silence`), which it packages from one pre-encoded silent
access unit once its codec has settled; the first tick with a publisher hands over the
silence still counted, then mixes as before, so the timeline never slips.

Publishers are swapped in and out as an immutable mapping, so the loop never waits for
the thread nor the thread for the loop. A space with the front row on also has its
program Opus-encoded once per tick (:mod:`pnyx.media.frontrow`). The encoder's output
comes back through a store task that awaits ``sink.store_init`` once and ``sink.store``
per batch, batching whatever piled up; who speaks goes to ``sink.speaking`` whenever
the set changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pnyx.domain.types import Handle
from pnyx.errors import ErrorKind, PnyxError
from pnyx.media import metrics
from pnyx.media.captions import CaptionCutter, Window
from pnyx.media.clock import MixClock
from pnyx.media.encoder import Batch, Done, EncoderThread, Init
from pnyx.media.frames import FrameQueue
from pnyx.media.frontrow import FrontRowEncoder, FrontRowTap
from pnyx.media.hls import Output, Packager, PlaylistState
from pnyx.media.inbound import EncodedFrame, SpeakerInput
from pnyx.media.levels import SpeakingDetector
from pnyx.media.mixbus import MixBus, levels_dbov
from pnyx.media.mixer import FRAME_SAMPLES, Frame
from pnyx.media.opus import DEFAULT_COMPLEXITY, OpusEncoder, OpusPacket

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0  # how long stop(ended=True) waits for the final segment to be stored
# Idle (nobody publishes): silence goes to the encoder every this many ticks (80 ms), so
# a part is never more than that late, for 1/4 of the encoder thread's wake-ups.
IDLE_BATCH_TICKS = 4
_NO_ROWS = np.zeros((0, FRAME_SAMPLES), np.float32)
_SILENCE: Frame = np.zeros(FRAME_SAMPLES, np.float32)
_SILENCE.setflags(write=False)


class CaptionTap(Protocol):
    """Where a captioned space's program goes besides the encoder (the node's caption
    worker): a cutter per space, and its windows, from the clock's thread."""

    def cutter(self, space: str, next_sample: int) -> CaptionCutter: ...

    def submit(self, window: Window) -> None: ...


class MediaSink(Protocol):
    """Where a running space's media goes (implemented by the services layer)."""

    async def store_init(self, data: bytes) -> None: ...

    async def store(self, outputs: Sequence[Output], state: PlaylistState) -> None: ...

    async def speaking(self, handles: Sequence[Handle]) -> None: ...


@dataclass(frozen=True, slots=True)
class _Publisher:
    inbound: SpeakerInput  # its decoder is used by the clock's thread only
    outbound: FrameQueue[OpusPacket]
    wake: Callable[[], None]  # on the loop: their session sends what was queued
    opus: OpusEncoder  # used by the clock's thread only


class TickStats:
    """Lateness of recent ticks, for tests and benchmarks (the histogram is in metrics)."""

    def __init__(self, keep: int = 3000) -> None:
        self.ticks = 0
        self.skipped = 0
        self.recent: deque[float] = deque(maxlen=keep)  # seconds late, newest last

    def observe(self, late: float) -> None:
        self.ticks += 1
        self.recent.append(late)


class MixRunner:
    def __init__(
        self,
        name: str,
        sink: MediaSink,
        packager: Packager,
        clock: MixClock,
        *,
        bit_rate: int,
        opus_bit_rate: int,
        opus_complexity: int = DEFAULT_COMPLEXITY,
        playout_min_s: float = 0.0,
        encoder_queue_frames: int,
        speaking_threshold_dbov: float,
        captions: CaptionTap | None = None,
        frontrow: FrontRowTap | None = None,
        frontrow_batch_frames: int = 3,
        frontrow_bit_rate: int = 64_000,
    ) -> None:
        self.name = name
        self._sink = sink
        self._clock = clock
        self._threshold = speaking_threshold_dbov
        self._opus_bit_rate = opus_bit_rate
        self._opus_complexity = opus_complexity
        self._playout_min_s = playout_min_s
        self._loop = asyncio.get_running_loop()
        # Swapped whole (never mutated) by the loop; read by the clock's thread.
        self._publishers: Mapping[Handle, _Publisher] = MappingProxyType({})
        self._allowed: frozenset[Handle] = frozenset()
        # The clock's thread only.
        self._bus: MixBus[Handle] = MixBus()
        self._detectors: dict[Handle, SpeakingDetector] = {}
        self._idle_ticks = 0  # silent ticks not yet handed to the encoder
        self._captions = captions
        self._cutter = (
            None
            if captions is None
            else captions.cutter(name, packager.state.decode_time)  # media samples, 48 kHz
        )
        # The front row (push tier): the program as Opus, one encoder per space.
        self.frontrow = (
            None
            if frontrow is None
            else FrontRowEncoder(
                name,
                frontrow,
                media_time=packager.state.decode_time,
                batch_frames=frontrow_batch_frames,
                bit_rate=frontrow_bit_rate,
                complexity=opus_complexity,
            )
        )
        # Written by the clock's thread, read by the loop (reference swaps).
        self._speaking: tuple[Handle, ...] | None = None  # None: never published
        self._speaking_changed = asyncio.Event()
        self._encoder = EncoderThread(
            name,
            packager,
            bit_rate=bit_rate,
            queue_frames=encoder_queue_frames,
            loop=self._loop,
        )
        self._speaking_task: asyncio.Task[None] | None = None
        self._store_task: asyncio.Task[None] | None = None
        self._started = False
        self.stats = TickStats()
        self.initialised = asyncio.Event()  # the init segment was stored

    # -- control (from the owner, on the loop) --------------------------------------------
    def start(self) -> None:
        self._encoder.start()
        self._store_task = asyncio.create_task(self._store_loop(), name=f"store-{self.name}")
        self._speaking_task = asyncio.create_task(
            self._speaking_loop(), name=f"speaking-{self.name}"
        )
        self._clock.add(self)
        self._started = True

    def attach(
        self,
        handle: Handle,
        inbound: FrameQueue[EncodedFrame],
        outbound: FrameQueue[OpusPacket],
        wake: Callable[[], None],
    ) -> None:
        """Mix ``handle`` from ``inbound`` (Opus, decoded here), send their mix-minus (Opus
        packets) to ``outbound`` and call ``wake`` (on the loop) after each tick that put
        one there, replacing any previous queues of theirs."""
        publishers = dict(self._publishers)
        publishers[handle] = _Publisher(
            SpeakerInput(inbound, min_delay_s=self._playout_min_s),
            outbound,
            wake,
            OpusEncoder(self._opus_bit_rate, self._opus_complexity),
        )
        self._publishers = MappingProxyType(publishers)

    def detach(self, handle: Handle) -> None:
        if handle in self._publishers:
            publishers = dict(self._publishers)
            del publishers[handle]
            self._publishers = MappingProxyType(publishers)

    def set_allowed(self, allowed: frozenset[Handle]) -> None:
        self._allowed = allowed

    @property
    def publishers(self) -> frozenset[Handle]:
        return frozenset(self._publishers)

    async def stop(self, *, ended: bool) -> None:
        """Stop mixing. ``ended``: flush the encoder and store the final (ENDLIST) state
        before returning; otherwise drop whatever is still in flight."""
        if self._started:
            await self._clock.remove(self)  # no tick of ours runs after this
        if ended and self._cutter is not None and self._captions is not None:
            window = self._cutter.flush(time.monotonic())  # what was said last
            if window is not None:
                self._captions.submit(window)
        if self._speaking_task is not None:
            self._speaking_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._speaking_task
        store = self._store_task
        if ended:
            self._encoder.finish()
            if store is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(store), STOP_TIMEOUT_S)
                except TimeoutError:
                    log.warning("space %s: final segment not stored in time", self.name)
        else:
            self._encoder.abort()
        if store is not None and not store.done():
            store.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await store
        await self._encoder.join()
        if self.frontrow is not None:
            self.frontrow.close()

    # -- the 20 ms tick (the clock's thread) -------------------------------------------
    def tick(self, n: int, late: float, behind: int) -> None:
        """Mix frame ``n``, ``late`` seconds after it was due: each speaker plays the frame
        due at that time, so ticks run back to back after a stall take the frames each
        would have taken (``behind`` is not needed for that)."""
        began = time.perf_counter()
        due = time.monotonic() - late  # the tick's own time: frames are played by it
        self.stats.observe(late)
        publishers = self._publishers
        if not publishers:  # idle: nothing to mix, nobody to send to
            if self._detectors:
                self._detect([], _NO_ROWS)  # nobody speaks any more
            self._idle_ticks += 1
            if self._idle_ticks >= IDLE_BATCH_TICKS:
                self._hand_over_silence()
            return
        if self._idle_ticks:
            self._hand_over_silence()  # first the silence already due, in order
        allowed = self._allowed
        keys: list[Handle] = []
        chunks: list[Frame] = []
        for handle, pub in publishers.items():
            chunk = pub.inbound.take(due)  # always taken: a muted one's never backs up
            if handle in allowed:
                keys.append(handle)
                chunks.append(_SILENCE if chunk is None else chunk)
        rows = np.stack(chunks) if chunks else _NO_ROWS
        result = self._bus.mix(keys, rows)
        self._detect(keys, rows)
        row_of = {h: i for i, h in enumerate(keys)}
        pts = n * FRAME_SAMPLES
        for handle, pub in publishers.items():
            i = row_of.get(handle)
            pcm = result.program if i is None else result.minus[i]
            for packet in pub.opus.encode(pcm, pts):
                pub.outbound.put(packet)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody sends
            self._loop.call_soon_threadsafe(self._wake, publishers)
        self._encoder.submit(result.program)
        if self.frontrow is not None:
            self.frontrow.feed(result.program)
        if self._cutter is not None and self._captions is not None:
            window = self._cutter.feed(result.program, self.speaking, time.monotonic())
            if window is not None:
                self._captions.submit(window)
        metrics.MIX_SECONDS.observe(time.perf_counter() - began)

    def _hand_over_silence(self) -> None:
        samples = self._idle_ticks * FRAME_SAMPLES
        self._encoder.submit_silence(samples)
        self._idle_ticks = 0
        if self.frontrow is not None:
            self.frontrow.silence(samples)
        if self._cutter is not None and self._captions is not None:
            window = self._cutter.silence(samples, time.monotonic())
            if window is not None:
                self._captions.submit(window)

    @property
    def idle_access_units(self) -> int:
        """Program access units packaged without mixing or encoding so far (tests)."""
        return self._encoder.idle_access_units

    def skipped(self, missed: int) -> None:
        self.stats.skipped += missed

    @staticmethod
    def _wake(publishers: Mapping[Handle, _Publisher]) -> None:
        for pub in publishers.values():
            pub.wake()

    def _detect(self, keys: list[Handle], rows: npt.NDArray[np.float32]) -> None:
        detectors = self._detectors
        if detectors.keys() != set(keys):
            for gone in detectors.keys() - set(keys):
                del detectors[gone]
        for handle, level in zip(keys, levels_dbov(rows), strict=True):
            detector = detectors.get(handle)
            if detector is None:
                detector = detectors[handle] = SpeakingDetector(self._threshold)
            detector.update_level(level)
        speaking = tuple(sorted(h for h, d in detectors.items() if d.speaking))
        if speaking != self._speaking:
            self._speaking = speaking
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._speaking_changed.set)

    @property
    def speaking(self) -> tuple[Handle, ...]:
        return self._speaking or ()

    # -- background hand-offs (on the loop) ---------------------------------------------
    async def _speaking_loop(self) -> None:
        while True:
            await self._speaking_changed.wait()
            self._speaking_changed.clear()
            try:
                await self._sink.speaking(self.speaking)
            except Exception as exc:  # a live-state hiccup must not stop the mix
                _warn(self.name, "could not publish who speaks", exc)

    async def _store_loop(self) -> None:
        messages = self._encoder.messages
        while True:
            pending = [await messages.get()]
            while not messages.empty():
                pending.append(messages.get_nowait())
            outputs: list[Output] = []
            state: PlaylistState | None = None
            for message in pending:
                if isinstance(message, Init):
                    await self._guard(self._sink.store_init(message.data))
                    self.initialised.set()
                elif isinstance(message, Batch):
                    outputs += message.outputs
                    state = message.state
            if state is not None:
                await self._guard(self._sink.store(outputs, state))
            done = [m for m in pending if isinstance(m, Done)]
            if done:
                if done[0].error:
                    log.error("space %s: encoder stopped: %s", self.name, done[0].error)
                return

    async def _guard(self, storing: Awaitable[None]) -> None:
        try:
            await storing
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            metrics.STORE_FAILURES.inc()
            _warn(self.name, "storing media failed", exc)


def _warn(space: str, what: str, exc: Exception) -> None:
    """A dependency that is away (the live state during a Redis failover) is one line
    per failure; anything else comes with its traceback."""
    if isinstance(exc, PnyxError) and exc.kind is ErrorKind.UNAVAILABLE:
        log.warning("space %s: %s: %s", space, what, exc.message)
    else:
        log.warning("space %s: %s", space, what, exc_info=exc)
