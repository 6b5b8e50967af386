"""Space analytics: kept by the space's ticker while it is live, durable once it ends.

The ticker of the node holding a space calls :meth:`Analytics.observe` on every tick with
the count it just published; the running :class:`~pnyx.services.figures.Figures` live in
this process and are saved to the live state (blob ``{space}/analytics``) every
``analytics_flush_s``, so a node that takes the space over carries on from them. When the
space ends (the ticker lets it go as ended) they are written to the store
(``space_analytics``); until then (the store away, the ticker's node gone) they stay in
the live state, a week, however soon the rest of the ended space expires. Replay plays
and downloads are counted in the store from the replay page's beacon (``replay_event``:
a POST when playback starts or a download is clicked, limited per client address and per
space), never from the replay's GETs, which edges cache a year (an origin sees about one
per edge). Every step and every read is bounded: a few O(1) live-state reads per tick,
one blob or row per request.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pnyx.config import Settings
from pnyx.domain.permissions import Action, require
from pnyx.domain.types import Handle, SpaceId, SpaceStatus
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState, Snapshot
from pnyx.live.keys import analytics_key
from pnyx.live.windows import REACTION_RETENTION_S, UNIQUE_RETENTION_S
from pnyx.services import views
from pnyx.services.figures import Figures
from pnyx.services.ratelimits import RateKind, RateLimits
from pnyx.services.spaces import SpaceService
from pnyx.store.analytics import AnalyticsRepo

log = logging.getLogger(__name__)

_OVER = (SpaceStatus.ENDED, SpaceStatus.CANCELLED)


class ReplayEvent(StrEnum):
    """What the replay page reports (``POST /v1/spaces/{id}/replay/{event}``)."""

    PLAY = "play"  # playback started
    DOWNLOAD = "download"  # the download link was clicked


def _at(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class Report:
    """What the host is shown (api/schemas.py ``AnalyticsOut``)."""

    space_id: SpaceId
    status: SpaceStatus
    peak_listeners: int
    peak_at: datetime | None
    unique_listeners: int
    listening_s: float
    joins_per_minute: tuple[tuple[datetime, int], ...]
    reactions: dict[str, int]
    speakers: tuple[tuple[Handle, float], ...]  # most speaking first
    replay_plays: int
    replay_downloads: int
    timeline: tuple[tuple[datetime, int], ...]
    timeline_step_s: float


class Analytics:
    def __init__(
        self,
        settings: Settings,
        live: LiveState,
        repo: AnalyticsRepo,
        spaces: SpaceService,
        clock: Callable[[], float],
        *,
        limits: RateLimits | None = None,
    ) -> None:
        self._limits = limits
        self._s = settings
        self._live = live
        self._repo = repo
        self._spaces = spaces
        self._clock = clock
        self._held: dict[SpaceId, Figures] = {}
        self._saved_at: dict[SpaceId, float] = {}

    def _new(self) -> Figures:
        return Figures(self._s.analytics_sample_s, self._s.analytics_max_points)

    async def _stored(self, space: SpaceId) -> Figures | None:
        data = await self._live.get_blob(analytics_key(space))
        return None if data is None else Figures.from_json(json.loads(data))

    async def _save(self, space: SpaceId, figures: Figures) -> None:
        data = json.dumps(figures.to_json(), separators=(",", ":")).encode()
        await self._live.put_blob(analytics_key(space), data, UNIQUE_RETENTION_S)

    # -- the ticker's side ---------------------------------------------------------------
    async def observe(
        self, space: SpaceId, now: float, listeners: int, snap: Snapshot | None
    ) -> None:
        """One tick of a held live space: O(1) reads (the distinct count, the reactions
        of the seconds since the last tick), a blob write every ``analytics_flush_s``."""
        figures = self._held.get(space)
        if figures is None:  # first tick here: carry on from the last holder, if any
            figures = self._held[space] = await self._stored(space) or self._new()
        speaking = snap.parts.get(views.LEVELS, {}).get("speaking", []) if snap else []
        figures.step(
            now,
            listeners,
            await self._live.presence_unique(space),
            speaking,
            await self._live.presence_people(space),
        )
        done = math.floor(now) - 1  # the last whole second
        since = done - REACTION_RETENTION_S if figures.reacted_to is None else figures.reacted_to
        if done > since:
            counts = await self._live.reactions(
                space, done + 0.5, min(done - since, REACTION_RETENTION_S)
            )
            figures.add_reactions(counts, done)
        if now - self._saved_at.get(space, -math.inf) >= self._s.analytics_flush_s:
            await self._save(space, figures)
            self._saved_at[space] = now

    async def finish(self, space: SpaceId) -> None:
        """The space ended: its figures go to the store (from this process, or the live
        state when another node kept them)."""
        figures = self._held.pop(space, None)
        self._saved_at.pop(space, None)
        if figures is None:
            figures = await self._stored(space)
            if figures is None:
                return
        try:
            await self._repo.save(space, figures.to_json())
        except PnyxError:
            # Kept in the live state for the host's report (a week, however soon the
            # rest of the ended space expires), then the error goes on.
            await self._save(space, figures)
            raise
        log.info("space %s: analytics kept (peak %d listeners)", space, figures.peak)

    def forget(self, space: SpaceId) -> None:
        """Another node took the space: it carries on from the live state."""
        self._held.pop(space, None)
        self._saved_at.pop(space, None)

    # -- the host's side -----------------------------------------------------------------
    async def replay_event(self, space: SpaceId, event: ReplayEvent, address: str) -> None:
        """Count one replay play or download, as the replay page reports it. Limited per
        client address (before any read) and per space (bounding the store's writes):
        429. An unknown space 404, one not recorded 404 (``no_recording``), one not over
        409 (``still_live``). Anyone may send it: it is an estimate, trusted for nothing."""
        if self._limits is not None:
            await self._limits.check(RateKind.REPLAY_ADDRESS, address)
        record = await self._spaces.record(space)
        if not record.record:
            raise PnyxError(
                ErrorKind.NOT_FOUND, f"space {space} is not recorded", code="no_recording"
            )
        if record.status not in _OVER:
            raise PnyxError(
                ErrorKind.CONFLICT,
                f"space {space} is {record.status.value}: it has no replay yet",
                code="still_live",
            )
        if self._limits is not None:
            await self._limits.check(RateKind.REPLAY_SPACE, space)
        await self._repo.count(space, "play" if event is ReplayEvent.PLAY else "download")

    async def report(self, space: SpaceId, actor: Handle) -> Report:
        """The figures for the host (``Action.SEE_ANALYTICS``): as of the last save while
        live (at most ``analytics_flush_s`` old), final once the space ended."""
        room = await self._spaces.room(space)
        require(room, actor, Action.SEE_ANALYTICS)
        row = await self._repo.get(space)
        figures: Figures | None = None
        if row is not None and row.doc is not None:
            figures = Figures.from_json(row.doc)
        if figures is None:
            figures = self._held.get(space) or await self._stored(space) or self._new()
        return _report(
            space,
            room.status,
            figures,
            row.replay_plays if row else 0,
            row.replay_downloads if row else 0,
        )


def _report(space: SpaceId, status: SpaceStatus, f: Figures, plays: int, downloads: int) -> Report:
    speakers = sorted(f.speakers.items(), key=lambda kv: (-kv[1], kv[0]))
    return Report(
        space_id=space,
        status=status,
        peak_listeners=f.peak,
        peak_at=_at(f.peak_at),
        unique_listeners=f.people,
        listening_s=round(f.listening_s, 1),
        joins_per_minute=tuple((_dt(m), int(n)) for m, n in f.minutes),
        reactions=dict(sorted(f.reactions.items(), key=lambda kv: -kv[1])),
        speakers=tuple((Handle(h), round(s, 1)) for h, s in speakers),
        replay_plays=plays,
        replay_downloads=downloads,
        timeline=tuple((_dt(t), int(n)) for t, n in f.timeline),
        timeline_step_s=f.sample_s,
    )


def _dt(ts: Any) -> datetime:
    return datetime.fromtimestamp(float(ts), UTC)
