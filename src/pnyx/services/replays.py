"""The replay of a recorded space, from the durable store, the same on every node: its VOD
playlist (``/media/{id}/replay.m3u8``), its objects (``/media/{id}/rec/…``) and its
download (``/v1/spaces/{id}/recording.m4a``).

A replay is served only once its recording is finished (complete and immutable, so edges
may cache it for good). Until then: CONFLICT "still_live" while the space is live, and
UNAVAILABLE "not_ready" (→ 503 with Retry-After) once it has ended but its writer has not
flushed and marked it yet. Plays and downloads are not counted here (edges answer most
of them): the replay page reports them (services/analytics.py ``replay_event``).

If the node that ran the space died, nobody writes any more: once the space has been over
for ``settle_s`` (three lease lifetimes and two ticks: every lease has lapsed) and nobody
holds its stage lease and this node has nothing pending for it, the reader seals it:
whatever the live state still holds of the last playlist (segments the dead node's writer
had not stored, the segment it left open) goes in, then the recording is marked finished.

The host may delete the recording once the space is over (:meth:`ReplayService.delete`,
``Action.DELETE_RECORDING``): its bytes leave the store, and every replay route answers
GONE ``recording_deleted`` from then on. Edges keep replay objects at most
``replay_edge_ttl_s`` (the answers' ``s-maxage``; browsers still get the year), so the
deletion reaches every edge within that. Clips already made stay: each is its own copy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pnyx.config import Settings
from pnyx.domain.codec import room_from_json
from pnyx.domain.permissions import Action, require
from pnyx.domain.types import Handle, SpaceId, SpaceStatus
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState
from pnyx.live.keys import blob_key, lease_name
from pnyx.media import recording as rec
from pnyx.media.hls import INIT_URI, Packager
from pnyx.media.playlist import render_vod
from pnyx.services.media_sink import previous_state
from pnyx.services.recorder import Recorder, meta_of
from pnyx.services.spaces import SpaceService
from pnyx.store.recordings import RecordingRepo
from pnyx.store.records import RecordingInfo, SpaceRecord

log = logging.getLogger(__name__)

OVER = (SpaceStatus.ENDED, SpaceStatus.CANCELLED)
REC_PREFIX = "rec/"  # replay URIs, relative to /media/{space}/replay.m3u8
_REC_NAME = re.compile(r"init\.mp4|(0|[1-9]\d{0,11})\.m4s", re.ASCII)
EXPORT_BATCH = 32  # segments read per query while streaming the download (~0.5 MB)


@dataclass(frozen=True, slots=True)
class Export:
    """A whole recording as one file: its length, its version (the same for the same bytes,
    from every node: an ETag), and its bytes."""

    size: int
    version: str
    chunks: AsyncIterator[bytes]


class ReplayService:
    def __init__(
        self,
        settings: Settings,
        spaces: SpaceService,
        repo: RecordingRepo,
        recorder: Recorder,
        live: LiveState,
        clock: Callable[[], float],
    ) -> None:
        self._spaces = spaces
        self._repo = repo
        self._recorder = recorder
        self._live = live
        self._clock = clock
        self.settle_s = 3 * settings.lease_ttl_s + 2 * settings.state_tick_s
        # Told once per deleted recording (the node wires webhooks' recording.deleted).
        self.on_deleted: Callable[[SpaceRecord], Awaitable[None]] | None = None

    async def playlist(self, space: SpaceId) -> str:
        """The recording as a VOD playlist, URIs ``rec/…``. NOT_FOUND: unknown, unrecorded
        or empty; CONFLICT while live; UNAVAILABLE while being finished."""
        info = await self._final(space)
        refs = [
            rec.ref_of(s.msn, s.duration, s.program_date_time, s.discontinuity, s.parts)
            for s in info.segments
        ]
        lines = render_vod(refs, init_uri=REC_PREFIX + INIT_URI).splitlines()
        # render_vod names segments seg/{msn}.m4s; recorded ones are served at rec/{msn}.m4s.
        return "".join(
            (REC_PREFIX + line.removeprefix("seg/") if line.startswith("seg/") else line) + "\n"
            for line in lines
        )

    async def export(self, space: SpaceId) -> Export:
        """The whole recording as one fragmented MP4 (header + every segment), streamed
        from the store a few segments at a time."""
        info = await self._final(space)
        finished = info.finished_at.timestamp() if info.finished_at is not None else 0.0
        version = f"{info.size}-{len(info.segments)}-{round(finished * 1e6)}"
        return Export(info.size, version, self._chunks(space, info))

    async def finished(self, space: SpaceId) -> RecordingInfo:
        """The finished recording's segments (no bytes), or the error saying why there is
        none yet (as the playlist's)."""
        return await self._final(space)

    async def segment(self, space: SpaceId, msn: int) -> bytes | None:
        return await self._repo.segment(space, msn)

    async def init(self, space: SpaceId) -> bytes | None:
        return await self._repo.init(space)

    async def recorded(self, space: SpaceId, name: str) -> bytes:
        """``init.mp4`` or ``{msn}.m4s`` of a recording (immutable once stored)."""
        rec.valid_space(space)
        data = None
        match = _REC_NAME.fullmatch(name)
        if match is not None and match[1] is None:
            data = await self._repo.init(space)
        elif match is not None:
            data = await self._repo.segment(space, int(match[1]))
        if data is None:
            record = await self._spaces.record(space)  # NOT_FOUND for an unknown space
            if record.recording_deleted:
                raise _deleted(space)
            raise PnyxError(
                ErrorKind.NOT_FOUND,
                f"no recorded {name!r} for space {space}: expected init.mp4 or <msn>.m4s "
                "as listed in replay.m3u8",
                code="no_recording",
            )
        return data

    async def delete(self, space: SpaceId, actor: Handle) -> None:
        """Delete the recording of an ended space (its host only): the header and every
        segment leave the store; the replay routes answer GONE from now on. Idempotent
        (deleting it again changes nothing). NOT_FOUND: not recorded; CONFLICT while the
        space is scheduled or live."""
        rec.valid_space(space)
        record = await self._spaces.record(space)  # NOT_FOUND for an unknown space
        require(room_from_json(record.room), actor, Action.DELETE_RECORDING)
        if not record.record:
            raise PnyxError(
                ErrorKind.NOT_FOUND,
                f"space {space} was not recorded: there is no recording to delete",
                code="no_recording",
            )
        if record.status not in OVER:
            raise PnyxError(
                ErrorKind.CONFLICT,
                f"space {space} is {record.status.value}: its recording can be deleted once "
                "the space has ended",
                code="still_live",
            )
        now = datetime.fromtimestamp(self._clock(), UTC)
        if await self._repo.delete(space, now):
            log.info("space %s: recording deleted by @%s", space, actor)
            if self.on_deleted is not None:
                await self.on_deleted(record)

    async def _chunks(self, space: SpaceId, info: RecordingInfo) -> AsyncIterator[bytes]:
        init = await self._repo.init(space)
        yield init or b""
        last = info.segments[-1].msn
        after = -1
        while after < last:
            batch = await self._repo.segments_after(space, after, EXPORT_BATCH)
            if not batch:
                break
            for msn, data in batch:
                if msn > last:
                    return
                yield data
                after = msn

    async def _final(self, space: SpaceId) -> RecordingInfo:
        """The finished recording, or the error saying why there is none (yet)."""
        rec.valid_space(space)
        record = await self._spaces.record(space)  # NOT_FOUND for an unknown space
        if not record.record:
            raise PnyxError(
                ErrorKind.NOT_FOUND,
                f'space {space} is not recorded (create it with "record": true)',
                code="no_recording",
            )
        if record.recording_deleted:
            raise _deleted(space)
        if record.status not in OVER:
            raise PnyxError(
                ErrorKind.CONFLICT,
                f"space {space} is {record.status.value}: its replay is available once it "
                f"has ended (listen live at /media/{space}/live.m3u8)",
                code="still_live",
            )
        info = await self._repo.info(space)
        if info is None or info.finished_at is None:
            ended_at = record.ended_at.timestamp() if record.ended_at is not None else 0.0
            if self._clock() - ended_at >= self.settle_s and await self._nobody_writes(space):
                await self._seal(space)
                info = await self._repo.info(space)
        if info is None or info.finished_at is None:
            raise PnyxError(
                ErrorKind.UNAVAILABLE,
                f"the recording of space {space} is being finished; retry in a moment",
                code="not_ready",
                retry_after=1.0,
            )
        if info.init_size == 0 or not info.segments:
            raise PnyxError(
                ErrorKind.NOT_FOUND, f"the recording of space {space} is empty", code="no_recording"
            )
        return info

    async def _nobody_writes(self, space: SpaceId) -> bool:
        if self._recorder.pending(space):
            return False
        return await self._live.holder(lease_name(space)) is None

    async def _seal(self, space: SpaceId) -> None:
        """Finish the recording of a space whose writer is gone (see the module doc)."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        state = await previous_state(self._live, space)
        added = 0
        if state is not None:
            segments = list(state.segments)
            if not state.ended:
                _, orphan = Packager.resume(state, program_date_time=now)
                if orphan is not None:
                    segments.append(orphan)
            init = await self._live.get_blob(blob_key(space, INIT_URI))
            rows = []
            for ref in segments:
                if ref in state.segments:
                    data = await self._live.get_blob(blob_key(space, ref.uri))
                else:  # the open segment: its stored parts, concatenated
                    parts = [await self._live.get_blob(blob_key(space, p.uri)) for p in ref.parts]
                    data = b"".join(p for p in parts if p is not None) if all(parts) else None
                if data is not None:
                    rows.append((meta_of(ref), data))
            try:
                added = await self._repo.add(space, init=init, segments=rows, now=now)
            except PnyxError as exc:
                if exc.code != "recording_finished":
                    raise
        if await self._repo.finish(space, now):
            await self._recorder.announce_finished(space)
            log.warning(
                "recording of space %s sealed by a reader (its writer is gone); %d segments "
                "recovered from the live state",
                space,
                added,
            )


def _deleted(space: SpaceId) -> PnyxError:
    return PnyxError(
        ErrorKind.GONE,
        f"the host deleted the recording of space {space}: there is no replay any more",
        code="recording_deleted",
    )
