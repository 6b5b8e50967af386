"""What one account may host, through two ``SpaceService``s as two nodes see them: each
with its own store engine on one SQLite file, and the live state shared (the memory one
in-process, or two clients of a real Redis).

The caps (live and scheduled spaces at once) are counted by the store in the
transaction that adds a space; the creation rate is a token bucket in the live state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pnyx.domain import commands as cmd
from pnyx.domain.types import Handle, Limits, SpaceStatus
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState
from pnyx.live.memory import MemoryLiveState
from pnyx.live.redis import RedisLiveState
from pnyx.services.spaces import HostLimits, NewSpace, SpaceService
from pnyx.store.db import Store

HOSTS = HostLimits(live=1, scheduled=3, per_hour=36.0, burst=8.0)  # a token per 100 s


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "redis"])
async def nodes(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[tuple[SpaceService, SpaceService]]:
    url = f"sqlite:///{tmp_path / 'pnyx.db'}"
    stores = [await Store.open(url), await Store.open(url)]
    await stores[0].create_schema()
    lives: list[LiveState]
    if request.param == "memory":
        shared = MemoryLiveState()
        lives = [shared, shared]
    else:
        redis_url: str = request.getfixturevalue("redis_clean_url")
        lives = [RedisLiveState(redis_url), RedisLiveState(redis_url)]
    for handle in ("alice", "bob", "carol", "dave"):
        await stores[0].accounts.create(Handle(handle), handle, "x", datetime.now(UTC))
    try:
        a, b = (
            SpaceService(s, lv, Limits(), clock, HOSTS) for s, lv in zip(stores, lives, strict=True)
        )
        yield a, b
    finally:
        for lv in {id(lv): lv for lv in lives}.values():
            await lv.close()
        for s in stores:
            await s.close()


def later(clock: Clock, hours: float = 1.0) -> datetime:
    return datetime.fromtimestamp(clock.now, UTC) + timedelta(hours=hours)


async def refused(coro: object, kind: ErrorKind, code: str) -> PnyxError:
    with pytest.raises(PnyxError) as err:
        await coro  # type: ignore[misc]
    assert (err.value.kind, err.value.code) == (kind, code), err.value
    return err.value


async def test_one_live_space_per_account_across_nodes(
    nodes: tuple[SpaceService, SpaceService],
) -> None:
    a, b = nodes
    alice = Handle("alice")
    first = await a.create(alice, NewSpace("one"))
    err = await refused(
        b.create(alice, NewSpace("two")), ErrorKind.CONFLICT, "too_many_live_spaces"
    )
    assert "already hosts 1 live space" in str(err) and "end one" in str(err)
    # Another account is not affected.
    await b.create(Handle("bob"), NewSpace("bob's"))
    # Ended spaces do not count.
    await a.execute(first.id, cmd.EndSpace(alice))
    await b.create(alice, NewSpace("two"))


async def test_starting_a_scheduled_space_counts_as_going_live(
    nodes: tuple[SpaceService, SpaceService], clock: Clock
) -> None:
    a, b = nodes
    alice = Handle("alice")
    soon = await a.create(alice, NewSpace("later", scheduled_start=later(clock)))
    live = await b.create(alice, NewSpace("now"))
    await refused(
        b.execute(soon.id, cmd.StartSpace(alice)), ErrorKind.CONFLICT, "too_many_live_spaces"
    )
    assert (await a.room(soon.id)).status is SpaceStatus.SCHEDULED  # nothing changed
    await a.execute(live.id, cmd.EndSpace(alice))
    started = await b.execute(soon.id, cmd.StartSpace(alice))
    assert started.status is SpaceStatus.LIVE


async def test_scheduled_spaces_are_capped_and_cancelled_ones_do_not_count(
    nodes: tuple[SpaceService, SpaceService], clock: Clock
) -> None:
    a, b = nodes
    carol = Handle("carol")
    made = [
        await (a, b)[i % 2].create(carol, NewSpace(f"s{i}", scheduled_start=later(clock, i + 1)))
        for i in range(HOSTS.scheduled)
    ]
    err = await refused(
        a.create(carol, NewSpace("one more", scheduled_start=later(clock, 9))),
        ErrorKind.CONFLICT,
        "too_many_scheduled_spaces",
    )
    assert "3 scheduled spaces" in str(err)
    await b.execute(made[0].id, cmd.EndSpace(carol))  # cancelled
    await a.create(carol, NewSpace("one more", scheduled_start=later(clock, 9)))
    # Going live does not count against the scheduled cap, and the other way round.
    await b.create(carol, NewSpace("live now"))


async def test_concurrent_creations_on_two_nodes_make_one_live_space(
    nodes: tuple[SpaceService, SpaceService],
) -> None:
    a, b = nodes
    dave = Handle("dave")
    results = await asyncio.gather(
        *((a, b)[i % 2].create(dave, NewSpace(f"race {i}")) for i in range(6)),
        return_exceptions=True,
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    codes = sorted(r.code for r in results if isinstance(r, PnyxError))
    assert len(created) == 1, results
    assert codes == ["too_many_live_spaces"] * 5, results
    assert len(await a.list(SpaceStatus.LIVE)) == 1


async def test_creations_are_rate_limited_per_account_across_nodes(
    nodes: tuple[SpaceService, SpaceService], clock: Clock
) -> None:
    a, b = nodes
    alice, bob = Handle("alice"), Handle("bob")
    # Honest use: one live space at a time, each ended before the next, alternating nodes.
    for i in range(int(HOSTS.burst)):
        node = (a, b)[i % 2]
        rec = await node.create(alice, NewSpace(f"talk {i}"))
        await node.execute(rec.id, cmd.EndSpace(alice))
        clock.now += 1
    err = await refused(
        a.create(alice, NewSpace("one too many")), ErrorKind.RATE_LIMITED, "space_creation_rate"
    )
    assert err.retry_after is not None and 90 < err.retry_after <= 100
    await refused(b.create(alice, NewSpace("b too")), ErrorKind.RATE_LIMITED, "space_creation_rate")
    await b.create(bob, NewSpace("bob is fine"))  # per account
    clock.now += err.retry_after + 1
    await b.create(alice, NewSpace("after the wait"))
