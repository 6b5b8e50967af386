"""Clips: make one of a live or recorded space, read it, download its ``.m4a``; and the
share page ``/c/{id}`` (the web client's page with the clip's OpenGraph tags)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from pnyx.api.deps import Account, MaybeAccount, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import ClipIdPath, ClipOut, NewClip, SpaceIdPath
from pnyx.domain.types import SpaceId, Visibility
from pnyx.errors import ErrorKind
from pnyx.services.clips import MEDIA_TYPE, ClipRecord, ClipRequest

router = APIRouter(tags=["clips"])

IMMUTABLE = "public, max-age=31536000, immutable"
PRIVATE_IMMUTABLE = "private, max-age=31536000, immutable"
_PRIVATE = (
    "A private space's clip, read by an account that may not listen to the space "
    "(`private_space`, `removed`, `blocked`)."
)
_READ = raises(
    notes={
        ErrorKind.NOT_FOUND: "No such clip (`no_clip`), or its private space is gone.",
        ErrorKind.FORBIDDEN: _PRIVATE,
    }
)


@router.post(
    "/v1/spaces/{space_id}/clips",
    status_code=201,
    responses=raises(
        notes={
            ErrorKind.INVALID: "`bad_clip_length` (1 to `clip_max_s` seconds), "
            "`bad_clip_start` (`at` past the recording's end), `at_needs_replay` (`at` on a "
            "live space), `bad_title`.",
            ErrorKind.FORBIDDEN: "A private space the caller may not listen to "
            "(`private_space`), or one they were removed or blocked from.",
            ErrorKind.NOT_FOUND: "An unrecorded or empty space that has ended (`no_recording`).",
            ErrorKind.GONE: "An ended space whose host deleted the recording "
            "(`recording_deleted`).",
            ErrorKind.CONFLICT: "Nothing to clip yet (`nothing_to_clip`: the space is "
            "scheduled, or has no finished audio yet); or, vanishingly rare, the new id is "
            "taken (`clip_exists`: retry).",
            ErrorKind.UNAVAILABLE: "The recording is being finished (`not_ready`): retry.",
            ErrorKind.RATE_LIMITED: "`clip_limited`: an account makes at most "
            "`clips_per_hour` (default 30) clips an hour, in bursts of `clip_burst` (5).",
        }
    ),
)
async def create(
    space_id: SpaceIdPath,
    body: NewClip,
    me: Account,
    services: ServicesDep,
    response: Response,
) -> ClipOut:
    """Clip a space: a live one's last `seconds` (default 30), or a recorded, ended one's
    `seconds` from `at`. Made of whole segments, not re-encoded. The clip has its own
    page, `/c/{id}`, and keeps the space's visibility."""
    clip = await services.clips.create(
        SpaceId(space_id), me, ClipRequest(seconds=body.seconds, at=body.at, title=body.title)
    )
    out = ClipOut.of(clip)
    response.headers["Location"] = out.links["self"]
    return out


@router.get("/v1/clips/{clip_id}", responses=_READ)
async def get_clip(
    clip_id: ClipIdPath, me: MaybeAccount, services: ServicesDep, response: Response
) -> ClipOut:
    """A clip. A private space's clip needs the token of an account that may listen."""
    clip = await services.clips.get(clip_id, me)
    response.headers["Cache-Control"] = _cache(clip, "public, max-age=60")
    return ClipOut.of(clip)


@router.get(
    "/v1/clips/{clip_id}/clip.m4a",
    response_class=Response,
    responses={
        200: {
            "description": "The clip as one fragmented MP4 (AAC audio), immutable.",
            "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        },
        **_READ,
    },
)
async def clip_media(clip_id: ClipIdPath, me: MaybeAccount, services: ServicesDep) -> Response:
    """The clip's audio (AAC in fragmented MP4, starting at 0)."""
    clip, data = await services.clips.media(clip_id, me)
    headers = {
        "Cache-Control": _cache(clip, IMMUTABLE),
        "Content-Disposition": f'inline; filename="pnyx-clip-{clip.id}.m4a"',
    }
    return Response(data, media_type=MEDIA_TYPE, headers=headers)


def _cache(clip: ClipRecord, public: str) -> str:
    return PRIVATE_IMMUTABLE if clip.visibility is Visibility.PRIVATE else public
