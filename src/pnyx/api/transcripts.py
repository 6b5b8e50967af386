"""A space's transcript: every live caption, after the end (or so far, while live).

Listener reads like the space itself: no token, the same answer for everyone, cacheable
(a private space's only under its signed link, ``/p/{exp}/{sig}/…``). While the space is
live the answer grows (``public, max-age=5``); once it is over it is complete
(``public, max-age=3600``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from pnyx.api.deps import ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import SpaceIdPath, TranscriptOut
from pnyx.domain.types import SpaceId
from pnyx.errors import ErrorKind
from pnyx.services.captions import Transcript

router = APIRouter(tags=["media"])

GROWING = "public, max-age=5"
COMPLETE = "public, max-age=3600"
_ERRORS = raises(
    notes={
        ErrorKind.NOT_FOUND: "No such space (`no_space`), or it is not captioned (`no_transcript`)."
    }
)


def _cache(transcript: Transcript) -> dict[str, str]:
    return {"Cache-Control": COMPLETE if transcript.complete else GROWING}


def _text(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "The transcript.",
            "content": {media_type: {"schema": {"type": "string"}}},
        },
        **_ERRORS,
    }


@router.get("/v1/spaces/{space_id}/transcript", responses=_ERRORS)
async def transcript(
    space_id: SpaceIdPath, services: ServicesDep, response: Response
) -> TranscriptOut:
    """Every caption of a captioned space in time order: seconds on the replay's
    timeline, the speaker's handle when the mixer's levels named one. `complete` once
    the space is over."""
    found = await services.transcripts.transcript(SpaceId(space_id))
    response.headers.update(_cache(found))
    return TranscriptOut.of(found)


@router.get(
    "/v1/spaces/{space_id}/transcript.vtt", response_class=Response, responses=_text("text/vtt")
)
async def transcript_vtt(space_id: SpaceIdPath, services: ServicesDep) -> Response:
    """The transcript as WebVTT (``@handle: words`` per cue)."""
    found = await services.transcripts.transcript(SpaceId(space_id))
    return Response(found.vtt(), media_type="text/vtt; charset=utf-8", headers=_cache(found))


@router.get(
    "/v1/spaces/{space_id}/transcript.txt", response_class=Response, responses=_text("text/plain")
)
async def transcript_text(space_id: SpaceIdPath, services: ServicesDep) -> Response:
    """The transcript as text: ``[hh:mm:ss] @handle: words`` per line."""
    found = await services.transcripts.transcript(SpaceId(space_id))
    return Response(found.text(), media_type="text/plain; charset=utf-8", headers=_cache(found))
