"""The listener's lean paths: ``POST /v1/spaces/{id}/heartbeat`` and an anonymous
``POST /v1/spaces/{id}/join`` answered before the framework.

A big audience's heartbeats are most of an origin's requests, and through FastAPI (the
middlewares, routing, dependency injection, a pydantic model) one cost about 0.5 ms of
CPU, of which the work itself (a token check, a cached snapshot, a set insert) is a small
part; a join storm's joins likewise. This pure ASGI app sits outermost and answers the
plain cases itself: the same service calls as ``api/listeners.py`` ``heartbeat``
(``Sessions.listener``, ``ListenerService.heartbeat``) and ``join`` (``ListenerService.join``
with no account), the same admission lanes, the same metrics, the same bodies and headers,
and the same error answers (``api/errors.py`` ``error_response``, admission's 503).
A join's ``client`` (the id the client keeps, for counting people) is read from the query
here as the route reads it. Anything else — another route, a body, a heartbeat without a
bearer token, a join with any ``Authorization`` (signed in) or a ``client`` the route
would refuse, a malformed id, a node not up yet — goes on to the
application untouched, whose routes stay the documented reference (``/openapi.json`` is
unchanged: these paths answer exactly what it declares).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, cast
from urllib.parse import parse_qs

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pnyx.api.admission import INFLIGHT, REFUSED, refuse
from pnyx.api.errors import error_response
from pnyx.api.headers import NOSNIFF as _NOSNIFF  # as it adds to every answer
from pnyx.api.listeners import join_out
from pnyx.domain.types import SPACE_ID_MAX_LEN, SpaceId
from pnyx.errors import PnyxError
from pnyx.services import metrics
from pnyx.services.admission import Lane, Refusal, Ticket
from pnyx.services.facade import Services
from pnyx.services.listeners import CLIENT_ID

ROUTE = "/v1/spaces/{space_id}/heartbeat"  # the route template the metrics are labelled by
JOIN_ROUTE = "/v1/spaces/{space_id}/join"
_PATH = re.compile(rf"/v1/spaces/([^/]{{1,{SPACE_ID_MAX_LEN}}})/(heartbeat|join)")
_BEARER = re.compile(rb"[Bb][Ee][Aa][Rr][Ee][Rr] ([^ ]+)")  # as HTTPBearer splits it
_JSON = (b"content-type", b"application/json")
_LATENCY = metrics.HTTP_LATENCY.labels(ROUTE)
_OK = metrics.HTTP_REQUESTS.labels("POST", ROUTE, "200")
_REFUSED = metrics.HTTP_REQUESTS.labels("POST", "unmatched", "503")
_INFLIGHT = INFLIGHT.labels(Lane.HEARTBEAT.value)
_NO_STORE = {"Cache-Control": "no-store"}  # as the join route says


def _client(scope: Scope) -> tuple[bool, str | None]:
    """(answerable here, the join's ``client``): not answerable when ``client`` is there
    but not one valid value (the route then says what is wrong)."""
    query = scope.get("query_string", b"")
    if b"client" not in query:
        return True, None
    values = parse_qs(query.decode("latin-1"), keep_blank_values=True).get("client")
    if values is None:
        return True, None
    if len(values) != 1 or CLIENT_ID.fullmatch(values[0]) is None:
        return False, None
    return True, values[0]


def _plain(scope: Scope) -> tuple[str, str, str | None] | None:
    """(route, space id, token) when this is a request a lean path answers, else None."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    m = _PATH.fullmatch(scope["path"])
    if m is None:
        return None
    token = None
    for key, value in scope["headers"]:
        if key == b"authorization":
            b = _BEARER.fullmatch(value)
            if b is None or token is not None:
                return None
            token = b.group(1)
        elif key == b"transfer-encoding" or (key == b"content-length" and value != b"0"):
            return None  # a body: the application's limits and parsing apply
    if m.group(2) == "join":
        return (
            None if token is not None or not _client(scope)[0] else (JOIN_ROUTE, m.group(1), None)
        )
    if token is None:
        return None
    return ROUTE, m.group(1), token.decode("latin-1")


class HeartbeatPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plain = _plain(scope)
        state = getattr(scope.get("app"), "state", None)
        services = cast(Services | None, getattr(state, "services", None))
        if plain is None or services is None:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        route, space, token = plain
        if token is None:
            status = await self._join(services, SpaceId(space), scope, receive, send)
        else:
            status = await self._answer(services, SpaceId(space), token, scope, receive, send)
        if status is None:
            _REFUSED.inc()
            return
        if route == ROUTE and status == 200:
            _OK.inc()
            _LATENCY.observe(time.perf_counter() - start)
            return
        metrics.HTTP_REQUESTS.labels("POST", route, str(status)).inc()
        metrics.HTTP_LATENCY.labels(route).observe(time.perf_counter() - start)

    async def _join(
        self, services: Services, space: SpaceId, scope: Scope, receive: Receive, send: Send
    ) -> int | None:
        gauge = INFLIGHT.labels(Lane.JOIN.value)
        decision = await _enter(services, Lane.JOIN, gauge, send)
        if decision is None:
            return None  # counted as admission control counts it, the router never run
        try:
            try:
                joined = await services.listeners.join(space, None, _client(scope)[1])
            except PnyxError as exc:
                answer: Response = error_response(exc)
            else:
                out = join_out(joined)
                answer = JSONResponse(out.model_dump(mode="json"), headers=_NO_STORE)
            answer.raw_headers.append(_NOSNIFF)
            await answer(scope, receive, send)
            return answer.status_code
        finally:
            gauge.dec()
            services.admission.leave(decision)

    async def _answer(
        self,
        services: Services,
        space: SpaceId,
        token: str,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> int | None:
        decision = await _enter(services, Lane.HEARTBEAT, _INFLIGHT, send)
        if decision is None:
            return None  # counted as admission control counts it, the router never run
        try:
            try:
                claims = await services.sessions.listener(token, space)
                heartbeat_s = await services.listeners.heartbeat(claims)
            except PnyxError as exc:
                answer = error_response(exc)
                answer.raw_headers.append(_NOSNIFF)
                await answer(scope, receive, send)
                return answer.status_code
        finally:
            _INFLIGHT.dec()
            services.admission.leave(decision)
        body = _body(heartbeat_s)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), _JSON, _NOSNIFF],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return 200


_BODIES: dict[float, bytes] = {}  # the interval's few values (base, raised, shedding)


def _body(heartbeat_s: float) -> bytes:
    """``HeartbeatOut`` as FastAPI serialises it (compact JSON)."""
    body = _BODIES.get(heartbeat_s)
    if body is None:
        if len(_BODIES) > 16:
            _BODIES.clear()
        body = json.dumps({"heartbeat_s": heartbeat_s}, separators=(",", ":")).encode()
        _BODIES[heartbeat_s] = body
    return body


async def _enter(services: Services, lane: Lane, gauge: Any, send: Send) -> Ticket | None:
    """Admission for a lean path, as the middleware does it: the decision to ``leave``
    with (and ``gauge`` raised), or None once a refusal has been sent."""
    decision = services.admission.try_enter(lane, services.clock())
    if isinstance(decision, Refusal):
        REFUSED.labels(lane.value).inc()
        await refuse(send, decision)
        return None
    gauge.inc()
    return decision
