"""The setting ``ws_queue_depth`` bounds what a node's subscriptions to stage events buffer:
a subscriber that does not read keeps the newest ``ws_queue_depth`` events, on memory and on
Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pnyx.api.app import create_app
from pnyx.config import NodeRole, Settings
from pnyx.services.node import Node
from tests.support.poll import Seen, eventually

DEPTH = 5


@pytest.fixture(params=["memory", "redis"])
def redis_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_clean_url")
    return url


async def test_a_slow_subscriber_keeps_the_newest_ws_queue_depth_events(
    tmp_path: Path, redis_url: str | None
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", role=NodeRole.API, redis=redis_url, ws_queue_depth=DEPTH
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        node: Node = app.state.node
        total = DEPTH + 7
        async with node.live.subscribe("stage:s1") as messages:
            for i in range(total):
                await node.live.publish("stage:s1", str(i).encode())

            async def dropped() -> Seen:
                n = getattr(messages, "dropped", 0)
                return Seen(n == total - DEPTH, f"{n} dropped")

            await eventually(dropped, 3.0, f"{total - DEPTH} events dropped")
            it = aiter(messages)
            got = [int(await asyncio.wait_for(anext(it), 3.0)) for _ in range(DEPTH)]
            assert got == list(range(total - DEPTH, total))
