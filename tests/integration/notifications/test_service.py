"""NotificationService over a real SQLite store and the memory live state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pnyx.config import load_settings
from pnyx.domain import commands as cmd
from pnyx.domain.types import Handle, Limits
from pnyx.live.memory import MemoryLiveState
from pnyx.services.notifications import NotificationService
from pnyx.services.spaces import NewSpace, SpaceService
from pnyx.store.db import Store
from tests.support.poll import eventually

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()
STAR, HOST = Handle("star"), Handle("host")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


BIG_HOST_TTL_S = 30.0  # fanout_big_host_ttl_s here (the default is 60)


@dataclass
class World:
    store: Store
    spaces: SpaceService
    notes: NotificationService
    clock: Clock

    async def drained(self) -> None:
        await eventually(lambda: self.notes.idle, 10, "the fan-out to finish", interval=0.01)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    settings = load_settings(
        {
            "data_dir": tmp_path,
            "fanout_threshold": 5,
            "fanout_batch": 2,
            "fanout_big_host_ttl_s": BIG_HOST_TTL_S,
        },
        env={},
    )
    store = await Store.open(f"sqlite:///{tmp_path / 'pnyx.db'}")
    await store.create_schema()
    clock = Clock()
    spaces = SpaceService(store, MemoryLiveState(), Limits(), clock)
    notes = NotificationService(settings, store, clock)
    spaces.on_live = notes.space_started
    notes.start(reminders=False)
    now = datetime.fromtimestamp(T0, UTC)
    fans = [Handle(f"fan{i}") for i in range(8)]
    for handle in (STAR, HOST, *fans):
        await store.accounts.create(handle, handle, "x", now)
    for fan in fans:  # 8 follow the star (above 5); 5 follow the host (not above)
        await store.social.follow(fan, STAR, now)
    for fan in fans[:5]:
        await store.social.follow(fan, HOST, now)
    yield World(store, spaces, notes, clock)
    await notes.close()
    await store.close()


def kinds(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(item["kind"], item["host"]) for item in items]


async def test_fan_out_on_write_reaches_every_follower_in_batches(world: World) -> None:
    rec = await world.spaces.create(HOST, NewSpace("hello"))
    await world.drained()

    for i in range(5):
        (item,) = await world.notes.for_user(Handle(f"fan{i}"))
        assert item == {
            "kind": "space_live",
            "space": rec.id,
            "host": "host",
            "title": "hello",
            "at": datetime.fromtimestamp(T0, UTC).isoformat(),
            "detail": "",
        }
    assert await world.notes.for_user(Handle("fan5")) == []
    assert await world.store.notifications.for_recipient(Handle("fan0")) != []


async def test_above_the_threshold_nothing_is_written_but_followers_see_it(
    world: World,
) -> None:
    rec = await world.spaces.create(STAR, NewSpace("big show"))
    await world.drained()

    for i in range(8):
        fan = Handle(f"fan{i}")
        assert await world.store.notifications.for_recipient(fan) == []
        items = await world.notes.for_user(fan)
        assert [(i["kind"], i["space"]) for i in items] == [("space_live", rec.id)]
    assert [s.id for s in await world.notes.live_followed(Handle("fan0"))] == [rec.id]

    await world.spaces.execute(rec.id, cmd.EndSpace(STAR))
    assert await world.notes.for_user(Handle("fan7")) == []


async def test_starting_a_scheduled_space_notifies_and_newest_comes_first(
    world: World,
) -> None:
    start = datetime.fromtimestamp(T0, UTC) + timedelta(hours=1)
    rec = await world.spaces.create(HOST, NewSpace("later", scheduled_start=start))
    await world.drained()
    assert await world.notes.for_user(Handle("fan0")) == []  # scheduled: not live yet

    world.clock.now += 60
    await world.spaces.execute(rec.id, cmd.StartSpace(HOST))
    world.clock.now += 60
    await world.spaces.create(STAR, NewSpace("star time"))
    await world.drained()

    assert kinds(await world.notes.for_user(Handle("fan0"))) == [
        ("space_live", "star"),
        ("space_live", "host"),
    ]


async def test_reminders_go_out_once_ten_minutes_before(world: World) -> None:
    start = datetime.fromtimestamp(T0, UTC) + timedelta(minutes=30)
    await world.spaces.create(HOST, NewSpace("host later", scheduled_start=start))
    await world.spaces.create(STAR, NewSpace("star later", scheduled_start=start))

    assert await world.notes.remind_due() == 0  # 30 minutes out
    assert await world.notes.for_user(Handle("fan0")) == []

    world.clock.now += 21 * 60  # 9 minutes to go
    assert await world.notes.remind_due() == 2
    assert await world.notes.remind_due() == 0  # once
    await world.drained()

    # the stored one is dated when it was sent; the synthesised one, 10 minutes before
    assert kinds(await world.notes.for_user(Handle("fan0"))) == [
        ("space_soon", "host"),
        ("space_soon", "star"),
    ]
    assert kinds(await world.notes.for_user(Handle("fan7"))) == [("space_soon", "star")]
    assert await world.store.notifications.for_recipient(Handle("fan7")) == []
    assert len(await world.store.notifications.for_recipient(Handle("fan0"))) == 1


async def test_starting_a_space_only_queues_its_fan_out(world: World, tmp_path: Path) -> None:
    """The request that starts a space reads nothing: the follower count that picks the
    path runs in the fan-out task, so starting costs the same whatever the following."""
    rec = await world.spaces.create(STAR, NewSpace("big show"))
    await world.drained()
    settings = load_settings({"data_dir": tmp_path, "fanout_threshold": 5}, env={})
    notes = NotificationService(settings, world.store, world.clock)  # its task not started
    await world.store.close()  # any read on the request path would now fail

    await notes.space_started(rec)

    assert not notes.idle  # queued, not decided (nor dropped by a failed read)


async def test_readers_reuse_a_hosts_side_of_the_threshold_for_a_while(world: World) -> None:
    rec = await world.spaces.create(STAR, NewSpace("big show"))
    await world.drained()  # the fan-out counted 8 followers: above 5, read-fanned-out
    for i in range(5, 8):  # 5 followers left: the star is no longer above the threshold
        await world.store.social.unfollow(Handle(f"fan{i}"), STAR)

    # within fanout_big_host_ttl_s, readers go by the fan-out's count: no recount per read
    world.clock.now += BIG_HOST_TTL_S - 1
    assert [i["space"] for i in await world.notes.for_user(Handle("fan0"))] == [rec.id]

    world.clock.now += 1  # then they count again (and find no rows: it was not written)
    assert await world.notes.for_user(Handle("fan0")) == []
