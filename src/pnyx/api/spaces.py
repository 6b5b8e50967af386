"""Spaces: create, list, read, start, end."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from pnyx.api.deps import Account, NodeDep
from pnyx.api.schemas import NewSpace, SpaceList, SpaceOut
from pnyx.domain import commands as cmd
from pnyx.domain.types import SpaceId, SpaceStatus
from pnyx.services.spaces import NewSpace as NewSpaceSpec

router = APIRouter(prefix="/v1/spaces", tags=["spaces"])


async def _out(node: NodeDep, space: SpaceId) -> SpaceOut:
    rec = await node.spaces.record(space)
    snap = await node.live.get_snapshot(space)
    return SpaceOut(**node.spaces.public_info(rec, dict(snap.parts) if snap else None))


@router.post("", status_code=201)
async def create(body: NewSpace, me: Account, node: NodeDep, response: Response) -> SpaceOut:
    rec = await node.spaces.create(
        me,
        NewSpaceSpec(
            title=body.title,
            scheduled_start=body.scheduled_start,
            speak_policy=body.who_can_speak,
            record=body.record,
        ),
    )
    response.headers["Location"] = f"/v1/spaces/{rec.id}"
    return await _out(node, rec.id)


@router.get("")
async def list_spaces(
    node: NodeDep,
    response: Response,
    state: Literal["live", "scheduled"] = "live",
    limit: int = Query(50, ge=1, le=200),
) -> SpaceList:
    recs = await node.spaces.list(SpaceStatus(state), limit)
    response.headers["Cache-Control"] = f"public, max-age={node.settings.space_cache_s}"
    out = []
    for rec in recs:
        snap = await node.live.get_snapshot(rec.id)
        out.append(SpaceOut(**node.spaces.public_info(rec, dict(snap.parts) if snap else None)))
    return SpaceList(spaces=out)


@router.get("/{space_id}")
async def get_space(space_id: str, node: NodeDep, response: Response) -> SpaceOut:
    out = await _out(node, SpaceId(space_id))
    response.headers["Cache-Control"] = f"public, max-age={node.settings.space_cache_s}"
    return out


@router.post("/{space_id}/start")
async def start(space_id: str, me: Account, node: NodeDep) -> SpaceOut:
    await node.spaces.execute(SpaceId(space_id), cmd.StartSpace(me))
    return await _out(node, SpaceId(space_id))


@router.post("/{space_id}/end")
async def end(space_id: str, me: Account, node: NodeDep) -> SpaceOut:
    await node.spaces.execute(SpaceId(space_id), cmd.EndSpace(me))
    return await _out(node, SpaceId(space_id))
