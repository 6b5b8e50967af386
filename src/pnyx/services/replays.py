"""The replay of a recorded space: its VOD playlist and its download, from the origin,
told how long ago the durable store says the space ended (the origin serves a recording
only once it is final)."""

from __future__ import annotations

from collections.abc import Callable

from pnyx.domain.types import SpaceId, SpaceStatus
from pnyx.services.origin import Export, Origin
from pnyx.services.spaces import SpaceService

OVER = (SpaceStatus.ENDED, SpaceStatus.CANCELLED)


class ReplayService:
    def __init__(self, spaces: SpaceService, origin: Origin, clock: Callable[[], float]) -> None:
        self._spaces = spaces
        self._origin = origin
        self._clock = clock

    async def playlist(self, space: SpaceId) -> str:
        """The recording as a VOD playlist (NOT_FOUND: unknown or unrecorded space;
        CONFLICT while it is live)."""
        return await self._origin.replay(space, ended_for=await self._ended_for(space))

    async def export(self, space: SpaceId) -> Export:
        """The whole recording as one fragmented MP4, to download."""
        return await self._origin.recording_export(space, ended_for=await self._ended_for(space))

    async def _ended_for(self, space: SpaceId) -> float | None:
        """Seconds since the space ended (per the durable store); None while it has not."""
        rec = await self._spaces.record(space)
        if rec.status not in OVER:
            return None
        ended_at = rec.ended_at.timestamp() if rec.ended_at is not None else 0.0
        return max(0.0, self._clock() - ended_at)
