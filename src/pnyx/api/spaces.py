"""Spaces: create, list, read, start, end."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response

from pnyx.api.deps import Account, ServicesDep
from pnyx.api.schemas import ErrorOut, NewSpace, SpaceList, SpaceOut
from pnyx.domain.types import SpaceId, SpaceStatus
from pnyx.services.spaces import NewSpace as NewSpaceSpec

router = APIRouter(prefix="/v1/spaces", tags=["spaces"])

_TOO_MANY_LIVE = (
    "`too_many_live_spaces`: you already host `max_live_spaces_per_account` (default 1) "
    "live spaces; end one first. Ended and cancelled spaces do not count."
)
_CREATE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorOut,
        "description": f"Over a per-account cap. {_TOO_MANY_LIVE} Or "
        "`too_many_scheduled_spaces`: you already have `max_scheduled_spaces_per_account` "
        "(default 20) scheduled spaces; cancel one or start one first.",
    },
    429: {
        "model": ErrorOut,
        "description": "`space_creation_rate`: an account creates at most "
        "`space_creations_per_hour` (default 30) spaces an hour, in bursts of "
        "`space_creation_burst` (10). Retry after `Retry-After` seconds.",
        "headers": {
            "Retry-After": {
                "description": "Seconds until a new space would be accepted.",
                "schema": {"type": "integer"},
            }
        },
    },
}
_START_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorOut,
        "description": "The space cannot start now: it is not scheduled (live already, "
        f"ended or cancelled), or {_TOO_MANY_LIVE}",
    },
}


@router.post("", status_code=201, responses=_CREATE_ERRORS)
async def create(
    body: NewSpace, me: Account, services: ServicesDep, response: Response
) -> SpaceOut:
    space = await services.directory.create(
        me,
        NewSpaceSpec(
            title=body.title,
            scheduled_start=body.scheduled_start,
            speak_policy=body.who_can_speak,
            record=body.record,
        ),
    )
    response.headers["Location"] = f"/v1/spaces/{space.id}"
    return SpaceOut.of(space)


@router.get("")
async def list_spaces(
    services: ServicesDep,
    response: Response,
    state: Literal["live", "scheduled"] = "live",
    limit: int = Query(50, ge=1, le=200),
) -> SpaceList:
    spaces = await services.directory.listing(SpaceStatus(state), limit)
    response.headers["Cache-Control"] = f"public, max-age={services.config.space_cache_s}"
    return SpaceList(spaces=[SpaceOut.of(space) for space in spaces])


@router.get("/{space_id}")
async def get_space(space_id: str, services: ServicesDep, response: Response) -> SpaceOut:
    space = await services.directory.get(SpaceId(space_id))
    response.headers["Cache-Control"] = f"public, max-age={services.config.space_cache_s}"
    return SpaceOut.of(space)


@router.post("/{space_id}/start", responses=_START_ERRORS)
async def start(space_id: str, me: Account, services: ServicesDep) -> SpaceOut:
    return SpaceOut.of(await services.directory.start(SpaceId(space_id), me))


@router.post("/{space_id}/end")
async def end(space_id: str, me: Account, services: ServicesDep) -> SpaceOut:
    return SpaceOut.of(await services.directory.end(SpaceId(space_id), me))
