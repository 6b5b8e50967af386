"""Leases of the space ticker (services/ticker.py) across two "nodes": two tickers with
their own node ids on one memory live state and one SQLite store, which fakes below can
make fail like a database or a Redis that is away.

A node holding a space keeps it through any store outage and through a short live-state
blip; when it dies (its tasks cancelled, its leases not released) the other takes the
space within ``lease_ttl_s + lease_renew_s``, from its last list of live spaces.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pnyx.config import Settings, load_settings
from pnyx.domain import commands as cmd
from pnyx.domain.types import Handle, Limits, SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.keys import lease_name
from pnyx.live.memory import MemoryLiveState
from pnyx.services import views
from pnyx.services.spaces import NewSpace, SpaceService
from pnyx.services.ticker import SpaceTicker
from pnyx.store.db import Store
from tests.support.poll import eventually

HOST = Handle("host")
TTL = 0.5
RENEW = 0.1
SLACK = 0.4  # scheduling on a busy test machine


class Outage:
    """Wraps a working object (the store's spaces table, the live state); while ``down``,
    every coroutine method raises PnyxError(UNAVAILABLE), as the real ones do when their
    server is away. ``only`` limits the outage to some methods."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False
        self.only: set[str] | None = None
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kw: Any) -> Any:
            if self.down and (self.only is None or name in self.only):
                self.failed += 1
                raise PnyxError(ErrorKind.UNAVAILABLE, f"{name}: the server is away (test)")
            return await getattr(self.inner, name)(*args, **kw)

        return call


@dataclass
class Cluster:
    settings: Settings
    store: Store
    db: Outage  # the store's spaces table
    live: Outage  # the shared live state (a MemoryLiveState)
    spaces: SpaceService
    space: SpaceId
    tickers: list[SpaceTicker] = field(default_factory=list)

    def node(self, node_id: str) -> SpaceTicker:
        ticker = SpaceTicker(self.settings, self.live, self.spaces, node_id, time.time)  # type: ignore[arg-type]
        self.tickers.append(ticker)
        return ticker

    async def holder(self) -> str | None:
        lease = await self.live.inner.holder(lease_name(self.space))
        return None if lease is None else str(lease.holder)

    async def stats_epoch(self) -> int:
        snap = await self.live.inner.get_snapshot(self.space)
        return int(snap.parts[views.STATS]["epoch"])


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    settings = load_settings(
        {
            "data_dir": tmp_path,
            "lease_ttl_s": TTL,
            "lease_renew_s": RENEW,
            "state_tick_s": 0.1,
            "state_keepalive_s": 0.1,  # stats change every 0.1 s: ticks show
        },
        env={},
    )
    store = await Store.open(f"sqlite:///{tmp_path / 'pnyx.db'}")
    await store.create_schema()
    await store.accounts.create(HOST, "host", "x", datetime.now(UTC))
    db = Outage(store.spaces)
    store.spaces = db  # type: ignore[assignment]
    live = Outage(MemoryLiveState())
    spaces = SpaceService(store, live, Limits(), time.time)  # type: ignore[arg-type]
    rec = await spaces.create(HOST, NewSpace("lease test"))
    c = Cluster(settings, store, db, live, spaces, rec.id)
    try:
        yield c
    finally:
        db.down = live.down = False
        for ticker in c.tickers:
            await ticker.stop()
        await live.inner.close()
        await store.close()


async def two_nodes(c: Cluster) -> tuple[SpaceTicker, SpaceTicker]:
    """Node a holds the space; node b knows it is live and has found it held."""
    a, b = c.node("node-a"), c.node("node-b")
    a.start()
    await eventually(lambda: a.holds(c.space), 5, "node a to take the space")
    b.start()
    await b.list_live()
    await b.renew_all()
    assert not b.holds(c.space)
    return a, b


async def stays_with_a(c: Cluster, a: SpaceTicker, b: SpaceTicker, seconds: float) -> None:
    """For ``seconds``: a holds the space and keeps ticking it, b never holds it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert a.holds(c.space)
        assert not b.holds(c.space)
        assert await c.holder() in ("node-a", None)  # None: lapsed in a live-state blip
        await asyncio.sleep(0.02)


async def test_a_store_outage_moves_nothing(cluster: Cluster) -> None:
    c = cluster
    a, b = await two_nodes(c)
    lease = await c.live.inner.holder(lease_name(c.space))
    c.db.down = True
    await stays_with_a(c, a, b, 3 * TTL)
    assert c.db.failed > 0, "the listing must have hit the store"
    assert await c.live.inner.holder(lease_name(c.space)) == lease  # renewed, never retaken
    now_epoch = int(time.time() // c.settings.state_keepalive_s)
    assert now_epoch - await c.stats_epoch() <= 3, "the holder must keep ticking the space"
    c.db.down = False
    await stays_with_a(c, a, b, 2 * RENEW)


@pytest.mark.parametrize("store_down", [False, True], ids=["store-up", "store-down"])
async def test_a_dead_holder_is_replaced_within_ttl_plus_renewal(
    cluster: Cluster, store_down: bool
) -> None:
    c = cluster
    a, b = await two_nodes(c)
    dead = await c.live.inner.holder(lease_name(c.space))
    c.db.down = store_down  # b takes it from its last list of live spaces
    died = time.monotonic()
    await a.stop(release=False)  # dies: nothing released
    await eventually(lambda: b.holds(c.space), TTL + RENEW + 2, "node b to take the space")
    took = time.monotonic() - died
    print(f"takeover after {took:.3f}s (lease_ttl_s={TTL}, lease_renew_s={RENEW})")
    assert took <= TTL + RENEW + SLACK
    now = await c.live.inner.holder(lease_name(c.space))
    assert now.holder == "node-b" and now.token > dead.token  # fenced
    assert not await c.live.inner.renew(dead, TTL)  # the dead node's lease is gone for good
    before = await c.stats_epoch()
    await eventually(lambda: _later(c, before), 2, "node b to tick the space")


async def _later(c: Cluster, before: int) -> bool:
    return await c.stats_epoch() > before


@pytest.mark.parametrize("emptied", [False, True], ids=["kept", "restarted-empty"])
async def test_a_live_state_blip_does_not_move_the_stage(cluster: Cluster, emptied: bool) -> None:
    c = cluster
    a, b = await two_nodes(c)
    c.live.down = True
    await stays_with_a(c, a, b, 3 * TTL)  # longer than the lease: it lapsed in there
    if emptied:  # a Redis restarted without its data
        old = c.live.inner
        c.live.inner = MemoryLiveState()
        await old.close()
    c.live.down = False
    await eventually(
        lambda: _held_by(c, "node-a"), 2 * RENEW + SLACK, "node a to renew or retake it"
    )
    await stays_with_a(c, a, b, 5 * RENEW)
    assert await c.holder() == "node-a"


async def _held_by(c: Cluster, node: str) -> bool:
    return await c.holder() == node


async def test_an_ended_space_is_let_go_even_when_the_listing_fails(cluster: Cluster) -> None:
    c = cluster
    a, b = await two_nodes(c)
    c.db.down, c.db.only = True, {"list"}  # this node cannot list; the space ends elsewhere
    await c.spaces.execute(c.space, cmd.EndSpace(HOST))
    await eventually(lambda: not a.holds(c.space), 2, "node a to let the space go")
    assert await c.holder() is None  # released
    await asyncio.sleep(5 * RENEW)
    assert not a.holds(c.space) and not b.holds(c.space)
    assert await c.holder() is None
    c.db.down = False  # the listing agrees: still nobody takes it
    await asyncio.sleep(5 * RENEW)
    assert not a.holds(c.space) and not b.holds(c.space)
