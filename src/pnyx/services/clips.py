"""Clips: a listener keeps the last few seconds of a live space, or a stretch of a
recorded one, as a short ``.m4a`` with its own page (``/c/{id}``).

A clip is made from finished segments, never re-encoded: the header plus whole segments
(1.92 s each), their decode times shifted to start at zero (``media/fmp4.py`` ``rebase``).
So a clip is at least as long as asked and at most one segment longer. A live space's
come from the live state (the playlist window and the older segments still kept for
``media_segment_ttl_s``), an ended recorded one's from its recording in the store.

Clips are durable (a row in the store with their bytes, like recordings) and immutable.
Only someone who may listen to the space may clip it (``SpaceAccess.check``), and a
clip keeps its space's visibility: a private space's clips are read only by accounts
that may listen to the space. Each account makes at most ``clips_per_hour`` (bursts of
``clip_burst``).

``on_clip_created`` is called with every new clip (the seam for webhooks' ``clip.created``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pnyx.config import Settings
from pnyx.domain.codec import room_from_json
from pnyx.domain.types import Handle, SpaceId, SpaceStatus, Visibility
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState
from pnyx.live.keys import blob_key
from pnyx.media import fmp4
from pnyx.media.hls import INIT_URI, PackagerConfig, segment_uri
from pnyx.services.access import SpaceAccess
from pnyx.services.media_sink import previous_state
from pnyx.services.ratelimits import RateKind, RateLimits
from pnyx.services.replays import ReplayService
from pnyx.services.spaces import SpaceService
from pnyx.store.clips import ClipRepo
from pnyx.store.records import ClipRecord

__all__ = ["MEDIA_TYPE", "ClipRecord", "ClipRequest", "ClipService"]

log = logging.getLogger(__name__)

TIMESCALE = PackagerConfig().timescale
MEDIA_TYPE = "audio/mp4"


@dataclass(frozen=True, slots=True)
class ClipRequest:
    seconds: float | None = None  # None: clip_default_s
    at: float | None = None  # a recorded space: where to start, seconds; None: 0
    title: str | None = None  # None: the space's title


class ClipService:
    def __init__(
        self,
        settings: Settings,
        spaces: SpaceService,
        access: SpaceAccess,
        replays: ReplayService,
        repo: ClipRepo,
        live: LiveState,
        limits: RateLimits,
        clock: Callable[[], float],
    ) -> None:
        self._default_s = settings.clip_default_s
        self._max_s = settings.clip_max_s
        self._max_title = settings.max_title_len
        self._spaces = spaces
        self._access = access
        self._replays = replays
        self._repo = repo
        self._live = live
        self._limits = limits
        self._clock = clock
        # Called with each new clip once it is stored (webhooks: ``clip.created``).
        self.on_clip_created: Callable[[ClipRecord], Awaitable[None]] | None = None

    async def create(self, space: SpaceId, handle: Handle, ask: ClipRequest) -> ClipRecord:
        seconds = self._seconds(ask.seconds)
        title = self._title(ask.title)
        rec = await self._spaces.record(space)
        await self._access.check(rec, room_from_json(rec.room), handle)
        # The account's rate limit is taken once the request is known to be good and
        # clippable now (so retries of a 409 or 503 cost nothing), before any media is read.
        if rec.status is SpaceStatus.LIVE:
            if ask.at is not None:
                raise PnyxError(
                    ErrorKind.INVALID,
                    f"space {space} is live: a live clip is its last seconds, so leave out "
                    "`at` (it is for recorded spaces that have ended)",
                    code="at_needs_replay",
                )
            data, start_s, duration = await self._from_live(space, handle, seconds)
        elif rec.status is SpaceStatus.SCHEDULED:
            raise PnyxError(
                ErrorKind.CONFLICT,
                f"space {space} has not started: there is nothing to clip yet",
                code="nothing_to_clip",
            )
        else:
            data, start_s, duration = await self._from_recording(
                space, handle, seconds, ask.at or 0.0
            )
        clip = ClipRecord(
            id=secrets.token_urlsafe(9),
            space=space,
            creator=handle,
            host=rec.host,
            title=title or rec.title,
            visibility=rec.visibility,
            start_s=start_s,
            duration=duration,
            created_at=datetime.fromtimestamp(self._clock(), UTC),
            size=len(data),
        )
        await self._repo.add(clip, data)
        log.info("space %s: @%s clipped %.1f s (clip %s)", space, handle, duration, clip.id)
        if self.on_clip_created is not None:
            try:
                await self.on_clip_created(clip)
            except Exception:  # a hook's failure never fails the clip
                log.exception("space %s: on_clip_created failed for clip %s", space, clip.id)
        return clip

    async def get(self, clip_id: str, handle: Handle | None) -> ClipRecord:
        """The clip, if ``handle`` may hear it (anyone for public and unlisted spaces')."""
        clip = await self._repo.get(clip_id)
        if clip is None:
            raise PnyxError(ErrorKind.NOT_FOUND, f"no clip {clip_id}", code="no_clip")
        if clip.visibility is Visibility.PRIVATE:
            rec = await self._spaces.record(clip.space)
            await self._access.check(rec, room_from_json(rec.room), handle)
        return clip

    async def media(self, clip_id: str, handle: Handle | None) -> tuple[ClipRecord, bytes]:
        clip = await self.get(clip_id, handle)
        data = await self._repo.data(clip_id)
        if data is None:  # deleted in between
            raise PnyxError(ErrorKind.NOT_FOUND, f"no clip {clip_id}", code="no_clip")
        return clip, data

    def _seconds(self, asked: float | None) -> float:
        seconds = self._default_s if asked is None else asked
        if not 1 <= seconds <= self._max_s:
            raise PnyxError(
                ErrorKind.INVALID,
                f"a clip lasts 1 to {self._max_s:g} seconds, not {seconds:g}",
                code="bad_clip_length",
            )
        return seconds

    def _title(self, title: str | None) -> str | None:
        if title is None:
            return None
        title = title.strip()
        if not 1 <= len(title) <= self._max_title:
            raise PnyxError(
                ErrorKind.INVALID,
                f"a clip's title has 1 to {self._max_title} characters (not blank)",
                code="bad_title",
            )
        return title

    async def _from_live(
        self, space: SpaceId, handle: Handle, seconds: float
    ) -> tuple[bytes, float, float]:
        """The newest finished segments covering ``seconds``: those of the playlist window
        (their durations known), then older ones still in the live state."""
        state = await previous_state(self._live, space)
        init = await self._live.get_blob(blob_key(space, INIT_URI))
        if state is None or not state.segments or init is None:
            raise PnyxError(
                ErrorKind.CONFLICT,
                f"space {space} has no finished audio yet: try again in a few seconds",
                code="nothing_to_clip",
            )
        await self._limits.check(RateKind.CLIP, handle)
        durations = {ref.msn: ref.duration for ref in state.segments}
        usual = state.segments[0].duration
        picked: list[bytes] = []
        total = 0.0
        msn = state.segments[-1].msn
        while msn >= 0 and total < seconds:
            data = await self._live.get_blob(blob_key(space, segment_uri(msn)))
            if data is None:
                break
            picked.append(data)
            total += durations.get(msn, usual)
            msn -= 1
        picked.reverse()
        return self._file(init, picked, total)

    async def _from_recording(
        self, space: SpaceId, handle: Handle, seconds: float, at: float
    ) -> tuple[bytes, float, float]:
        info = await self._replays.finished(space)  # the replay's errors
        length = sum(s.duration for s in info.segments)
        if not 0 <= at < length:
            raise PnyxError(
                ErrorKind.INVALID,
                f"`at` must be 0 up to the recording's length, {length:.1f} s, not {at:g}",
                code="bad_clip_start",
            )
        await self._limits.check(RateKind.CLIP, handle)
        picked: list[bytes] = []
        total, start = 0.0, 0.0
        for seg in info.segments:
            if start + seg.duration <= at and not picked:
                start += seg.duration
                continue
            data = await self._replays.segment(space, seg.msn)
            if data is None:
                continue
            picked.append(data)
            total += seg.duration
            if total >= seconds:
                break
        init = await self._replays.init(space)
        if init is None or not picked:
            raise PnyxError(
                ErrorKind.NOT_FOUND, f"the recording of space {space} is empty", code="no_recording"
            )
        data, _, duration = self._file(init, picked, total)
        return data, start, duration

    @staticmethod
    def _file(init: bytes, segments: list[bytes], duration: float) -> tuple[bytes, float, float]:
        """Header + segments rebased to start at 0; and where they started in the space."""
        joined = b"".join(segments)
        start = fmp4.decode_start(joined) or 0
        body, _ = fmp4.rebase(joined)
        header = fmp4.with_duration(init, round(duration * TIMESCALE))
        return header + body, start / TIMESCALE, duration
