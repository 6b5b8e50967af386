"""The ASGI application: routers, error mapping, middlewares, the node's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

import pnyx
from pnyx.api import (
    accounts,
    audience,
    clips,
    discovery,
    docs,
    errors,
    listeners,
    media,
    members,
    notifications,
    openapi,
    ops,
    pages,
    publish,
    spaces,
    stage_ws,
    transcripts,
    webhooks,
)
from pnyx.api.admission import AdmissionControl
from pnyx.api.headers import SecurityHeaders
from pnyx.api.heartbeat import HeartbeatPath
from pnyx.api.middleware import BodyLimit, Metrics
from pnyx.api.signed import SignedPaths, document
from pnyx.config import Settings
from pnyx.services.node import Node

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

ROUTERS = (
    accounts.router,
    spaces.router,
    members.router,
    notifications.router,
    webhooks.router,
    listeners.router,
    audience.router,
    stage_ws.router,
    publish.router,
    media.router,
    clips.router,
    transcripts.router,
    discovery.router,
    ops.router,
)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = await Node.open(settings)
        app.state.services = node.services  # all that route handlers get (api/deps.py)
        app.state.node = node  # for tests and debugging, never for the API
        try:
            yield
        finally:
            await node.close()

    app = FastAPI(
        title="Pnyx",
        version=pnyx.__version__,
        summary="Live-audio spaces: speakers over WebRTC, listeners over cacheable HTTP.",
        lifespan=lifespan,
        # Swagger UI from our own files (api/docs.py), never FastAPI's CDN pages.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    errors.install(app)
    for router in ROUTERS:
        app.include_router(openapi.document_errors(router))
    openapi.install(
        app, min_password_len=settings.min_password_len, max_title_len=settings.max_title_len
    )
    app.add_middleware(SignedPaths)  # innermost: the others see the plain path it leaves
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, sdp_limit=settings.max_sdp_bytes)
    app.add_middleware(Metrics)
    app.add_middleware(SecurityHeaders)  # every answer (admission's refusals add its header)
    # Outside the others: a refusal in a join storm costs as little as it can.
    app.add_middleware(AdmissionControl)
    if settings.listener_lean_paths:
        # Outermost: plain heartbeats and anonymous joins answered before the framework
        # (api/heartbeat.py).
        app.add_middleware(HeartbeatPath)
    if settings.serve_docs:
        docs.install(app)
    if settings.serve_web and (WEB_DIR / "index.html").exists():
        _serve_web(app)
    _document_signed_paths(app)
    return app


def _document_signed_paths(app: FastAPI) -> None:
    """/openapi.json lists the signed form of the listener reads (api/signed.py)."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(make())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class _WebFiles(StaticFiles):
    """The client's modules and styles: revalidated on every use (cheap 304s), so an
    upgraded server never runs with yesterday's JavaScript."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _serve_web(app: FastAPI) -> None:
    """The browser client: one page for every client route (the share link of a space
    is /s/{id}, a profile /u/{handle}, a replay /replay/{id}); modules, styles and the
    vendored hls.js (placed in web/vendor/ by `make install`) under /web."""
    index_html = WEB_DIR / "index.html"

    async def index() -> Response:
        return FileResponse(index_html, headers={"Cache-Control": "no-cache"})

    async def favicon() -> Response:  # browsers ask for it on pages that name none
        return FileResponse(WEB_DIR / "icon.svg", media_type="image/svg+xml")

    for path in ("/", "/signin", "/new", "/settings", "/replay/{space_id}"):
        app.add_api_route(path, index, methods=["GET", "HEAD"], include_in_schema=False)
    pages.install(app, index_html)  # /s/{id}, /u/{handle}, /c/{id}: with link previews
    app.add_api_route("/favicon.ico", favicon, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount("/web", _WebFiles(directory=WEB_DIR), name="web")
