"""Notifications (the list, unread count, read mark), the live spaces of the hosts one
follows, and browser push subscriptions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from pnyx.api.deps import Account, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import Instant, SpaceList, SpaceOut, Strict
from pnyx.errors import ErrorKind
from pnyx.services.ratelimits import RateKind

router = APIRouter(prefix="/v1", tags=["notifications"])


class NotificationOut(BaseModel):
    # "space_live" | "space_soon" | "space_rescheduled" | "space_cancelled" |
    # "speak_invite" | "space_invite"
    kind: str
    space: str
    host: str
    title: str
    at: str  # ISO 8601, UTC
    detail: str = ""  # space_rescheduled: the new start; space_cancelled: the reason


class NotificationList(BaseModel):
    notifications: list[NotificationOut]
    unread: int = Field(description="how many of these are newer than the read mark")
    read_at: str | None = Field(description="the read mark (ISO 8601), or null: none read")
    poll_s: float = Field(description="ask again after this many seconds (`notify_poll_s`)")


class ReadIn(Strict):
    until: Instant | None = Field(
        None, description="mark read up to this time (default: now; never later than now)"
    )


class ReadOut(BaseModel):
    read_at: str


@router.get("/notifications")
async def notifications(
    me: Account, services: ServicesDep, response: Response, limit: int = Query(50, ge=1, le=200)
) -> NotificationList:
    """The caller's notifications, newest first: `space_live` when a followed host starts
    a space, `space_soon` before a followed host's scheduled space (or one the caller
    asked to be reminded of) starts, `space_rescheduled` and `space_cancelled` for those,
    `speak_invite` when a moderator asks the caller onto a stage, `space_invite` when
    someone invites the caller into a private space. Unlisted spaces notify only those
    who asked to be reminded; private ones their audience.

    `unread` counts the returned ones newer than the caller's read mark (`POST
    /v1/notifications/read`); `poll_s` is how long a client waits before asking again."""
    inbox = await services.notifications.inbox(me, limit)
    response.headers["Cache-Control"] = "private, no-store"
    items: list[dict[str, Any]] = inbox.items
    return NotificationList(
        notifications=[NotificationOut(**item) for item in items],
        unread=inbox.unread,
        read_at=inbox.read_at.isoformat() if inbox.read_at is not None else None,
        poll_s=inbox.poll_s,
    )


@router.post("/notifications/read")
async def mark_read(me: Account, services: ServicesDep, body: ReadIn | None = None) -> ReadOut:
    """Mark the caller's notifications read up to `until` (default now). The mark only
    moves forward; one write whatever the number of notifications."""
    mark = await services.notifications.mark_read(me, body.until if body else None)
    return ReadOut(read_at=mark.isoformat())


@router.get("/following/live")
async def following_live(
    me: Account, services: ServicesDep, limit: int = Query(50, ge=1, le=200)
) -> SpaceList:
    """The live public spaces of the hosts the caller follows, newest first (the same
    shape as `GET /v1/spaces`; private to the caller, so never cached). Unlisted and
    private spaces are in no list."""
    spaces = await services.directory.followed_live(me, limit)
    return SpaceList(spaces=[SpaceOut.of(space) for space in spaces])


class PushKeyOut(BaseModel):
    public_key: str = Field(description="the VAPID public key (base64url, uncompressed P-256)")


class PushKeys(Strict):
    p256dh: str = Field(min_length=1, max_length=128)
    auth: str = Field(min_length=1, max_length=64)


class PushSubscriptionIn(Strict):
    """A browser's `PushSubscription.toJSON()` (`expirationTime` is ignored)."""

    endpoint: str = Field(min_length=1, max_length=1024)
    keys: PushKeys
    expirationTime: float | None = None


@router.get("/push/key")
async def push_key(services: ServicesDep, response: Response) -> PushKeyOut:
    """The node's VAPID public key, the `applicationServerKey` a browser subscribes with."""
    response.headers["Cache-Control"] = "public, max-age=3600"
    return PushKeyOut(public_key=services.push.public_key)


@router.post(
    "/push/subscriptions",
    status_code=204,
    responses=raises(
        notes={
            ErrorKind.INVALID: "`bad_push_endpoint` (not https), `bad_push_keys`.",
            ErrorKind.RATE_LIMITED: "`reminder_limited`: at most `reminders_per_hour` (60) "
            "reminder and push requests per account and hour.",
        }
    ),
)
async def subscribe(body: PushSubscriptionIn, me: Account, services: ServicesDep) -> Response:
    """Opt this browser in to push: `space_live`, `space_soon` and the other
    notifications the caller gets are also pushed to it (fan-out on write only)."""
    await services.limits.check(RateKind.REMINDER, me)
    await services.push.subscribe(me, body.endpoint, body.keys.p256dh, body.keys.auth)
    return Response(status_code=204)


@router.delete("/push/subscriptions", status_code=204)
async def unsubscribe(
    me: Account,
    services: ServicesDep,
    endpoint: str = Query(min_length=1, max_length=1024),
) -> Response:
    """Opt a browser out (its subscription's endpoint); idempotent."""
    await services.push.unsubscribe(me, endpoint)
    return Response(status_code=204)
