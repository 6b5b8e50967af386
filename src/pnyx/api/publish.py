"""WHIP-style publish for stage members (the shape of RFC 9725).

``POST /v1/spaces/{id}/publish`` with an SDP offer answers with the SDP answer and the
session's resource URL; ``DELETE`` that URL to stop. The one peer connection carries the
speaker's audio in and their mix-minus (everyone but themself) back. Signalling is not
trickled: the answer already holds every ICE candidate.

Any node takes both requests: one that does not run the space's media relays them to
the node that does and answers with its answer (services/relay.py), so a browser stays
on its own origin and a WHIP client on one URL. While the stage moves between nodes the
answer is ``503`` with ``Retry-After``.

ICE servers (STUN, TURN with credentials minted for the caller: services/ice.py) come as
``Link: <url>; rel="ice-server"`` headers (RFC 9725 section 4.6) on the ``201`` and on
an ``OPTIONS`` of the publish URL, which a client sends before making its offer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from pnyx.api.deps import Account, MaybeAccount, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import SpaceIdPath
from pnyx.domain.types import SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.relay import RELAYED, Relayed, session_path

router = APIRouter(prefix="/v1/spaces/{space_id}/publish", tags=["publish"])

SDP = "application/sdp"
# 503: no stage node answers for the space right now (it is starting, or moving to
# another node after one failed): repeat the same request after Retry-After.
_MOVING = "No stage node answers for the space right now: it is starting, or moving to another "
_MOVING += "node after one failed (`stage_moving`). Repeat the same request after `Retry-After`."
_STAGE_ONLY = "Only stage members publish (`not_on_stage`)."
_LINK: dict[str, Any] = {
    "Link": {
        "description": "The ICE servers to use (RFC 9725 section 4.6), one value per URL "
        "(repeated headers, or comma-joined): `<stun:stun.example.net:3478>; "
        'rel="ice-server"` for STUN, and for TURN (signed-in callers only) `<turn:turn.'
        'example.net:3478?transport=udp>; rel="ice-server"; username="1733400000:alice"; '
        'credential="…"; credential-type="password"`. The TURN credentials are minted '
        "for the caller and expire (`ice_turn_ttl_s`, the time before the `:` in the "
        "username). None configured: no `Link` header.",
        "schema": {"type": "string"},
    }
}
_OFFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An SDP offer (RFC 8866) with exactly one `m=audio` section, "
        "`a=sendrecv` (to hear the stage) or `a=sendonly`, offering Opus (the stage mixes "
        "Opus only). Gather ICE "
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
    "`Location`. Publishing again replaces your previous session once the new one "
    "carries audio (make-before-break): until then the previous one stays on the stage, "
    "and a new one that never connects is dropped without touching it. Your audio is mixed "
    "only while you are on stage and not muted; the same connection brings you everyone "
    "else. Any node (or the edge) takes it: a node that does not run the space's media "
    "relays the exchange to the one that does. 401: not signed in; 403: not on stage; "
    "404: no such space; 409: the space is not live; 415: not `application/sdp`; 400: an "
    "unusable offer; 503 with `Retry-After`: the stage is starting or moving between "
    "nodes, or the stage node has no free ICE port (`no_ice_port`); retry the same URL. "
    "The ICE servers to use come in `Link` headers (ask `OPTIONS` before the offer).",
    openapi_extra=_OFFER_BODY,
    responses={
        201: {
            "description": "The SDP answer, with every ICE candidate.",
            "content": {SDP: {"schema": {"type": "string"}}},
            "headers": {
                "Location": {
                    "description": "The session: `DELETE` it to stop publishing.",
                    "schema": {"type": "string"},
                },
                **_LINK,
            },
        },
        **raises(
            notes={
                ErrorKind.MALFORMED: "The offer does not parse or has no sending audio "
                "(`bad_sdp`).",
                ErrorKind.FORBIDDEN: _STAGE_ONLY,
                ErrorKind.CONFLICT: "The space is not live (`not_live`).",
                ErrorKind.TOO_LARGE: "The offer is over `max_sdp_bytes`.",
                ErrorKind.UNSUPPORTED: "The body must be `application/sdp` (`not_sdp`).",
                ErrorKind.UNAVAILABLE: f"{_MOVING} Or the stage node has no free ICE port "
                "(`no_ice_port`).",
            }
        ),
    },
)
async def publish(
    space_id: SpaceIdPath, request: Request, me: Account, services: ServicesDep
) -> Response:
    offer = _sdp_text(request, await request.body())
    space = SpaceId(space_id)
    outcome = await services.publishing.publish(
        space, me, offer, authorization=_authorization(request), relayed=_relayed(request)
    )
    if isinstance(outcome, Relayed):
        return _relayed_response(outcome)  # with the stage node's Link headers
    response = Response(
        outcome.answer_sdp,
        status_code=201,
        media_type=SDP,
        headers={"Location": session_path(space, outcome.session), "Cache-Control": "no-store"},
    )
    _links(response, services.ice.links(me))
    return response


@router.options(
    "",
    status_code=204,
    response_class=Response,
    summary="ICE servers for publishing (WHIP pre-flight)",
    description="Ask before making the offer which STUN and TURN servers to gather "
    'candidates with: `Link` headers, `rel="ice-server"` (RFC 9725 section 4.6). '
    "Signed in (`Authorization: Bearer …`, as for the POST) as a stage member of the "
    "live space, the TURN servers come with credentials minted for you; without a token, "
    "only the STUN servers. 401: a token that is not valid; 403, 404, 409: as for the "
    "POST (not on stage, no such space, not live).",
    responses={
        204: {"description": "The ICE servers, in `Link` headers.", "headers": _LINK},
        **raises(
            notes={
                ErrorKind.FORBIDDEN: _STAGE_ONLY,
                ErrorKind.CONFLICT: "The space is not live (`not_live`).",
            }
        ),
    },
)
async def ice_servers(space_id: SpaceIdPath, me: MaybeAccount, services: ServicesDep) -> Response:
    if me is not None:
        await services.media.check(SpaceId(space_id), me)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    _links(response, services.ice.links(me))
    return response


def _links(response: Response, values: list[str]) -> None:
    for value in values:
        response.headers.append("Link", value)


@router.delete(
    "/{session}",
    status_code=204,
    response_class=Response,
    summary="Stop publishing",
    description="End the publish session at this URL (yours only) and close its peer "
    "connection. Any node takes it (relayed to the node that runs the space's media). "
    "401: not signed in; 404: no such session of yours (or nobody runs the space's media "
    "any more: the session is gone); 503 with `Retry-After`: the stage is moving.",
    responses={
        204: {"description": "Stopped."},
        **raises(
            notes={
                ErrorKind.NOT_FOUND: "No such session of yours (`no_session`).",
                ErrorKind.UNAVAILABLE: _MOVING,
            }
        ),
    },
)
async def unpublish(
    space_id: SpaceIdPath, session: str, request: Request, me: Account, services: ServicesDep
) -> Response:
    outcome = await services.publishing.unpublish(
        SpaceId(space_id),
        me,
        session,
        authorization=_authorization(request),
        relayed=_relayed(request),
    )
    return Response(status_code=204) if outcome is None else _relayed_response(outcome)


def _authorization(request: Request) -> str:
    return request.headers.get("authorization", "")


def _relayed(request: Request) -> bool:
    """Relayed by another node already: handled here or refused, never relayed on."""
    return request.headers.get(RELAYED) == "1"


def _relayed_response(answer: Relayed) -> Response:
    response = Response(answer.body, status_code=answer.status)
    for name, value in answer.headers:
        response.headers.append(name, value)
    return response
