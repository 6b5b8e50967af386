"""WHIP-style publish for stage members (the shape of RFC 9725).

``POST /v1/spaces/{id}/publish`` with an SDP offer answers with the SDP answer and the
session's resource URL; ``DELETE`` that URL to stop. The one peer connection carries the
speaker's audio in and their mix-minus (everyone but themself) back. Signalling is not
trickled: the answer already holds every ICE candidate.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from pnyx.api.deps import Account, ServicesDep
from pnyx.domain.types import SpaceId
from pnyx.errors import ErrorKind, PnyxError

router = APIRouter(prefix="/v1/spaces/{space_id}/publish", tags=["publish"])

SDP = "application/sdp"
_ERROR: dict[str, Any] = {"content": {"application/json": {}}}

_REDIRECT: dict[int | str, dict[str, Any]] = {
    307: {
        "description": "Another node runs this space's media: repeat the same request at "
        "`Location` (that node's URL and the same path), with the same headers and body.",
        "headers": {"Location": {"schema": {"type": "string"}}},
    },
}
_OFFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An SDP offer (RFC 8866) with exactly one `m=audio` section, "
        "`a=sendrecv` (to hear the stage) or `a=sendonly`, Opus preferred. Gather ICE "
        f"candidates before sending (no trickle). At most `max_sdp_bytes` bytes ({SDP}).",
        "content": {SDP: {"schema": {"type": "string"}, "example": "v=0\r\no=- 0 0 IN IP4 ..."}},
    }
}


def _sdp_text(request: Request, body: bytes) -> str:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != SDP:
        raise PnyxError(
            ErrorKind.UNSUPPORTED,
            f"send the SDP offer as Content-Type: {SDP} (got {ctype or 'none'})",
            code="not_sdp",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PnyxError(
            ErrorKind.MALFORMED, "the SDP offer is not UTF-8 text", code="bad_sdp"
        ) from exc
    if not text.strip():
        raise PnyxError(ErrorKind.MALFORMED, "the body is empty: send an SDP offer", code="bad_sdp")
    return text


@router.post(
    "",
    status_code=201,
    response_class=Response,
    summary="Publish audio to the stage (WHIP-style)",
    description="For the host, co-hosts and speakers of a live space: send an SDP offer, "
    "get the SDP answer (201, `Content-Type: application/sdp`) and the session's URL in "
    "`Location`. Publishing again replaces your previous session. Your audio is mixed "
    "only while you are on stage and not muted; the same connection brings you everyone "
    "else. 403: not on stage; 409: the space is not live; 415: not `application/sdp`; "
    "400: an unusable offer; 503 with `Retry-After`: no stage node runs the space yet.",
    openapi_extra=_OFFER_BODY,
    responses={
        201: {
            "description": "The SDP answer, with every ICE candidate.",
            "content": {SDP: {"schema": {"type": "string"}}},
            "headers": {
                "Location": {
                    "description": "The session: `DELETE` it to stop publishing.",
                    "schema": {"type": "string"},
                }
            },
        },
        **_REDIRECT,
        400: {"description": "The offer does not parse or has no sending audio.", **_ERROR},
        403: {"description": "Only stage members publish.", **_ERROR},
        409: {"description": "The space is not live.", **_ERROR},
        413: {"description": "The offer is over `max_sdp_bytes`.", **_ERROR},
        415: {"description": "The body must be `application/sdp`.", **_ERROR},
        503: {"description": "No stage node for the space yet: retry.", **_ERROR},
    },
)
async def publish(space_id: str, request: Request, me: Account, services: ServicesDep) -> Response:
    offer = _sdp_text(request, await request.body())
    space = SpaceId(space_id)
    elsewhere = await services.media.admit(space, me)
    if elsewhere is not None:
        return RedirectResponse(elsewhere.rstrip("/") + request.url.path, status_code=307)
    published = await services.media.publish(space, me, offer)
    return Response(
        published.answer_sdp,
        status_code=201,
        media_type=SDP,
        headers={
            "Location": f"/v1/spaces/{space_id}/publish/{published.session}",
            "Cache-Control": "no-store",
        },
    )


@router.delete(
    "/{session}",
    status_code=204,
    response_class=Response,
    summary="Stop publishing",
    description="End the publish session at this URL (yours only) and close its peer "
    "connection. 404 when there is no such session of yours.",
    responses={
        204: {"description": "Stopped."},
        **_REDIRECT,
        404: {"description": "No such session of yours.", **_ERROR},
    },
)
async def unpublish(
    space_id: str, session: str, request: Request, me: Account, services: ServicesDep
) -> Response:
    space = SpaceId(space_id)
    elsewhere = await services.media.locate(space)
    if elsewhere is not None:
        return RedirectResponse(elsewhere.rstrip("/") + request.url.path, status_code=307)
    await services.media.unpublish(space, me, session)
    return Response(status_code=204)
