"""Where a running space's media goes: the origin (live state), the recording, and the
"levels" part of the space's snapshot. Implements :class:`pnyx.media.runner.MediaSink`.

The recording only enqueues (``Recordings``, implemented by services/recorder.py): it never
makes the media wait for the durable store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

from pnyx.domain.types import Handle, SpaceId
from pnyx.live.base import LiveState
from pnyx.live.keys import blob_key, hls_key
from pnyx.media.hls import (
    INIT_URI,
    Output,
    Part,
    PlaylistState,
    Segment,
    SegmentRef,
    caption_parts,
)
from pnyx.media.recording import Recordings
from pnyx.services import views
from pnyx.services.captions import SpaceCaptions
from pnyx.services.origin import PLAYLIST, Origin

log = logging.getLogger(__name__)


class SpaceSink:
    def __init__(
        self,
        space: SpaceId,
        live: LiveState,
        origin: Origin,
        recordings: Recordings,
        clock: Callable[[], float],
        *,
        record: bool,
        captions: SpaceCaptions | None = None,
    ) -> None:
        self._space = space
        self._live = live
        self._origin = origin
        self._recordings = recordings
        self._clock = clock
        self._record = record
        self._captions = captions
        self._levels_version = 0

    async def store_init(self, data: bytes) -> None:
        if self._record:
            self._recordings.add_init(self._space, data)
        await self._origin.store_init(self._space, data)

    async def store(self, outputs: Sequence[Output], state: PlaylistState) -> None:
        if self._record:  # first: a failing live state must not cost the recording
            for out in outputs:
                if isinstance(out, Segment):
                    self._recordings.add_segment(self._space, out.ref, out.data)
        vtt = []
        if self._captions is not None:  # a captions file per half segment, stored with it
            group = caption_parts(state.segment_parts)
            for o in outputs:
                if isinstance(o, Part) and o.ref.index % group == group - 1:
                    vtt.append(self._captions.file(o.ref.msn, o.ref.index // group))
                elif isinstance(o, Segment) and len(o.ref.parts) % group:
                    # a short group's file (a full one came with its last part)
                    vtt.append(self._captions.file(o.ref.msn, len(o.ref.parts) // group))
        await self._origin.store(self._space, outputs, state, vtt)

    async def speaking(self, handles: Sequence[Handle]) -> None:
        # Strictly increasing even within one millisecond, and across nodes by the clock.
        self._levels_version = max(self._levels_version + 1, int(self._clock() * 1000))
        await self._live.put_part(
            self._space, views.LEVELS, {"speaking": list(handles)}, self._levels_version
        )

    async def finish(self) -> None:
        """The space ended: nobody speaks any more, and the recording is closed."""
        try:
            await self.speaking(())
        except Exception:
            log.warning("space %s: could not clear who speaks", self._space, exc_info=True)
        if self._record:
            self._recordings.finish(self._space)

    async def store_orphan(self, ref: SegmentRef, state: PlaylistState) -> None:
        """Close the segment a failed node left open, from the parts it had stored. A
        recorded space also gets the window's earlier segments again from the live state:
        the failed node may have died before its recorder stored them (a segment already
        stored is not written twice)."""
        if self._record:
            await backfill(self._live, self._recordings, self._space, state.segments, ref.msn)
        chunks = []
        for part in ref.parts:
            data = await self._live.get_blob(blob_key(self._space, part.uri))
            if data is None:
                log.warning("space %s: part %s of orphan segment is gone", self._space, part.uri)
                continue
            chunks.append(data)
        await self.store([Segment(ref, b"".join(chunks))], state)


async def backfill(
    live: LiveState,
    recordings: Recordings,
    space: SpaceId,
    segments: Sequence[SegmentRef],
    before: int | None = None,
) -> int:
    """Hand ``segments`` (below msn ``before``) to the recording from the live state's
    copies, and the header; returns how many were still there."""
    init = await live.get_blob(blob_key(space, INIT_URI))
    if init is not None:
        recordings.add_init(space, init)
    found = 0
    for ref in segments:
        if before is not None and ref.msn >= before:
            continue
        data = await live.get_blob(blob_key(space, ref.uri))
        if data is None:
            log.warning("space %s: segment %d is gone from the live state", space, ref.msn)
            continue
        recordings.add_segment(space, ref, data)
        found += 1
    return found


async def previous_state(live: LiveState, space: SpaceId) -> PlaylistState | None:
    """The playlist state last published for ``space`` (by any node), if any."""
    snap = await live.get_snapshot(hls_key(space))
    doc = snap.parts.get(PLAYLIST) if snap is not None else None
    if not doc:
        return None
    try:
        return PlaylistState.from_json(json.dumps(doc))
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("space %s: unreadable playlist state, starting afresh: %s", space, exc)
        return None
