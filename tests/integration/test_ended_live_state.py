"""An ended space's live state does not stay for good: a stage node (its ticker and media
running, on Redis and on the memory live state) lets everything the space left go
``ended_live_retention_s`` after it ended, while the state endpoint keeps answering
"ended", and a page polling it afterwards does not make a key that stays for good.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from pnyx.api.app import create_app
from pnyx.config import NodeRole, Settings
from pnyx.domain import commands as cmd
from pnyx.domain.types import Handle, SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.keys import analytics_key, hls_key
from pnyx.services.node import Node
from pnyx.services.spaces import NewSpace
from pnyx.services.views import ROOM
from tests.support.poll import Seen, eventually

HOST = Handle("host")
RETENTION_S = 1.5
SOON_S = 10.0  # a ticker's pass, media starting or stopping (generous on a busy machine)


@dataclass
class Stage:
    node: Node
    client: httpx.AsyncClient
    raw: aioredis.Redis | None  # the Redis the node uses (None: the memory live state)

    async def state(self, space: SpaceId) -> dict[str, object]:
        answer = await self.client.get(f"/v1/spaces/{space}/state")
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body

    async def keys(self, space: SpaceId) -> dict[str, int]:
        """Every Redis key naming the space, with its TTL in ms (-1: none)."""
        assert self.raw is not None
        found = [k async for k in self.raw.scan_iter(match=f"*{space}*", count=1000)]
        return {k.decode(): await self.raw.pttl(k) for k in found}


@asynccontextmanager
async def _stage(
    tmp_path: Path, url: str | None, retention_s: float = RETENTION_S
) -> AsyncIterator[Stage]:
    """A node running stage and API (ticker, media) in process, on Redis at ``url`` or
    on its own memory live state."""
    settings = Settings(
        data_dir=tmp_path / "data",
        role=NodeRole.BOTH,
        redis=url,
        ended_live_retention_s=retention_s,
        state_tick_s=0.1,
        lease_ttl_s=0.5,
        lease_renew_s=0.1,
        stage_presence_ttl_s=600.0,  # the host is never judged away: the test ends it
        analytics_flush_s=0.5,
    )
    app = create_app(settings)
    raw = None if url is None else aioredis.Redis.from_url(url)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pnyx") as client:
                yield Stage(app.state.node, client, raw)
    finally:
        if raw is not None:
            await raw.aclose()


@pytest.fixture
async def on_redis(tmp_path: Path, redis_clean_url: str) -> AsyncIterator[Stage]:
    async with _stage(tmp_path, redis_clean_url) as stage:
        yield stage


@pytest.fixture
async def in_memory(tmp_path: Path) -> AsyncIterator[Stage]:
    async with _stage(tmp_path, None) as stage:
        yield stage


async def _running(stage: Stage) -> SpaceId:
    """A live space whose media runs on the node, with listeners and reactions."""
    node = stage.node
    await node.store.accounts.create(HOST, "host", "x", datetime.now(UTC))
    space = (await node.spaces.create(HOST, NewSpace("it ends"))).id

    async def media_runs() -> bool:
        return node.ticker.holds(space) and await node.live.get_snapshot(hls_key(space)) is not None

    await eventually(media_runs, SOON_S, "the node to take the space and run its media")
    now = time.time()
    await node.live.presence_add_many(space, ["l1", "l2"], now, people=["@ann", "~c1"])
    await node.live.audience_add(space, "l1 ann", now, cap=100)
    await node.live.react(space, "👏", now)
    return space


async def _playlist_ended(stage: Stage, space: SpaceId) -> bool:
    snap = await stage.node.live.get_snapshot(hls_key(space))
    return snap is not None and bool(snap.parts["playlist"].get("ended"))


def _all_expiring(stage: Stage, space: SpaceId, within_s: float) -> Callable[[], Awaitable[Seen]]:
    """Every Redis key of the ended space due within ``within_s``, its lease gone and its
    playlist ended."""

    async def check() -> Seen:
        keys = await stage.keys(space)
        forever = sorted(k for k, ttl in keys.items() if ttl == -1)
        late = sorted(k for k, ttl in keys.items() if ttl > within_s * 1000)
        lease = [k for k in keys if k.startswith("pnyx:lease:")]
        return Seen(
            not forever and not late and not lease and await _playlist_ended(stage, space),
            f"no TTL: {forever}; later than the retention: {late}; lease: {lease}",
        )

    return check


async def test_an_ended_spaces_redis_keys_all_expire(on_redis: Stage) -> None:
    stage = on_redis
    space = await _running(stage)
    assert (await stage.state(space))["state"] == "live"
    assert any(ttl == -1 for ttl in (await stage.keys(space)).values())  # snapshots, fence
    await stage.node.spaces.execute(space, cmd.EndSpace(HOST))
    await eventually(
        _all_expiring(stage, space, RETENTION_S), SOON_S, "every key of the ended space to expire"
    )
    keys = await stage.keys(space)
    assert f"pnyx:snap:{space}" in keys and f"pnyx:snap:hls:{space}" in keys
    assert f"pnyx:fence:tick:{space}" in keys
    assert (await stage.state(space))["state"] == "ended"  # meanwhile, pages learn it

    async def none_left() -> Seen:
        keys = await stage.keys(space)
        return Seen(not keys, f"left: {keys}")

    await eventually(none_left, RETENTION_S + SOON_S, "no key of the space to be left")
    # A page still polling: answered from the store, and the room republished for a
    # retention again, not for good.
    for _ in range(3):
        state = await stage.state(space)
        assert state["state"] == "ended" and state["end_reason"] is not None
    keys = await stage.keys(space)
    assert list(keys) == [f"pnyx:snap:{space}"], keys
    assert 0 < keys[f"pnyx:snap:{space}"] <= RETENTION_S * 1000
    await eventually(none_left, RETENTION_S + SOON_S, "the republished room to expire too")


async def test_at_the_default_retention_ending_looks_for_no_key(
    tmp_path: Path, redis_clean_url: str
) -> None:
    """Longer than any media blob's or bucket's own life (the default is 10 minutes):
    the end command names what it expires and makes no pass over the keyspace (a SCAN,
    seconds at a million keys), yet no key of the space is left to outlive it."""
    long_s = 700.0  # above the fixture's stage presence TTL (600 s)
    async with _stage(tmp_path, redis_clean_url, retention_s=long_s) as stage:
        assert stage.raw is not None
        space = await _running(stage)
        scans = await _scans(stage.raw)
        await stage.node.spaces.execute(space, cmd.EndSpace(HOST))
        assert await _scans(stage.raw) == scans
        await eventually(
            _all_expiring(stage, space, long_s), SOON_S, "every key of the ended space to expire"
        )
        keys = await stage.keys(space)
        assert f"pnyx:blob:{space}/init.mp4" in keys  # a day's TTL, cut to the retention
        assert f"pnyx:fence:tick:{space}" in keys


async def _scans(raw: aioredis.Redis) -> int:
    stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_scan", {}).get("calls", 0))


async def test_an_ended_spaces_memory_live_state_is_let_go(in_memory: Stage) -> None:
    stage = in_memory
    space = await _running(stage)
    live = stage.node.live
    await stage.node.spaces.execute(space, cmd.EndSpace(HOST))
    await eventually(lambda: _playlist_ended(stage, space), SOON_S, "the playlist's ENDLIST")
    assert (await stage.state(space))["state"] == "ended"

    async def let_go() -> Seen:
        held = {
            "room": await live.get_snapshot(space) is not None,
            "playlist": await live.get_snapshot(hls_key(space)) is not None,
            "unique": await live.presence_unique(space) > 0,
            "people": await live.presence_people(space) > 0,
            "audience": await live.audience_page(space, None, 10) != [],
            "reactions": await live.reactions(space, time.time(), 60) != {},
        }
        left = sorted(name for name, there in held.items() if there)
        return Seen(not left, f"still held: {left}")

    await eventually(let_go, RETENTION_S + SOON_S, "the ended space's live state to go")
    state = await stage.state(space)  # republished from the store
    assert state["state"] == "ended"
    snap = await live.get_snapshot(space)
    assert snap is not None and snap.parts[ROOM]["status"] == "ended"

    async def room_gone() -> bool:
        return await live.get_snapshot(space) is None

    await eventually(room_gone, RETENTION_S + SOON_S, "the republished room to expire too")


async def test_a_cancelled_scheduled_space_no_node_ever_held_expires(on_redis: Stage) -> None:
    stage = on_redis
    node = stage.node
    await node.store.accounts.create(HOST, "host", "x", datetime.now(UTC))
    later = datetime.now(UTC) + timedelta(days=1)
    space = (await node.spaces.create(HOST, NewSpace("never", scheduled_start=later))).id
    await stage.state(space)  # published, for good while it may still start
    assert (await stage.keys(space))[f"pnyx:snap:{space}"] == -1
    await node.spaces.cancel(space, HOST, "")
    assert not node.ticker.holds(space)
    keys = await stage.keys(space)
    assert list(keys) == [f"pnyx:snap:{space}"], keys
    assert 0 < keys[f"pnyx:snap:{space}"] <= RETENTION_S * 1000
    assert (await stage.state(space))["state"] == "cancelled"


class SavesFail:
    """The store's analytics table, away for writes of figures (as in an outage)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def save(self, space: SpaceId, doc: object) -> None:
        raise PnyxError(ErrorKind.UNAVAILABLE, "the store is away (test)")


async def test_figures_the_store_could_not_take_stay_a_week(on_redis: Stage) -> None:
    stage = on_redis
    node = stage.node
    space = await _running(stage)
    figures = f"pnyx:blob:{analytics_key(space)}"

    async def saved() -> bool:
        return figures in await stage.keys(space)

    await eventually(saved, SOON_S, "the ticker to save the running figures")
    node.analytics._repo = SavesFail(node.analytics._repo)  # type: ignore[assignment]
    await node.spaces.execute(space, cmd.EndSpace(HOST))

    async def only_the_figures_left() -> Seen:
        keys = await stage.keys(space)
        return Seen(list(keys) == [figures], f"left: {keys}")

    await eventually(only_the_figures_left, RETENTION_S + SOON_S, "the rest of the space to go")
    assert (await stage.keys(space))[figures] > 6 * 86_400 * 1000  # a week, for the report
