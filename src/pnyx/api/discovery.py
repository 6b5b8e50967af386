"""Discovery beyond the live list: recent replays. (Search is `GET /v1/spaces?q=`.)"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from pnyx.api.deps import ServicesDep
from pnyx.api.schemas import SpaceList, SpaceOut

router = APIRouter(prefix="/v1", tags=["spaces"])


@router.get("/replays")
async def recent_replays(
    services: ServicesDep, response: Response, limit: int = Query(20, ge=1, le=100)
) -> SpaceList:
    """Recent replays: ended public spaces whose recording is finished, most recently
    ended first."""
    spaces = await services.directory.recent_replays(limit)
    response.headers["Cache-Control"] = f"public, max-age={services.config.space_cache_s}"
    return SpaceList(spaces=[SpaceOut.of(space) for space in spaces])
