"""Signed listener paths: ``/p/{exp}/{sig}/…`` in front of a listener read.

A pure ASGI middleware (docs/conventions.md, rule 8). For a path under ``/p/{exp}/{sig}``
it checks the signature for the space the rest of the path names (services/links.py:
403 ``bad_signature``, 410 ``link_expired``), strips the prefix and hands the request on
as the plain read, with the prefix kept in the scope (``SIGNED``) for routes that answer
with links. A private space's reads (``p-`` ids) without a valid prefix get 403
``signed_link_needed`` here, before any route, store or live state is touched: a node
reached without an edge refuses them as the edge does.

Only the listener reads take a prefix: GET (and HEAD) of ``/media/{id}/…``,
``/v1/spaces/{id}``, ``/v1/spaces/{id}/state`` and ``/v1/spaces/{id}/recording.m4a``.
Anything else under ``/p/`` is 404. Calls with an account (join, invites, stage
actions, publish, the stage socket) keep their plain paths; the services check the
account's access there.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, cast

from starlette.types import ASGIApp, Receive, Scope, Send

from pnyx.api.errors import STATUS, error_body
from pnyx.api.openapi import ERROR_REF
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.facade import Services
from pnyx.services.links import SIGNED_PREFIX, is_private

SIGNED = "pnyx.signed"  # scope key: the "/p/{exp}/{sig}" a request came with

# The listener reads, by the space id they name (group 1).
_READ = re.compile(
    r"/media/([^/]+)/.+|/v1/spaces/([^/]+)(?:/state|/recording\.m4a|/transcript(?:\.vtt|\.txt)?)?"
)
_SIGNED = re.compile(r"/p/([^/]*)/([^/]*)(/.*)")
_READ_METHODS = frozenset({"GET", "HEAD"})


def read_space(path: str) -> str | None:
    """The space a listener read is about, or None if ``path`` is not one."""
    m = _READ.fullmatch(path)
    if m is None:
        return None
    return m.group(1) or m.group(2)


async def _refuse(send: Send, exc: PnyxError) -> None:
    body = json.dumps(error_body(exc.kind, exc.code, exc.message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": STATUS[exc.kind],
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"access-control-allow-origin", b"*"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _unsigned(space: str) -> PnyxError:
    return PnyxError(
        ErrorKind.FORBIDDEN,
        f"space {space} is private: its media and state are read only through signed"
        " links (/p/{expiry}/{signature}/…), which its invited listeners get from"
        " POST /v1/spaces/{id}/join or GET /v1/spaces/{id}/links",
        code="signed_link_needed",
    )


class SignedPaths:
    """Checks and strips ``/p/{exp}/{sig}``; refuses unsigned reads of private spaces.

    The scope is changed in place (path and raw_path), so the outer middlewares (metrics,
    admission) see the route the request ends at."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(SIGNED_PREFIX):
            if scope["method"] not in _READ_METHODS:
                await _refuse(
                    send,
                    PnyxError(
                        ErrorKind.FORBIDDEN,
                        "signed links are for reading (GET); send other calls to the plain"
                        " path with an account token",
                        code="read_only_link",
                    ),
                )
                return
            m = _SIGNED.fullmatch(path)
            rest = m.group(3) if m is not None else ""
            space = read_space(rest)
            if m is None or space is None:
                await _refuse(
                    send,
                    PnyxError(
                        ErrorKind.NOT_FOUND,
                        "signed links are /p/{expiry}/{signature}/ followed by a listener"
                        " read: /media/{id}/…, /v1/spaces/{id}, /v1/spaces/{id}/state",
                        code="not_a_signed_read",
                    ),
                )
                return
            services = cast(Services, scope["app"].state.services)
            try:
                services.links.verify(space, m.group(1), m.group(2))
            except PnyxError as exc:
                await _refuse(send, exc)
                return
            scope[SIGNED] = path[: len(path) - len(rest)]
            scope["path"] = rest
            scope["raw_path"] = rest.encode()
        elif scope["method"] in _READ_METHODS:
            space = read_space(path)
            if space is not None and is_private(space):
                await _refuse(send, _unsigned(space))
                return
        await self.app(scope, receive, send)


_SIGNED_PARAMS = [
    {
        "name": "exp",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
        "description": "the link's expiry, unix seconds",
    },
    {
        "name": "sig",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$"},
        "description": 'base64url (no padding) of MD5 of "{exp}{space_id} {link_secret}"',
    },
]
_ERROR_JSON: dict[str, Any] = {"application/json": {"schema": {"$ref": ERROR_REF}}}
_UNSIGNED = {
    "description": "A private space (`p-…` id) read without a signed link (`signed_link_needed`)",
    "content": _ERROR_JSON,
}
_SIGNED_ERRORS = {
    "403": {"description": "A wrong signature (`bad_signature`)", "content": _ERROR_JSON},
    "410": {"description": "The link has expired (`link_expired`)", "content": _ERROR_JSON},
}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the signed form of every listener read to an OpenAPI document (the middleware
    serves them; the routes are registered once), and the 403 its plain form answers for
    a private space."""
    paths: dict[str, Any] = schema["paths"]
    for path, item in list(paths.items()):
        if read_space(path) is None or "get" not in item:
            continue
        plain = item["get"]
        plain.setdefault("responses", {}).setdefault("403", _UNSIGNED)
        signed = copy.deepcopy(plain)
        signed["operationId"] = f"{plain.get('operationId', path)}_signed"
        signed["summary"] = f"{plain.get('summary', path)} (signed link)"
        signed["description"] = (
            "The same read through a signed link, as a private space's listeners make it:"
            " the signature is checked and the prefix stripped.\n\n" + plain.get("description", "")
        )
        signed["parameters"] = _SIGNED_PARAMS + signed.get("parameters", [])
        signed["responses"].update(_SIGNED_ERRORS)
        paths[f"/p/{{exp}}/{{sig}}{path}"] = {"get": signed}
    return schema
