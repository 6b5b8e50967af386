"""The writer of recordings: a recorded space's header and finished segments go to the
durable store (``store/recordings.py``), so every node serves the same replay, whichever
node recorded which part (docs/architecture.md, "Recording").

Off the media path (docs/conventions.md, rules 9-11): the sink enqueues and returns; one
task per space with pending work (owned here, cancelled by :meth:`Recorder.close`) writes
batches in order. While the store is away the segments wait in memory and the batch is
retried every ``recording_retry_s``; above ``recording_queue_segments`` pending segments
the oldest are dropped and counted (``pnyx_recording_segments_dropped_total``), so an
outage never grows memory and never stalls the mix. Writes are idempotent per (space, msn).

A recording is marked finished only by its writer, after everything handed to it before
:meth:`Recorder.finish` is stored (the ending stage node), or — when the node that ran the
space died — by the replay's reader once nobody can write any more
(services/replays.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pnyx.config import Settings
from pnyx.domain.types import SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.media import recording as rec
from pnyx.media.hls import SegmentRef
from pnyx.store.recordings import RecordingRepo
from pnyx.store.records import SegmentMeta

log = logging.getLogger(__name__)

BATCH = 16  # segments per write (about 30 s of audio, ~250 kB)


def meta_of(ref: SegmentRef) -> SegmentMeta:
    return SegmentMeta(
        msn=ref.msn,
        duration=ref.duration,
        program_date_time=ref.program_date_time,
        discontinuity=ref.discontinuity,
        parts=rec.parts_of(ref),
    )


@dataclass(eq=False)
class _Pending:
    init: bytes | None = None
    segments: deque[tuple[SegmentRef, bytes]] = field(default_factory=deque)
    finish: bool = False
    task: asyncio.Task[None] | None = None


class Recorder:
    """Implements :class:`pnyx.media.recording.Recordings` over the durable store."""

    def __init__(self, settings: Settings, repo: RecordingRepo, clock: Callable[[], float]) -> None:
        self._repo = repo
        self._clock = clock
        self._max = settings.recording_queue_segments
        self._retry_s = settings.recording_retry_s
        self._close_s = settings.recording_close_s
        self._pending: dict[str, _Pending] = {}
        self._closing = False
        # Told once per recording, by whichever finishes it (the node wires the webhooks).
        self.on_finished: Callable[[SpaceId], Awaitable[None]] | None = None

    # -- the sink's side (never waits) --------------------------------------------------
    def add_init(self, space: str, data: bytes) -> None:
        self._of(space).init = data
        self._wake(space)

    def add_segment(self, space: str, ref: SegmentRef, data: bytes) -> None:
        p = self._of(space)
        p.segments.append((ref, data))
        self._trim(space, p)
        self._wake(space)

    def finish(self, space: str) -> None:
        self._of(space).finish = True
        self._wake(space)

    async def announce_finished(self, space: SpaceId) -> None:
        """The recording of ``space`` was just finished (by this writer, or sealed by a
        reader: services/replays.py): tell ``on_finished``."""
        if self.on_finished is not None:
            await self.on_finished(space)

    def pending(self, space: str) -> bool:
        """Is this node still writing (or about to finish) ``space``'s recording?"""
        return space in self._pending

    # -- lifecycle -------------------------------------------------------------------------
    async def close(self) -> None:
        """Give pending writes ``recording_close_s`` to land, then cancel (and count) the
        rest."""
        self._closing = True
        tasks = [p.task for p in self._pending.values() if p.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=self._close_s)
        for space, p in list(self._pending.items()):
            if p.segments:
                rec.SEGMENTS_DROPPED.labels("shutdown").inc(len(p.segments))
                log.warning(
                    "recording of space %s: %d segments not stored at shutdown",
                    space,
                    len(p.segments),
                )
            if p.task is not None:
                p.task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()
        self._gauge()

    # -- the writer ------------------------------------------------------------------------
    def _of(self, space: str) -> _Pending:
        p = self._pending.get(space)
        if p is None:
            p = self._pending[space] = _Pending()
        return p

    def _wake(self, space: str) -> None:
        p = self._pending[space]
        self._gauge()
        if (p.task is None or p.task.done()) and not self._closing:
            p.task = asyncio.create_task(self._drain(space, p), name=f"recorder-{space}")

    def _trim(self, space: str, p: _Pending) -> None:
        over = len(p.segments) - self._max
        for _ in range(max(0, over)):
            p.segments.popleft()
        if over > 0:
            rec.SEGMENTS_DROPPED.labels("queue_full").inc(over)
            log.warning(
                "recording of space %s: %d segments dropped (more than %d pending)",
                space,
                over,
                self._max,
            )

    def _gauge(self) -> None:
        rec.PENDING.set(sum(len(p.segments) for p in self._pending.values()))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _drain(self, space: str, p: _Pending) -> None:
        """Write what is pending, in order; then finish if asked; then end (a new task
        starts with the next thing to write)."""
        sid = SpaceId(space)
        failing = False
        while True:
            if p.init is None and not p.segments:
                if not p.finish:
                    break
                try:
                    finished = await self._repo.finish(sid, self._now())
                except PnyxError as exc:
                    failing = self._failed(space, exc, failing)
                    await asyncio.sleep(self._retry_s)
                    continue
                log.info("recording of space %s finished", space)
                if finished:
                    await self.announce_finished(sid)
                break
            init = p.init
            batch = [p.segments.popleft() for _ in range(min(BATCH, len(p.segments)))]
            try:
                await self._repo.add(
                    sid,
                    init=init,
                    segments=[(meta_of(ref), data) for ref, data in batch],
                    now=self._now(),
                )
            except PnyxError as exc:
                if exc.code == "recording_finished" or exc.kind is not ErrorKind.UNAVAILABLE:
                    # Finished (another node sealed it) or refused for good: drop it all.
                    lost = len(batch) + len(p.segments)
                    why = "finished" if exc.code == "recording_finished" else "refused"
                    rec.SEGMENTS_DROPPED.labels(why).inc(lost)
                    log.warning("recording of space %s: %d segments dropped: %s", space, lost, exc)
                    p.segments.clear()
                    p.init = None
                    p.finish = False
                    break
                p.segments.extendleft(reversed(batch))  # back in front, in order
                self._trim(space, p)
                failing = self._failed(space, exc, failing)
                await asyncio.sleep(self._retry_s)
                continue
            if failing:
                log.warning("recording of space %s: the store is back", space)
                failing = False
            if p.init is init:
                p.init = None
            rec.SEGMENTS_WRITTEN.inc(len(batch))
            self._gauge()
        if self._pending.get(space) is p and p.init is None and not p.segments:
            del self._pending[space]
        self._gauge()

    def _failed(self, space: str, exc: PnyxError, failing: bool) -> bool:
        rec.WRITE_FAILURES.inc()
        if not failing:  # one line per outage, not one per retry
            log.warning(
                "recording of space %s: the store refused a write (%s); keeping up to %d "
                "segments and retrying every %g s",
                space,
                exc,
                self._max,
                self._retry_s,
            )
        return True
