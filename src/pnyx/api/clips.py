"""Clips: make one of a live or recorded space, read it, download its ``.m4a``; and the
share page ``/c/{id}`` (the web client's page with the clip's OpenGraph tags)."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, Request, Response

from pnyx.api.deps import Account, MaybeAccount, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import ClipIdPath, ClipOut, NewClip, SpaceIdPath
from pnyx.domain.types import SpaceId, Visibility
from pnyx.errors import ErrorKind, PnyxError
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


def page(index_html: Path) -> Callable[..., Awaitable[Response]]:
    """The ``/c/{id}`` page: the web client, with the clip's OpenGraph and Twitter-card
    tags for link previews (none of a private space's: it previews as plain Pnyx)."""

    index = index_html.read_text(encoding="utf-8")  # read once, at start

    async def clip_page(clip_id: str, request: Request, services: ServicesDep) -> Response:
        tags = ""
        try:
            clip = await services.clips.get(clip_id, None)
        except PnyxError:
            clip = None
        if clip is not None:
            tags = _meta(clip, str(request.base_url).rstrip("/"))
        doc = index.replace("<title>Pnyx</title>", tags + "<title>Pnyx</title>", 1)
        return Response(doc, media_type="text/html", headers={"Cache-Control": "no-cache"})

    return clip_page


def _meta(clip: ClipRecord, base: str) -> str:
    title = f"{clip.title} (clip)"
    about = f"A {clip.duration:.0f} s clip from @{clip.host}'s space on Pnyx"
    pairs = [
        ("property", "og:type", "music.song"),
        ("property", "og:site_name", "Pnyx"),
        ("property", "og:title", title),
        ("property", "og:description", about),
        ("property", "og:url", f"{base}/c/{clip.id}"),
        ("property", "og:audio", f"{base}/v1/clips/{clip.id}/clip.m4a"),
        ("property", "og:audio:type", MEDIA_TYPE),
        ("name", "twitter:card", "summary"),
        ("name", "twitter:title", title),
        ("name", "twitter:description", about),
    ]
    return "".join(
        f'<meta {attr}="{name}" content="{html.escape(value, quote=True)}">\n  '
        for attr, name, value in pairs
    )
