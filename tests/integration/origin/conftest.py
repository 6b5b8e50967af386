"""Fixtures for the origin: a real Origin over each live state, and the real app (its
lifespan run, then reached in-process or over a real loopback HTTP server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from pnyx.api.app import create_app
from pnyx.config import NodeRole, Settings
from pnyx.live.base import LiveState
from pnyx.live.memory import MemoryLiveState
from pnyx.live.redis import RedisLiveState
from pnyx.services.node import Node
from pnyx.services.origin import Origin
from tests.support.procs import free_port

BLOCK_S = 1.0  # hls_block_s in these tests: long enough to see a wait, short to time out


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    # role=api: no ticker, so no stage media of its own; the tests feed the origin.
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "role": NodeRole.API,
        "hls_block_s": BLOCK_S,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """The live state: None (memory) or a Redis URL on the session's real server."""
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_clean_url")
    return url


@pytest.fixture
async def live(backend: str | None) -> AsyncIterator[LiveState]:
    state: LiveState = MemoryLiveState() if backend is None else RedisLiveState(backend)
    try:
        yield state
    finally:
        await state.close()


@pytest.fixture
def origin(tmp_path: Path, live: LiveState) -> Origin:
    return Origin(make_settings(tmp_path), live)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[FastAPI]:
    """The real app with its lifespan run (the node open)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def node_of(app: FastAPI) -> Node:
    node: Node = app.state.node
    return node


AppFactory = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]


@pytest.fixture
def app_client(tmp_path: Path) -> AppFactory:
    """``async with app_client(**settings) as (app, client)``: in-process HTTP."""

    @asynccontextmanager
    async def open_(**overrides: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        async with running(make_settings(tmp_path, **overrides)) as app:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pnyx") as c:
                yield app, c

    return open_


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve an app whose lifespan already ran on a real loopback port; yields its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped it
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
