"""Publishing through any node: the publish exchange is relayed to the stage node.

A speaker may ``POST`` an SDP offer (or ``DELETE`` a session) on any node, directly or
through an edge that picks a node at random. The node that runs the space's media (the
holder of its stage lease, ``keys.lease_name``) handles it; any other node forwards the
request there with its one :class:`httpx.AsyncClient` and answers with what the stage
node said, as if it were its own: status, body, and the headers that matter, the
``Location`` rewritten to this node's own path. The browser never leaves its origin (no
CORS, no redirect) and a WHIP client keeps one URL.

Never a dead node: the relay goes only to the current lease holder, at the URL it
advertises in the live state (``keys.node_url_key``). When there is none, or the holder
does not take the connection (it just died: refused, or a connect timeout), the relay
waits up to ``lease_ttl_s + lease_renew_s`` for the next holder (the lease lapses and a
stage node takes it; on a ``stage``/``both`` node that may be this one, which then
handles it itself) and tries once more; else ``503`` with ``Retry-After``. At most
:data:`MAX_RELAYS` forwards per request, each bounded by ``relay_connect_timeout_s`` /
``relay_timeout_s``. A relayed request carries :data:`RELAYED` and is never relayed
again: its receiver handles it or answers ``503``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import httpx

from pnyx.config import Settings
from pnyx.domain.types import Handle, SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.media import MediaService, Placement, Published

log = logging.getLogger(__name__)

RELAYED = "Pnyx-Relayed"  # request header: "1" on a request one node relays to another
MAX_RELAYS = 2  # forwards per request: the holder, then (if it died) the next one
RETRY_AFTER_S = 1.0  # what a 503 "the stage is moving" asks the client to wait
PASSED = ("content-type", "location", "link", "etag", "retry-after", "cache-control")
PASSED_ERROR = ("pnyx-retry-jitter",)
_SESSION = re.compile(r"[A-Za-z0-9_-]{1,128}")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Relayed:
    """The stage node's answer, for the client as this node's own."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]  # in order; a name may repeat (Link)


def publish_path(space: SpaceId) -> str:
    return f"/v1/spaces/{space}/publish"


def session_path(space: SpaceId, session: str) -> str:
    return f"{publish_path(space)}/{session}"


class PublishRelay:
    """Publish and unpublish on any node: here when this node runs the space's media,
    else relayed to the node that does. Owns the node's HTTP client (:meth:`close`)."""

    def __init__(
        self,
        settings: Settings,
        media: MediaService,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._media = media
        self._wait_s = settings.lease_ttl_s + settings.lease_renew_s
        self._poll_s = settings.lease_renew_s / 2
        self._monotonic = monotonic
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.relay_timeout_s, connect=settings.relay_connect_timeout_s
            ),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=8),
            follow_redirects=False,
            trust_env=False,  # node to node: never through a proxy from the environment
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def publish(
        self, space: SpaceId, handle: Handle, offer: str, *, authorization: str, relayed: bool
    ) -> Published | Relayed:
        """Publish ``offer`` for ``handle``: the session here, or the stage node's answer.
        PnyxError as :meth:`MediaService.check` and :meth:`MediaService.publish`, and
        UNAVAILABLE ``stage_moving`` (retry) when no live stage node answers in time."""
        await self._media.check(space, handle)
        headers = {"Content-Type": "application/sdp", "Authorization": authorization}
        return await self._route(
            space,
            take=True,
            relayed=relayed,
            here=lambda: self._media.publish(space, handle, offer),
            forward=lambda url: self._forward(
                "POST", url + publish_path(space), space, offer.encode(), headers
            ),
        )

    async def unpublish(
        self, space: SpaceId, handle: Handle, session: str, *, authorization: str, relayed: bool
    ) -> Relayed | None:
        """End ``handle``'s session: None when done here, else the stage node's answer.
        PnyxError NOT_FOUND when nobody runs the space (its sessions are gone)."""

        async def here() -> None:
            await self._media.unpublish(space, handle, session)

        return await self._route(
            space,
            take=False,
            relayed=relayed,
            here=here,
            forward=lambda url: self._forward(
                "DELETE",
                url + session_path(space, session),
                space,
                None,
                {"Authorization": authorization},
            ),
        )

    async def _route(
        self,
        space: SpaceId,
        *,
        take: bool,
        relayed: bool,
        here: Callable[[], Awaitable[T]],
        forward: Callable[[str], Awaitable[Relayed]],
    ) -> T | Relayed:
        deadline: float | None = None  # set when we start waiting for a (new) holder
        dead: set[str] = set()  # holders that did not take the connection
        relays = 0
        while True:
            where = await self._media.place(space, take=take)
            if where.here:
                return await here()
            if relayed and where.holder is not None:
                _moving("the stage is moving to another node")  # never relayed twice
            if where.holder is None and not take:
                raise PnyxError(
                    ErrorKind.NOT_FOUND,
                    "no node runs this space's media: its publish sessions are gone",
                    code="no_session",
                )
            if _reachable(where) and where.holder not in dead:
                assert where.url is not None and where.holder is not None
                try:
                    answer = await forward(where.url.rstrip("/"))
                except httpx.TransportError as exc:
                    relays += 1
                    dead.add(where.holder)
                    log.warning(
                        "space %s: stage node %s did not answer a relayed publish (%s)",
                        space,
                        where.holder,
                        type(exc).__name__,
                    )
                    if relays >= MAX_RELAYS:
                        _moving("the stage node did not answer")
                    deadline = None  # wait afresh for the next holder
                else:
                    log.debug("space %s: publish relayed to %s", space, where.holder)
                    return answer
            now = self._monotonic()
            if deadline is None:
                deadline = now + self._wait_s
            if now >= deadline or relayed:
                _moving(
                    "no stage node runs this space yet"
                    if where.holder is None
                    else "the stage is moving to another node"
                )
            await asyncio.sleep(min(self._poll_s, deadline - now))

    async def _forward(
        self,
        method: str,
        url: str,
        space: SpaceId,
        body: bytes | None,
        headers: dict[str, str],
    ) -> Relayed:
        r = await self._http.request(method, url, content=body, headers=headers | {RELAYED: "1"})
        passed = PASSED if r.status_code < 400 else PASSED + PASSED_ERROR
        out: list[tuple[str, str]] = []
        for name in passed:
            for value in r.headers.get_list(name):
                if name == "location":
                    value = _own_location(space, value)
                out.append((name, value))
        return Relayed(r.status_code, r.content, tuple(out))


def _reachable(where: Placement) -> bool:
    return where.holder is not None and where.url is not None


def _own_location(space: SpaceId, location: str) -> str:
    """The stage node's session URL as this node's path (any node serves it)."""
    session = location.rstrip("/").rsplit("/", 1)[-1]
    if not _SESSION.fullmatch(session):
        raise PnyxError(
            ErrorKind.UNAVAILABLE,
            "the stage node answered with an unusable session URL; retry",
            code="stage_moving",
            retry_after=RETRY_AFTER_S,
        )
    return session_path(space, session)


def _moving(why: str) -> NoReturn:
    raise PnyxError(
        ErrorKind.UNAVAILABLE,
        f"{why}: the space's stage is moving between nodes; retry in a second",
        code="stage_moving",
        retry_after=RETRY_AFTER_S,
    )
