"""The live-state contract runs against every implementation (docs/conventions.md, rule 6).

``live`` is one fresh live state per test: the in-process memory one, a Redis one on the
real server the session started, and a Redis one reaching the session's Sentinel-watched
primary through a ``redis+sentinel://`` URL (each emptied first). ``live_pair`` is two
handles on the *same* live state as two nodes see it: two RedisLiveState instances on one
server, or the one memory instance twice (one process is its own only node).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pnyx.live.base import LiveState
from pnyx.live.memory import MemoryLiveState
from pnyx.live.redis import RedisLiveState

BUCKET_S = 5.0  # presence bucket width used throughout the suite
QUEUE = 8  # subscriber queue depth (small, so overflow is cheap to provoke)


def _open(kind: str, request: pytest.FixtureRequest) -> LiveState:
    if kind == "memory":
        return MemoryLiveState(presence_bucket_s=BUCKET_S, subscriber_queue=QUEUE)
    fixture = "redis_sentinel_clean_url" if kind == "sentinel" else "redis_clean_url"
    url: str = request.getfixturevalue(fixture)
    return RedisLiveState(url, presence_bucket_s=BUCKET_S, subscriber_queue=QUEUE)


BACKENDS = ["memory", "redis", "sentinel"]


@pytest.fixture(params=BACKENDS)
async def live(request: pytest.FixtureRequest) -> AsyncIterator[LiveState]:
    state = _open(request.param, request)
    try:
        yield state
    finally:
        await state.close()


@pytest.fixture(params=BACKENDS)
async def live_pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[LiveState, LiveState]]:
    first = _open(request.param, request)
    second = first if request.param == "memory" else _open(request.param, request)
    try:
        yield first, second
    finally:
        await first.close()
        if second is not first:
            await second.close()
