"""The ASGI application: routers, error mapping, middlewares, the node's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

import pnyx
from pnyx.api import accounts, errors, listeners, members, ops, spaces, stage_ws
from pnyx.api.middleware import BodyLimit, Metrics
from pnyx.config import Settings
from pnyx.services.node import Node

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = await Node.open(settings)
        app.state.node = node
        try:
            yield
        finally:
            await node.close()

    app = FastAPI(
        title="Pnyx",
        version=pnyx.__version__,
        summary="Live-audio spaces: speakers over WebRTC, listeners over cacheable HTTP.",
        lifespan=lifespan,
    )
    errors.install(app)
    for router in (
        accounts.router,
        spaces.router,
        members.router,
        listeners.router,
        stage_ws.router,
        ops.router,
    ):
        app.include_router(router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, sdp_limit=settings.max_sdp_bytes)
    app.add_middleware(Metrics)
    if settings.serve_web and (WEB_DIR / "index.html").exists():

        @app.get("/", include_in_schema=False)
        async def index() -> Response:
            return FileResponse(WEB_DIR / "index.html")

        app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
    return app
