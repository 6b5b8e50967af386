"""Pure ASGI middlewares: a request-body size limit, and request metrics."""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pnyx.api.errors import error_body
from pnyx.errors import ErrorKind
from pnyx.services import metrics


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(
        error_body(ErrorKind.TOO_LARGE, "body_too_large", f"the request body is over {limit} bytes")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuses bodies over ``limit`` bytes (``sdp_limit`` for SDP offers) with a 413,
    whether or not the client declared a Content-Length."""

    def __init__(self, app: ASGIApp, limit: int, sdp_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.sdp_limit = sdp_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        ctype = headers.get(b"content-type", b"")
        limit = self.sdp_limit if ctype.startswith(b"application/sdp") else self.limit
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        # Read the whole (bounded) body up front, refusing as soon as it passes the limit;
        # then replay it to the app. Bodies here are small JSON or SDP documents.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await _refuse(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Metrics:
    """Counts requests by route template (never by raw path: ids would explode labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def _route(scope: Scope) -> str:
        # The router records the matched route in the (shared) scope.
        return str(getattr(scope.get("route"), "path", "unmatched"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = self._route(scope)
            metrics.HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
            if not route.endswith("/state"):
                metrics.HTTP_LATENCY.labels(route).observe(time.perf_counter() - start)
