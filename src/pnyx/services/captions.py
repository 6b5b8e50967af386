"""Live captions on a stage node, and transcripts for everyone.

:class:`CaptionService` (one per node) is what :class:`~pnyx.media.runner.MixRunner` taps
(the ``CaptionTap`` protocol): a :class:`~pnyx.media.captions.CaptionCutter` per captioned
space in the mix clock's thread, whose windows go to the node's one
:class:`~pnyx.media.caption_worker.CaptionWorker` thread (started with the first captioned
space; the model is loaded once per process). The worker's cues come back to the loop,
to the space's :class:`SpaceCaptions`, which

* holds them for the next captions file: when the encoder finishes the last part of half a
  segment, the sink stores ``vtt/{msn}.{half}.vtt`` (the cues recognised since the
  previous file) with it, so the subtitles rendition (``captions.m3u8``) follows the
  audio's parts and segments and is served, like the audio, from the live state by every
  node;
* writes them to the durable store in batches (``transcript_cues``; retried while the
  store is away, at most :data:`UNSAVED_MAX` waiting), so the transcript outlives this
  node, as the recording does.

While the node sheds load (:meth:`Admission.sheds_captions`), windows are dropped before
anything else is (docs/architecture.md, "Admission control and shedding").

The transcript is read back by :class:`TranscriptService`: every cue in time order, on the
replay's timeline (the audio's decode time, which starts at 0 with the space). It is
*complete* once the space is over **and** nobody holds its stage lease: the node that held
it lets go only after its last windows were recognised and stored (``MediaService.stop``,
then the release), and a node that died loses the lease when it expires. Until then the
last words may still be on their way, so the answer is the growing one (the edge keeps a
complete transcript for an hour).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pnyx.config import Settings
from pnyx.domain.types import SpaceId, SpaceStatus
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState
from pnyx.live.keys import lease_name
from pnyx.media.caption_worker import CaptionWorker
from pnyx.media.captions import CaptionCutter, Cue, Window, render_text, render_vtt, vtt_segment
from pnyx.media.hls import vtt_uri
from pnyx.media.recognizer_process import RecognizerProcess
from pnyx.services.admission import Admission
from pnyx.store.db import Store
from pnyx.store.records import CueRecord

log = logging.getLogger(__name__)

UNSAVED_MAX = 10_000  # cues waiting for the store, per space; the oldest are dropped
SHED_CHECK_S = 0.25  # how often the loop tells the worker whether the node sheds


class SpaceCaptions:
    """One captioned space on this node (the loop's side)."""

    def __init__(self, space: SpaceId, store: Store, retry_s: float) -> None:
        self.space = space
        self._store = store
        self._retry_s = retry_s
        self._for_segment: list[Cue] = []
        self._unsaved: list[Cue] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.cues = 0  # recognised so far here (tests)

    def start(self) -> None:
        self._task = asyncio.create_task(self._save_loop(), name=f"transcript-{self.space}")

    def add(self, cues: Sequence[Cue]) -> None:
        self._for_segment += cues
        self._unsaved += cues
        if len(self._unsaved) > UNSAVED_MAX:
            del self._unsaved[: len(self._unsaved) - UNSAVED_MAX]
        self.cues += len(cues)
        self._wake.set()

    def file(self, msn: int, half: int) -> tuple[str, bytes]:
        """Half ``half`` of segment ``msn`` is done: its WebVTT file, with the cues
        recognised since the previous file (their times are their own: seconds before
        these parts')."""
        cues, self._for_segment = self._for_segment, []
        return vtt_uri(msn, half), vtt_segment(cues)

    async def _save_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._save()

    async def _save(self) -> None:
        while self._unsaved:
            batch = list(self._unsaved)
            try:
                await self._store.transcripts.add(
                    self.space, [CueRecord(c.start, c.end, c.speaker, c.text) for c in batch]
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("space %s: storing captions failed (%s); retrying", self.space, exc)
                await asyncio.sleep(self._retry_s)
                continue
            del self._unsaved[: len(batch)]

    async def close(self, within: float) -> None:
        """Stop; whatever is unsaved gets ``within`` seconds to reach the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._unsaved:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._save(), within)


class CaptionService:
    """The node's captions: the tap the mixers use, the worker, the spaces' sides."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        admission: Admission,
        clock: Callable[[], float],
    ) -> None:
        self._s = settings
        self._store = store
        self._admission = admission
        self._clock = clock
        self._spaces: dict[str, SpaceCaptions] = {}
        self._worker: CaptionWorker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shedding = False
        self._shed_task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._s.captions_enabled

    def open(self, space: SpaceId) -> SpaceCaptions:
        """Caption ``space`` here (on the loop): its side, and the worker if not yet."""
        if self._worker is None:
            s = self._s
            self._loop = asyncio.get_running_loop()
            self._worker = CaptionWorker(
                lambda: RecognizerProcess(
                    s.captions_engine,
                    s.captions_model,
                    language=s.captions_language,
                    threads=s.captions_threads,
                    compute_type=s.captions_compute_type,
                ),
                self._deliver,
                queue_windows=s.captions_queue_windows,
                max_lag_s=s.captions_max_lag_s,
                shed=lambda: self._shedding,
            )
            self._worker.start()
            self._shed_task = asyncio.create_task(self._watch_load(), name="captions-shed")
        found = self._spaces.get(space)
        if found is None:
            found = self._spaces[space] = SpaceCaptions(
                space, self._store, self._s.recording_retry_s
            )
            found.start()
        return found

    async def close(self, space: SpaceId, *, drain: bool = False) -> None:
        """Stop captioning ``space`` here. ``drain`` (it ended): its last windows are
        recognised first, for at most ``recording_close_s``, so the transcript has the
        last words."""
        worker = self._worker
        if drain and worker is not None:
            await asyncio.to_thread(worker.drain, space, self._s.recording_close_s)
        found = self._spaces.pop(space, None)
        if worker is not None:
            worker.forget(space)
        if found is not None:
            await found.close(self._s.recording_close_s)

    async def aclose(self) -> None:
        for space in list(self._spaces):
            await self.close(SpaceId(space))
        if self._shed_task is not None:
            self._shed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._shed_task
        if self._worker is not None:
            await asyncio.to_thread(self._worker.stop)

    # -- the tap (the mix clock's thread) -------------------------------------------------
    def cutter(self, space: str, next_sample: int) -> CaptionCutter:
        s = self._s
        return CaptionCutter(
            space,
            next_sample,
            min_s=s.captions_min_window_s,
            max_s=s.captions_window_s,
            pause_s=s.captions_pause_s,
            quiet_dbov=s.speaking_threshold_dbov,
        )

    def submit(self, window: Window) -> None:
        if self._worker is not None:
            self._worker.submit(window)

    # -- the worker's results (its thread) and the load (the loop) ----------------------
    def _deliver(self, window: Window, cues: list[Cue]) -> None:
        loop = self._loop
        if loop is not None and cues:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self._arrived, window.space, cues)

    def _arrived(self, space: str, cues: list[Cue]) -> None:
        found = self._spaces.get(space)
        if found is not None:
            found.add(cues)

    async def _watch_load(self) -> None:
        while True:
            self._shedding = self._admission.sheds_captions(self._clock())
            await asyncio.sleep(SHED_CHECK_S)


@dataclass(frozen=True, slots=True)
class Transcript:
    space: SpaceId
    complete: bool  # the space is over and its node let go: nothing more will be added
    cues: list[CueRecord]

    def vtt(self) -> str:
        return render_vtt([Cue(c.start, c.end, c.speaker, c.text) for c in self.cues])

    def text(self) -> str:
        return render_text([Cue(c.start, c.end, c.speaker, c.text) for c in self.cues])


class TranscriptService:
    """Reads a space's transcript (any node, from the durable store)."""

    def __init__(self, store: Store, live: LiveState) -> None:
        self._store = store
        self._live = live

    async def transcript(self, space: SpaceId) -> Transcript:
        """NOT_FOUND (``no_transcript``) for a space that is not captioned."""
        rec = await self._store.spaces.get(space)
        if rec is None:
            raise PnyxError(ErrorKind.NOT_FOUND, f"no space {space}", code="no_space")
        if not rec.captions:
            raise PnyxError(
                ErrorKind.NOT_FOUND,
                f"space {space} is not captioned: it has no transcript",
                code="no_transcript",
            )
        over = rec.status in (SpaceStatus.ENDED, SpaceStatus.CANCELLED)
        # Read the lease before the cues: once it is free, every cue is stored.
        complete = over and await self._live.holder(lease_name(space)) is None
        return Transcript(space, complete, await self._store.transcripts.cues(space))
