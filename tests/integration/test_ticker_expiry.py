"""Spaces end by themselves (issue #11), through the space ticker (services/ticker.py) on a
memory live state and a SQLite store:

* the host's presence is a stage socket on any node (a blob in the live state) or a
  publish session on the stage node; without either, a live space ends ``host_grace_s``
  after the host went away, or after the ticker took it when the host never came;
* scheduled spaces not started ``scheduled_expiry_s`` after their slot are cancelled by
  the expiry sweep, a bounded batch per pass, the backlog drained without waiting.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pnyx.config import load_settings
from pnyx.domain.types import EndReason, Handle, Limits, SpaceId, SpaceStatus
from pnyx.live.memory import MemoryLiveState
from pnyx.services import views
from pnyx.services.spaces import NewSpace, SpaceService
from pnyx.services.stage import socket_presence_key
from pnyx.services.ticker import SpaceTicker
from pnyx.store.db import Store
from tests.support.poll import eventually

HOST = Handle("host")
GRACE = 0.6
SETTLE = 0.3  # stage_presence_ttl_s


@dataclass
class FakeMedia:
    """The part of MediaService the ticker uses: who publishes where."""

    publishing: dict[SpaceId, set[Handle]] = field(default_factory=dict)

    def sessions(self, space: SpaceId) -> Mapping[Handle, str]:
        return {h: f"session-{h}" for h in self.publishing.get(space, set())}

    def running(self, space: SpaceId) -> bool:
        return False

    async def ensure_running(self, space: SpaceId) -> None:
        return None

    async def stop(self, space: SpaceId, *, ended: bool) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class World:
    live: MemoryLiveState
    store: Store
    spaces: SpaceService
    media: FakeMedia
    clock: Clock
    tickers: list[SpaceTicker] = field(default_factory=list)

    def ticker(self, **settings: Any) -> SpaceTicker:
        s = load_settings(
            {
                "data_dir": "/nonexistent",
                "lease_ttl_s": 0.5,
                "lease_renew_s": 0.1,
                "state_tick_s": 0.05,
                "stage_presence_ttl_s": SETTLE,
                **settings,
            },
            env={},
        )
        t = SpaceTicker(s, self.live, self.spaces, "node-a", self.clock, media=self.media)  # type: ignore[arg-type]
        self.tickers.append(t)
        t.start()
        return t

    async def status(self, space: SpaceId) -> tuple[SpaceStatus, EndReason | None]:
        room = await self.spaces.room(space)
        return room.status, room.end_reason

    async def host_away(self, space: SpaceId) -> bool:
        snap = await self.live.get_snapshot(space)
        return bool(snap and snap.parts[views.ROOM]["host_away"])


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = await Store.open(f"sqlite:///{tmp_path / 'pnyx.db'}")
    await store.create_schema()
    await store.accounts.create(HOST, "host", "x", datetime.now(UTC))
    live = MemoryLiveState()
    clock = Clock()
    spaces = SpaceService(store, live, Limits(host_grace_s=GRACE), clock)
    w = World(live, store, spaces, FakeMedia(), clock)
    try:
        yield w
    finally:
        for t in w.tickers:
            await t.stop()
        await live.close()
        await store.close()


async def ended(w: World, space: SpaceId) -> bool:
    return (await w.status(space))[0] is SpaceStatus.ENDED


async def test_a_host_who_never_comes_ends_the_space_after_the_grace(world: World) -> None:
    w = world
    space = (await w.spaces.create(HOST, NewSpace("nobody home"))).id
    began = time.monotonic()
    w.ticker()
    await eventually(lambda: w.host_away(space), 5, "the host to be marked away")
    assert time.monotonic() - began >= SETTLE - 0.05, "absence is judged after the settle time"
    await eventually(lambda: ended(w, space), 5, "the space to end")
    assert time.monotonic() - began >= SETTLE + GRACE - 0.05
    assert await w.status(space) == (SpaceStatus.ENDED, EndReason.HOST_LEFT)


async def test_a_host_who_only_publishes_keeps_the_space(world: World) -> None:
    w = world
    space = (await w.spaces.create(HOST, NewSpace("publish only"))).id
    w.media.publishing[space] = {HOST}
    t = w.ticker()
    await eventually(lambda: t.holds(space), 5, "the ticker to take the space")
    deadline = time.monotonic() + SETTLE + 3 * GRACE
    while time.monotonic() < deadline:
        assert not await w.host_away(space)
        assert (await w.status(space))[0] is SpaceStatus.LIVE
        await eventually(lambda: True, 0.1, "a moment")
    # The publish session ends and no socket exists: away, then over after the grace.
    w.media.publishing[space] = set()
    stopped = time.monotonic()
    await eventually(lambda: w.host_away(space), 2, "the host to be marked away")
    await eventually(lambda: ended(w, space), 5, "the space to end")
    assert time.monotonic() - stopped >= GRACE - 0.05
    assert await w.status(space) == (SpaceStatus.ENDED, EndReason.HOST_LEFT)


async def test_a_stage_socket_on_another_node_keeps_the_space(world: World) -> None:
    w = world
    space = (await w.spaces.create(HOST, NewSpace("socket elsewhere"))).id
    w.ticker()
    await eventually(lambda: w.host_away(space), 5, "the host to be marked away")
    # Another node's stage socket writes the host's presence: back at once.
    key = socket_presence_key(space, HOST)
    await w.live.put_blob(key, b"1", 30)
    await eventually(lambda: _not(w.host_away(space)), 2, "the host to be back")
    await eventually(lambda: True, 3 * GRACE, "nothing", interval=3 * GRACE)
    assert (await w.status(space))[0] is SpaceStatus.LIVE
    # The socket closes (its node empties the blob): the grace runs out.
    await w.live.put_blob(key, b"", 30)
    await eventually(lambda: ended(w, space), 5, "the space to end")


async def _not(check: Any) -> bool:
    return not await check


async def test_the_sweep_cancels_expired_scheduled_spaces_in_batches(world: World) -> None:
    w = world
    now = datetime.now(UTC)
    old = [
        (
            await w.spaces.create(
                HOST, NewSpace(f"old {n}", scheduled_start=now + timedelta(minutes=n + 1))
            )
        ).id
        for n in range(5)
    ]
    soon = (
        await w.spaces.create(HOST, NewSpace("later", scheduled_start=now + timedelta(hours=5)))
    ).id
    # Two hours on: the five slots are more than an hour gone, the sixth is to come.
    w.clock.offset = 2 * 3600
    # One space a pass, a pass a minute: only the backlog wake drains them in time.
    w.ticker(expiry_sweep_s=60, expiry_sweep_batch=1, scheduled_expiry_s=3600)

    async def all_cancelled() -> bool:
        return [(await w.status(s))[0] for s in old] == [SpaceStatus.CANCELLED] * len(old)

    await eventually(all_cancelled, 5, "the five expired spaces to be cancelled")
    for s in old:
        assert await w.status(s) == (SpaceStatus.CANCELLED, EndReason.EXPIRED)
        snap = await w.live.get_snapshot(s)
        assert snap is not None and snap.parts[views.ROOM]["status"] == "cancelled"
    assert await w.status(soon) == (SpaceStatus.SCHEDULED, None)


async def test_the_sweep_leaves_a_space_within_its_expiry(world: World) -> None:
    w = world
    slot = datetime.now(UTC) + timedelta(minutes=1)
    space = (await w.spaces.create(HOST, NewSpace("late start", scheduled_start=slot))).id
    w.clock.offset = 30 * 60 + 60  # 30 minutes past the slot, expiry one hour
    cancelled, more = await w.spaces.expire_scheduled(3600, 10)
    assert (cancelled, more) == ((), False)
    assert await w.status(space) == (SpaceStatus.SCHEDULED, None)
    w.clock.offset = 3600 + 60
    cancelled, more = await w.spaces.expire_scheduled(3600, 10)
    assert (cancelled, more) == ((space,), False)
    assert await w.status(space) == (SpaceStatus.CANCELLED, EndReason.EXPIRED)
