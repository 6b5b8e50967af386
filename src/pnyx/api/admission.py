"""Admission control at the edge of the process: a pure ASGI middleware that classifies
each request by method and path (before routing, from the one table in
services.admission), and refuses what the policy refuses at once — 503, ``Retry-After``
and a jitter hint — without touching the body, the store or the live state.

The policy is the node's (``Services.admission``); until the node is up, everything
passes.
"""

from __future__ import annotations

import json
import re
from typing import cast

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from pnyx.api.errors import JITTER_HEADER, error_body
from pnyx.api.headers import NOSNIFF
from pnyx.errors import ErrorKind
from pnyx.services import metrics
from pnyx.services.admission import (
    DEFAULT_WRITE_LANE,
    READ_METHODS,
    ROUTES,
    Lane,
    Refusal,
)
from pnyx.services.facade import Services

REFUSED = Counter("pnyx_admission_refused_total", "Requests refused by admission control", ["lane"])
INFLIGHT = Gauge("pnyx_admission_inflight", "Admission-controlled requests in flight", ["lane"])


def _matcher(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "/?")


_TABLE: dict[str, list[tuple[re.Pattern[str], Lane | None]]] = {}
for _method, _template, _lane in ROUTES:
    _TABLE.setdefault(_method, []).append((_matcher(_template), _lane))


def classify(method: str, path: str) -> Lane | None:
    """The lane of a request, or ``None`` when it is not admission-controlled."""
    for pattern, lane in _TABLE.get(method, ()):
        if pattern.fullmatch(path):
            return lane
    return None if method in READ_METHODS else DEFAULT_WRITE_LANE


def _refusal_body(refusal: Refusal) -> bytes:
    message = (
        f"the server is busy ({refusal.lane.value} requests are being shed); retry after "
        f"{refusal.retry_after_s} s plus up to {refusal.jitter:.0%} at random"
    )
    return json.dumps(error_body(ErrorKind.UNAVAILABLE, "overloaded", message)).encode()


class AdmissionControl:
    """Refuses work the node's admission policy refuses; counts what is in flight.

    The stage WebSocket is classified too (stage lane) but is long-lived, so it is
    never held as in-flight work: it passes straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lane = classify(scope["method"], scope["path"])
        state = getattr(scope.get("app"), "state", None)
        services = cast(Services | None, getattr(state, "services", None))
        if lane is None or services is None:
            await self.app(scope, receive, send)
            return
        decision = services.admission.try_enter(lane, services.clock())
        if isinstance(decision, Refusal):
            REFUSED.labels(lane.value).inc()
            # Outside the metrics middleware (a refusal costs the least there): counted
            # here as it would count it, the router never having run.
            metrics.HTTP_REQUESTS.labels(scope["method"], "unmatched", "503").inc()
            await refuse(send, decision)
            return
        gauge = INFLIGHT.labels(lane.value)
        gauge.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            gauge.dec()
            services.admission.leave(decision)


async def refuse(send: Send, refusal: Refusal) -> None:
    """The 503 of a refused request (also the heartbeat's lean path's, api/heartbeat.py)."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"cache-control", b"no-store"),
                (b"retry-after", str(refusal.retry_after_s).encode()),
                (JITTER_HEADER.encode(), f"{refusal.jitter:g}".encode()),
                NOSNIFF,  # outside api/headers.py's middleware: its header, added here
            ],
        }
    )
    await send({"type": "http.response.body", "body": _refusal_body(refusal)})
