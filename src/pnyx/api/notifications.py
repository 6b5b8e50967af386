"""Follower notifications, and the live spaces of the hosts one follows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from pnyx.api.deps import Account, ServicesDep
from pnyx.api.schemas import SpaceList, SpaceOut

router = APIRouter(prefix="/v1", tags=["notifications"])


class NotificationOut(BaseModel):
    kind: str  # "space_live" | "space_soon" | "space_invite"
    space: str
    host: str
    title: str
    at: str  # ISO 8601, UTC


class NotificationList(BaseModel):
    notifications: list[NotificationOut]


@router.get("/notifications")
async def notifications(
    me: Account, services: ServicesDep, limit: int = Query(50, ge=1, le=200)
) -> NotificationList:
    """The caller's notifications, newest first: `space_live` when a followed host starts
    a space, `space_soon` before a followed host's scheduled space starts, `space_invite`
    when someone invites the caller into a private space. Unlisted spaces notify nobody;
    private ones their invited accounts (and, with audience `followers`, the followers)."""
    items: list[dict[str, Any]] = await services.notifications.for_user(me, limit)
    return NotificationList(notifications=[NotificationOut(**item) for item in items])


@router.get("/following/live")
async def following_live(
    me: Account, services: ServicesDep, limit: int = Query(50, ge=1, le=200)
) -> SpaceList:
    """The live public spaces of the hosts the caller follows, newest first (the same
    shape as `GET /v1/spaces`; private to the caller, so never cached). Unlisted and
    private spaces are in no list."""
    spaces = await services.directory.followed_live(me, limit)
    return SpaceList(spaces=[SpaceOut.of(space) for space in spaces])
