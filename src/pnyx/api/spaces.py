"""Spaces: create, list, read, start, end."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from pnyx.api.deps import Account, ServicesDep
from pnyx.api.schemas import NewSpace, SpaceList, SpaceOut
from pnyx.domain.types import SpaceId, SpaceStatus
from pnyx.services.spaces import NewSpace as NewSpaceSpec

router = APIRouter(prefix="/v1/spaces", tags=["spaces"])


@router.post("", status_code=201)
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


@router.post("/{space_id}/start")
async def start(space_id: str, me: Account, services: ServicesDep) -> SpaceOut:
    return SpaceOut.of(await services.directory.start(SpaceId(space_id), me))


@router.post("/{space_id}/end")
async def end(space_id: str, me: Account, services: ServicesDep) -> SpaceOut:
    return SpaceOut.of(await services.directory.end(SpaceId(space_id), me))
