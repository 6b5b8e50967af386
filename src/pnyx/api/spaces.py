"""Spaces: create, list, read, edit, start, end (or cancel); a space's (signed) links;
private invitations; "remind me"."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from pnyx.api.deps import Account, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import (
    EndIn,
    InviteIn,
    InviteList,
    InviteOut,
    LinksOut,
    NewSpace,
    SpaceEditIn,
    SpaceIdPath,
    SpaceList,
    SpaceOut,
)
from pnyx.api.signed import SIGNED
from pnyx.domain.types import Audience, SpaceId, SpaceStatus
from pnyx.errors import ErrorKind
from pnyx.services.accounts import normalise_handle
from pnyx.services.links import with_prefix
from pnyx.services.ratelimits import RateKind
from pnyx.services.spaces import NewSpace as NewSpaceSpec
from pnyx.services.spaces import SpaceEdit

router = APIRouter(prefix="/v1/spaces", tags=["spaces"])

_TOO_MANY_LIVE = (
    "`too_many_live_spaces`: you already host `max_live_spaces_per_account` (default 1) "
    "live spaces; end one first. Ended and cancelled spaces do not count."
)
_HOST_ONLY = raises(
    notes={
        ErrorKind.FORBIDDEN: "Only the host does this.",
        ErrorKind.CONFLICT: "The space's state rules it out (`space_over`, `already_live`…).",
        ErrorKind.UNAVAILABLE: "The space is being changed by many at once (`contended`).",
    }
)
_START = raises(
    notes={
        ErrorKind.FORBIDDEN: "Only the host does this.",
        ErrorKind.CONFLICT: "The space cannot start now: it is not scheduled (live already, "
        f"ended or cancelled), or {_TOO_MANY_LIVE}",
        ErrorKind.UNAVAILABLE: "The space is being changed by many at once (`contended`).",
    }
)
_INVITERS = raises(
    notes={
        ErrorKind.FORBIDDEN: "Only the host and co-hosts manage who may listen.",
        ErrorKind.CONFLICT: "Not a private space (`not_private`), or it is over.",
    }
)


@router.post(
    "",
    status_code=201,
    responses=raises(
        notes={
            ErrorKind.INVALID: "`bad_title`, `bad_schedule` (not in the future), "
            "`audience_needs_private`.",
            ErrorKind.NOT_FOUND: "The token's account does not exist here (`account_not_found`).",
            ErrorKind.CONFLICT: f"Over a per-account cap. {_TOO_MANY_LIVE} Or "
            "`too_many_scheduled_spaces`: you already have `max_scheduled_spaces_per_account` "
            "(default 20) scheduled spaces; cancel one or start one first. Or the new id is "
            "taken (`space_exists`; vanishingly rare: retry).",
            ErrorKind.RATE_LIMITED: "`space_creation_rate`: an account creates at most "
            "`space_creations_per_hour` (default 30) spaces an hour, in bursts of "
            "`space_creation_burst` (10).",
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
            captions=services.config.captions_default if body.captions is None else body.captions,
            visibility=body.visibility,
            audience=body.audience or Audience.INVITED,
        ),
    )
    response.headers["Location"] = space.links["self"]
    return SpaceOut.of(space)


@router.get("")
async def list_spaces(
    services: ServicesDep,
    response: Response,
    state: Literal["live", "scheduled"] | None = Query(
        None, description="live (the default without `q`) or scheduled"
    ),
    q: str | None = Query(
        None,
        min_length=1,
        max_length=200,
        description="search public spaces' titles and hosts' handles (PostgreSQL: full "
        'text, with "quoted phrases" and -excluded words; SQLite: every word as a '
        "substring). Live ones first, then scheduled, then ended; `state` narrows it.",
    ),
    limit: int = Query(50, ge=1, le=200),
) -> SpaceList:
    """Public spaces: live ones by audience (largest first), scheduled ones soonest
    first; or with `q`, those whose title or host match."""
    if q is not None and q.strip():
        status = SpaceStatus(state) if state is not None else None
        spaces = await services.directory.search(q, limit, status)
    else:
        spaces = await services.directory.listing(SpaceStatus(state or "live"), limit)
    response.headers["Cache-Control"] = f"public, max-age={services.config.space_cache_s}"
    return SpaceList(spaces=[SpaceOut.of(space) for space in spaces])


@router.get(
    "/{space_id}",
    responses=raises(
        notes={
            ErrorKind.FORBIDDEN: "A private space read without a signed link "
            "(`signed_link_needed`), or under a wrong signature (`bad_signature`).",
            ErrorKind.GONE: "The signed link has expired (`link_expired`).",
        }
    ),
)
async def get_space(
    space_id: SpaceIdPath, services: ServicesDep, request: Request, response: Response
) -> SpaceOut:
    """The space as every listener sees it. A private space's is read only under its
    signed prefix (`/p/{exp}/{sig}/v1/spaces/{id}`), and its links then carry the same
    prefix."""
    space = SpaceOut.of(await services.directory.get(SpaceId(space_id)))
    signed = request.scope.get(SIGNED)
    if signed:
        space.links = with_prefix(space.links, signed)
    response.headers["Cache-Control"] = f"public, max-age={services.config.space_cache_s}"
    return space


@router.get(
    "/{space_id}/links",
    responses=raises(
        notes={
            ErrorKind.FORBIDDEN: "A private space the caller may not listen to (`private_space`)."
        }
    ),
)
async def links(
    space_id: SpaceIdPath, me: Account, services: ServicesDep, response: Response
) -> LinksOut:
    """The space's links for the caller: for a private space the signed ones, if the
    caller may listen (its host, stage, invited accounts, or the host's followers when its
    audience is `followers`); 403 `private_space` otherwise. Plain links for the rest.
    With `frontrow` when the edges serve the front row: a private space's page renews its
    signed front-row URL here before it expires, without joining again."""
    access = await services.access.links(SpaceId(space_id), me)
    response.headers["Cache-Control"] = "no-store"
    return LinksOut(
        space=access.space,
        visibility=access.visibility,
        links=access.links,
        expires_at=access.expires,
    )


@router.post("/{space_id}/invites", status_code=201, responses=_INVITERS)
async def invite(
    space_id: SpaceIdPath, body: InviteIn, me: Account, services: ServicesDep
) -> InviteOut:
    """Invite an account into a private space (host and co-hosts; idempotent). The account
    gets a `space_invite` notification. 409 `not_private` for other spaces."""
    handle = normalise_handle(body.handle.removeprefix("@"))
    rec = await services.access.invite(SpaceId(space_id), me, handle)
    return InviteOut(handle=rec.handle, invited_by=rec.invited_by, created_at=rec.created_at)


@router.get("/{space_id}/invites", responses=_INVITERS)
async def invites(space_id: SpaceIdPath, me: Account, services: ServicesDep) -> InviteList:
    """The private space's invited accounts, by handle (host and co-hosts)."""
    recs = await services.access.invites(SpaceId(space_id), me)
    return InviteList(
        invites=[
            InviteOut(handle=r.handle, invited_by=r.invited_by, created_at=r.created_at)
            for r in recs
        ]
    )


@router.delete("/{space_id}/invites/{handle}", status_code=204, responses=_INVITERS)
async def revoke(
    space_id: SpaceIdPath, handle: str, me: Account, services: ServicesDep
) -> Response:
    """Revoke an invitation. Signed links it already received keep working until they
    expire (`link_ttl_s`)."""
    await services.access.revoke(SpaceId(space_id), me, normalise_handle(handle.removeprefix("@")))
    return Response(status_code=204)


@router.post("/{space_id}/start", responses=_START)
async def start(space_id: SpaceIdPath, me: Account, services: ServicesDep) -> SpaceOut:
    return SpaceOut.of(await services.directory.start(SpaceId(space_id), me))


@router.post("/{space_id}/end", responses=_HOST_ONLY)
async def end(
    space_id: SpaceIdPath, me: Account, services: ServicesDep, body: EndIn | None = None
) -> SpaceOut:
    """End a live space, or cancel a scheduled one. An optional `reason` is kept
    (`cancel_reason`) and, for a cancelled scheduled space, told to its followers and to
    those who asked to be reminded (a `space_cancelled` notification)."""
    reason = body.reason.strip() if body is not None else ""
    return SpaceOut.of(await services.directory.end(SpaceId(space_id), me, reason))


@router.patch(
    "/{space_id}",
    responses=raises(
        notes={
            ErrorKind.FORBIDDEN: "Only the host edits a space (`host_only`).",
            ErrorKind.CONFLICT: "Only a scheduled space is edited (`not_scheduled`).",
            ErrorKind.INVALID: "`bad_title`, `bad_schedule` (not in the future).",
            ErrorKind.UNAVAILABLE: "The space is being changed by many at once (`contended`).",
        }
    ),
)
async def edit(
    space_id: SpaceIdPath, body: SpaceEditIn, me: Account, services: ServicesDep
) -> SpaceOut:
    """Edit or reschedule a scheduled space (host only): its `title`, `scheduled_start`
    and `who_can_speak`; fields left out stay. A new start is told to the followers and to
    those who asked to be reminded (`space_rescheduled`), and the reminder goes out again
    before the new start."""
    edit = SpaceEdit(
        title=body.title, scheduled_start=body.scheduled_start, speak_policy=body.who_can_speak
    )
    return SpaceOut.of(await services.directory.edit(SpaceId(space_id), me, edit))


@router.delete(
    "/{space_id}/recording",
    status_code=204,
    responses=raises(
        notes={
            ErrorKind.FORBIDDEN: "Only the host deletes the recording (`host_only`).",
            ErrorKind.NOT_FOUND: "No such space, or it was not recorded (`no_recording`).",
            ErrorKind.CONFLICT: "The space is scheduled or live (`still_live`): a recording "
            "is deleted once the space has ended.",
        }
    ),
)
async def delete_recording(space_id: SpaceIdPath, me: Account, services: ServicesDep) -> Response:
    """Delete the recording of an ended space, for good (host only; idempotent). The
    replay routes (`replay.m3u8`, `rec/…`, `recording.m4a`) answer 410
    `recording_deleted` from now on; edges drop their copies within `replay_edge_ttl_s`
    (browsers that already fetched parts of it may keep those). Clips already made stay.
    A `recording.deleted` webhook is sent."""
    await services.replays.delete(SpaceId(space_id), me)
    return Response(status_code=204)


class ReminderOut(BaseModel):
    space: str
    reminded: bool


_REMIND = raises(
    notes={
        ErrorKind.CONFLICT: "Reminders are for scheduled spaces (`not_scheduled`).",
        ErrorKind.FORBIDDEN: "A private space the caller may not listen to (`private_space`, "
        "`blocked`, `removed`).",
        ErrorKind.RATE_LIMITED: "`reminder_limited`: at most `reminders_per_hour` (60) "
        "reminder and push requests per account and hour.",
    }
)


@router.post("/{space_id}/reminder", responses=_REMIND)
async def remind(space_id: SpaceIdPath, me: Account, services: ServicesDep) -> ReminderOut:
    """Remind me: the caller gets the `space_soon` notification (and a push, if their
    browser opted in) `remind_before_s` before the scheduled space starts, once, and hears
    if it is rescheduled or cancelled. Anyone signed in, follower or not; for a private
    space only those who may listen. Idempotent."""
    await services.limits.check(RateKind.REMINDER, me)
    await services.notifications.remind(SpaceId(space_id), me)
    return ReminderOut(space=space_id, reminded=True)


@router.delete("/{space_id}/reminder")
async def unremind(space_id: SpaceIdPath, me: Account, services: ServicesDep) -> ReminderOut:
    """Stop reminding me of this space (idempotent)."""
    await services.notifications.unremind(SpaceId(space_id), me)
    return ReminderOut(space=space_id, reminded=False)


@router.get("/{space_id}/reminder")
async def reminder(
    space_id: SpaceIdPath, me: Account, services: ServicesDep, response: Response
) -> ReminderOut:
    """Whether the caller asked to be reminded of this space."""
    response.headers["Cache-Control"] = "no-store"
    reminded = await services.notifications.reminded(SpaceId(space_id), me)
    return ReminderOut(space=space_id, reminded=reminded)
