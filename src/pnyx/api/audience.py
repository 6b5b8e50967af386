"""What a host sees of the audience: the signed-in listeners present now, and the
space's analytics; and the replay page's beacon that counts replay plays and downloads."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from pnyx.api.deps import Account, ClientAddress, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import SpaceIdPath
from pnyx.domain.types import SpaceId
from pnyx.errors import ErrorKind
from pnyx.services.analytics import ReplayEvent

router = APIRouter(prefix="/v1/spaces/{space_id}", tags=["audience"])

PAGE_MAX = 100  # listeners per page


class AudienceListenerOut(BaseModel):
    handle: str
    joined_at: datetime


class AudienceListOut(BaseModel):
    listeners: list[AudienceListenerOut]
    next_before: float | None = Field(
        description="pass as `before` for the next page; null when this was the last"
    )


class JoinsOut(BaseModel):
    minute: datetime
    joins: int


class SpeakerOut(BaseModel):
    handle: str
    speaking_s: float


class PointOut(BaseModel):
    at: datetime
    listeners: int


class ReplayOut(BaseModel):
    plays: int
    downloads: int


class AnalyticsOut(BaseModel):
    space_id: str
    status: str
    peak_listeners: int
    peak_at: datetime | None
    unique_listeners: int = Field(
        description="distinct people who joined: accounts by handle, anonymous listeners by "
        "the id their client keeps (`client` on join; else each join), HyperLogLog, ~1%"
    )
    listening_s: float = Field(description="listener-seconds: the count summed over time")
    joins_per_minute: list[JoinsOut]
    reactions: dict[str, int]
    speakers: list[SpeakerOut] = Field(description="who spoke and for how long, most first")
    replay: ReplayOut = Field(
        description="plays and downloads as the replay page reported them (`POST …/replay/{event}`)"
    )
    timeline: list[PointOut] = Field(description="listeners over time (the most in each step)")
    timeline_step_s: float


@router.get(
    "/listeners",
    responses=raises(
        notes={
            ErrorKind.FORBIDDEN: "Only the host and co-hosts see the audience "
            "(`moderators_only`); a removed caller (`removed`)."
        }
    ),
)
async def listeners(
    space_id: SpaceIdPath,
    me: Account,
    services: ServicesDep,
    response: Response,
    before: float | None = Query(
        None, ge=0, le=1e11, description="`next_before` of the previous page"
    ),
    limit: int = Query(50, ge=1, le=PAGE_MAX),
) -> AudienceListOut:
    """The signed-in listeners present now, newest first, for the host and co-hosts
    (to remove, block or invite them to speak). A bounded recent set: of the newest
    `audience_list_cap` (1,000) joins of signed-in listeners, those who have not left
    and were heard (joined or sent a heartbeat) within the presence window
    (`presence_window_s`); people on stage or removed are not listed; anonymous
    listeners are only counted."""
    page = await services.audience.listeners(SpaceId(space_id), me, before, limit)
    response.headers["Cache-Control"] = "private, no-store"
    return AudienceListOut(
        listeners=[
            AudienceListenerOut(handle=e.handle, joined_at=e.joined_at) for e in page.listeners
        ],
        next_before=page.next_before,
    )


@router.get(
    "/analytics",
    responses=raises(
        notes={
            ErrorKind.FORBIDDEN: "Only the host sees the analytics (`host_only`); a removed "
            "caller (`removed`)."
        }
    ),
)
async def analytics(
    space_id: SpaceIdPath, me: Account, services: ServicesDep, response: Response
) -> AnalyticsOut:
    """The space's figures, for its host: peak concurrent listeners and when, distinct
    listeners, listener-seconds, joins per minute, reactions by emoji, who spoke and for
    how long, replay plays and downloads (as replay pages reported them), and the
    listeners over time. While live, as of a few seconds ago; final once the space ended."""
    r = await services.analytics.report(SpaceId(space_id), me)
    response.headers["Cache-Control"] = "private, no-store"
    return AnalyticsOut(
        space_id=r.space_id,
        status=r.status.value,
        peak_listeners=r.peak_listeners,
        peak_at=r.peak_at,
        unique_listeners=r.unique_listeners,
        listening_s=r.listening_s,
        joins_per_minute=[JoinsOut(minute=m, joins=n) for m, n in r.joins_per_minute],
        reactions=r.reactions,
        speakers=[SpeakerOut(handle=h, speaking_s=s) for h, s in r.speakers],
        replay=ReplayOut(plays=r.replay_plays, downloads=r.replay_downloads),
        timeline=[PointOut(at=t, listeners=n) for t, n in r.timeline],
        timeline_step_s=r.timeline_step_s,
    )


@router.post(
    "/replay/{event}",
    status_code=202,
    response_class=Response,  # counted: an empty answer, no body to document
    responses=raises(
        notes={
            ErrorKind.NOT_FOUND: "The space is not recorded (`no_recording`).",
            ErrorKind.CONFLICT: "The space is not over: no replay yet (`still_live`).",
            ErrorKind.RATE_LIMITED: "Too many from this client address "
            "(`replay_address_limited`) or for this space (`replay_space_limited`).",
        }
    ),
)
async def replay_event(
    space_id: SpaceIdPath, event: ReplayEvent, client: ClientAddress, services: ServicesDep
) -> Response:
    """The replay page's beacon: `play` when playback starts, `download` when the
    download link is clicked. This is what the analytics' replay plays and downloads
    count: the replay itself (`replay.m3u8`, `recording.m4a`) is immutable and cached
    at the edges, so the origin never sees most of its reads. No body, no token;
    limited per client address and per space."""
    await services.analytics.replay_event(SpaceId(space_id), event, client)
    return Response(status_code=202, headers={"Cache-Control": "no-store"})
