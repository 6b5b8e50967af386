"""Spaces: create, list, read, start, end."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from pnyx.api.deps import Account, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import NewSpace, SpaceIdPath, SpaceList, SpaceOut
from pnyx.domain.types import SpaceId, SpaceStatus
from pnyx.errors import ErrorKind
from pnyx.services.spaces import NewSpace as NewSpaceSpec

router = APIRouter(prefix="/v1/spaces", tags=["spaces"])

_HOST_ONLY = raises(
    notes={
        ErrorKind.FORBIDDEN: "Only the host does this.",
        ErrorKind.CONFLICT: "The space's state rules it out (`space_over`, `already_live`…).",
        ErrorKind.UNAVAILABLE: "The space is being changed by many at once (`contended`).",
    }
)


@router.post(
    "",
    status_code=201,
    responses=raises(
        notes={
            ErrorKind.INVALID: "`bad_title`, `bad_schedule` (not in the future).",
            ErrorKind.NOT_FOUND: "The token's account does not exist here (`account_not_found`).",
            ErrorKind.CONFLICT: "The new id is taken (`space_exists`; vanishingly rare: retry).",
        }
    ),
)
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
async def get_space(space_id: SpaceIdPath, services: ServicesDep, response: Response) -> SpaceOut:
    space = await services.directory.get(SpaceId(space_id))
    response.headers["Cache-Control"] = f"public, max-age={services.config.space_cache_s}"
    return SpaceOut.of(space)


@router.post("/{space_id}/start", responses=_HOST_ONLY)
async def start(space_id: SpaceIdPath, me: Account, services: ServicesDep) -> SpaceOut:
    return SpaceOut.of(await services.directory.start(SpaceId(space_id), me))


@router.post("/{space_id}/end", responses=_HOST_ONLY)
async def end(space_id: SpaceIdPath, me: Account, services: ServicesDep) -> SpaceOut:
    return SpaceOut.of(await services.directory.end(SpaceId(space_id), me))
