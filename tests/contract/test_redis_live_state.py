"""What only the Redis live state must also do: share connections, own its tasks, expire
its keys, survive a lost notification, and report an unreachable Redis as UNAVAILABLE."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.factory import open_live_state
from pnyx.live.memory import MemoryLiveState
from pnyx.live.redis import RedisLiveState
from tests.contract.test_live_state import SOON_S, T0, still_pending
from tests.support.poll import Seen, eventually
from tests.support.procs import free_port


@pytest.fixture
async def raw(redis_clean_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_clean_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def live(redis_clean_url: str) -> AsyncIterator[RedisLiveState]:
    state = RedisLiveState(redis_clean_url)
    try:
        yield state
    finally:
        await state.close()


async def pubsub_clients(raw: aioredis.Redis) -> tuple[int, int]:
    """(connections with pattern subscriptions, connections with channel subscriptions)"""
    clients = await raw.client_list()
    return (
        sum(1 for c in clients if int(c["psub"]) > 0),
        sum(1 for c in clients if int(c["sub"]) > 0),
    )


async def test_waiters_share_one_subscription(live: RedisLiveState, raw: aioredis.Redis) -> None:
    assert await pubsub_clients(raw) == (0, 0)  # the listener starts with the first waiter
    waiters = [
        asyncio.create_task(live.wait_snapshot(f"s{i % 10}", after=0, timeout=10.0))
        for i in range(100)
    ]
    assert await still_pending(waiters[0])
    assert await pubsub_clients(raw) == (1, 0)
    for i in range(10):
        await live.put_part(f"s{i}", "room", {}, 1)
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=5.0)
    await live.close()
    assert live._listener is None  # cancelled and awaited by close()

    async def unsubscribed() -> Seen:
        clients = await pubsub_clients(raw)
        return Seen(clients == (0, 0), f"pub/sub clients {clients}")

    await eventually(unsubscribed, SOON_S, "the listener's connection to close")


async def test_a_missed_notification_delays_a_waiter_by_at_most_a_second(
    live: RedisLiveState, raw: aioredis.Redis
) -> None:
    await live.put_part("s1", "room", {"a": 1}, 1)
    waiter = asyncio.create_task(live.wait_snapshot("s1", after=1, timeout=10.0))
    assert await still_pending(waiter)
    written_at = time.monotonic()
    await raw.hset("pnyx:snap:s1", mapping={"v": 2, "p:room": '{"a":2}', "pv:room": 2})  # silent
    snap = await asyncio.wait_for(waiter, timeout=5.0)
    assert snap is not None
    assert snap.version == 2
    assert time.monotonic() - written_at < 1.5


async def test_listener_resubscribes_after_losing_its_connection(
    live: RedisLiveState, raw: aioredis.Redis
) -> None:
    await live.put_part("s1", "room", {"a": 1}, 1)
    first = asyncio.create_task(live.wait_snapshot("s1", after=1, timeout=10.0))
    assert await still_pending(first)
    await raw.client_kill_filter(_type="pubsub")
    await live.put_part("s1", "room", {"a": 2}, 2)
    assert (await asyncio.wait_for(first, timeout=5.0)) is not None

    async def resubscribed() -> Seen:
        clients = await pubsub_clients(raw)
        return Seen(clients == (1, 0), f"pub/sub clients {clients}")

    await eventually(resubscribed, SOON_S, "the listener to resubscribe")
    second = asyncio.create_task(live.wait_snapshot("s1", after=2, timeout=10.0))
    assert await still_pending(second)
    put_at = time.monotonic()
    await live.put_part("s1", "room", {"a": 3}, 3)
    assert (await asyncio.wait_for(second, timeout=5.0)) is not None
    assert time.monotonic() - put_at < 0.5  # notified again, not by the re-check


async def test_subscriptions_hold_a_connection_only_while_open(
    live: RedisLiveState, raw: aioredis.Redis
) -> None:
    async with live.subscribe("stage:s1"), live.subscribe("stage:s2"):
        assert await pubsub_clients(raw) == (0, 2)

    async def closed() -> Seen:
        clients = await pubsub_clients(raw)
        return Seen(clients == (0, 0), f"pub/sub clients {clients}")

    await eventually(closed, SOON_S, "subscription connections to close")


async def test_keys_are_prefixed_and_expire(live: RedisLiveState, raw: aioredis.Redis) -> None:
    await live.put_part("s1", "room", {}, 1)
    await live.presence_add("s1", "ann", T0)
    await live.presence_leave_many("s1", ["bob"], T0)
    await live.audience_add("s1", "l1 ann", T0, 10)
    await live.react("s1", "👏", T0)
    await live.take("u1", rate=1.0, burst=5.0, now=T0)
    lease = await live.acquire("stage:s1", "node-a", 5.0)
    assert lease is not None
    await live.put_blob("s1/live.m3u8", b"#EXTM3U", 2.0)
    keys = sorted(k.decode() for k in await raw.keys("*"))
    assert all(k.startswith("pnyx:") for k in keys), keys
    assert await raw.ttl("pnyx:snap:s1") == -1  # the snapshot lives until expire_space
    assert await raw.ttl("pnyx:fence:stage:s1") == -1  # fencing must never go back
    for key, most in [
        (f"pnyx:presence:s1:{int(T0 // 5)}", 400),
        (f"pnyx:gone:s1:{int(T0 // 5)}", 400),
        ("pnyx:unique:s1", 7 * 86_400),
        ("pnyx:audience:s1", 7 * 86_400),
        (f"pnyx:react:s1:{int(T0)}", 120),
        ("pnyx:rate:u1", 3),  # until the bucket would be full again, plus a second
        ("pnyx:lease:stage:s1", 5),
        ("pnyx:blob:s1/live.m3u8", 2),
    ]:
        assert 0 < await raw.ttl(key) <= most, key


async def _ttls(raw: aioredis.Redis, pattern: str) -> dict[str, int]:
    return {k.decode(): await raw.pttl(k) for k in await raw.keys(pattern)}


def _keys_of_s1(*more: str) -> list[str]:
    """The keys space s1 has once it had a room, a playlist, a listener who came and
    went, a reaction and a fenced lease, and ``more``, sorted."""
    return sorted(
        [
            "pnyx:snap:s1",
            "pnyx:snap:hls:s1",
            f"pnyx:presence:s1:{int(T0 // 5)}",
            f"pnyx:gone:s1:{int(T0 // 5)}",
            "pnyx:unique:s1",
            "pnyx:people:s1",
            f"pnyx:react:s1:{int(T0)}",
            "pnyx:fence:tick:s1",
            *more,
        ]
    )


async def test_expire_space_puts_a_ttl_on_every_key_of_the_space(
    live: RedisLiveState, raw: aioredis.Redis
) -> None:
    for space in ("s1", "s1:x"):
        await live.put_part(space, "room", {}, 1)
        await live.put_part(f"hls:{space}", "playlist", {}, 1)
        await live.presence_add_many(space, ["l1"], T0, people=["@ann"])
        await live.presence_leave_many(space, ["l1"], T0)
        await live.audience_add(space, "l1 ann", T0, 10)
        await live.react(space, "👏", T0)
        await live.put_blob(f"{space}/seg/1.m4s", b"m", 300.0)
        await live.put_blob(f"{space}/part/1.m4s", b"p", 2.0)
        lease = await live.acquire(f"tick:{space}", "node-a", 5.0)
        assert lease is not None
        await live.release(lease)
    assert await raw.pttl("pnyx:fence:tick:s1") == -1
    await live.expire_space("s1", 60.0, leases=["tick:s1"])
    mine = {
        k: ttl for k, ttl in (await _ttls(raw, "pnyx:*")).items() if "s1" in k and "s1:x" not in k
    }
    assert sorted(mine) == _keys_of_s1(
        "pnyx:audience:s1", "pnyx:heard:s1", "pnyx:blob:s1/seg/1.m4s", "pnyx:blob:s1/part/1.m4s"
    )
    assert all(0 < ttl <= 60_000 for ttl in mine.values()), mine
    assert mine["pnyx:blob:s1/part/1.m4s"] <= 2_000  # due sooner: kept
    # the neighbour "s1:x" keeps its own lifetimes: no TTL on its snapshots and fence
    for key in ("pnyx:snap:s1:x", "pnyx:snap:hls:s1:x", "pnyx:fence:tick:s1:x"):
        assert await raw.pttl(key) == -1, key
    assert await raw.pttl("pnyx:unique:s1:x") > 86_400_000


async def _scans(raw: aioredis.Redis) -> int:
    stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_scan", {}).get("calls", 0))


async def test_expire_space_told_its_lasting_blobs_scans_nothing_at_a_long_retention(
    live: RedisLiveState, raw: aioredis.Redis
) -> None:
    """Every bucketed key (presence, gone, reactions: 6 minutes at most) and every blob
    but the named ones is due within the retention: nothing needs looking for, and the
    end of a space costs no pass over a keyspace of millions."""
    await live.put_part("s1", "room", {}, 1)
    await live.put_part("hls:s1", "playlist", {}, 1)
    await live.presence_add_many("s1", ["l1"], T0, people=["@ann"])
    await live.presence_leave_many("s1", ["l1"], T0)
    await live.react("s1", "👏", T0)
    await live.put_blob("s1/init.mp4", b"i", 86_400.0)
    await live.put_blob("s1/seg/1.m4s", b"m", 300.0)
    lease = await live.acquire("tick:s1", "node-a", 5.0)
    assert lease is not None
    await live.release(lease)
    scans = await _scans(raw)
    await live.expire_space("s1", 600.0, leases=["tick:s1"], blobs=["s1/init.mp4"])
    assert await _scans(raw) == scans
    mine = await _ttls(raw, "pnyx:*s1*")
    assert sorted(mine) == _keys_of_s1("pnyx:blob:s1/init.mp4", "pnyx:blob:s1/seg/1.m4s")
    assert all(0 < ttl <= 600_000 for ttl in mine.values()), mine
    assert mine["pnyx:blob:s1/seg/1.m4s"] <= 300_000  # its own, sooner
    # At a retention shorter than a presence bucket's life, the buckets are looked for.
    await live.expire_space("s1", 60.0, leases=["tick:s1"], blobs=["s1/init.mp4"])
    assert await _scans(raw) > scans
    mine = await _ttls(raw, "pnyx:*s1*")
    late = {k: ttl for k, ttl in mine.items() if ttl > 60_000 and "/seg/" not in k}
    assert not late, late


async def test_a_ttl_given_to_put_part_stays_with_later_writes(
    live: RedisLiveState, raw: aioredis.Redis
) -> None:
    await live.put_part("s1", "room", {"status": "ended"}, 1, ttl_s=30.0)
    assert 0 < await raw.pttl("pnyx:snap:s1") <= 30_000
    await live.put_part("s1", "stats", {}, 1)
    assert 0 < await raw.pttl("pnyx:snap:s1") <= 30_000
    await live.put_part("s2", "room", {}, 2)
    assert await live.put_part("s2", "room", {}, 1, ttl_s=30.0) is None
    assert await raw.pttl("pnyx:snap:s2") == -1  # a stale write changes nothing


async def test_close_ends_waiters(live: RedisLiveState) -> None:
    waiter = asyncio.create_task(live.wait_snapshot("s1", after=0, timeout=30.0))
    assert await still_pending(waiter)
    await live.close()
    with pytest.raises(PnyxError) as err:
        await asyncio.wait_for(waiter, timeout=2.0)
    assert err.value.kind is ErrorKind.UNAVAILABLE


async def test_instances_with_other_prefixes_do_not_meet(redis_clean_url: str) -> None:
    a = RedisLiveState(redis_clean_url, key_prefix="a:")
    b = RedisLiveState(redis_clean_url, key_prefix="b:")
    try:
        await a.put_part("s1", "room", {}, 1)
        assert await b.get_snapshot("s1") is None
        assert await b.wait_snapshot("s1", after=0, timeout=0.2) is None
    finally:
        await a.close()
        await b.close()


async def test_unreachable_redis_is_unavailable() -> None:
    state = RedisLiveState(f"redis://127.0.0.1:{free_port()}/0")
    try:
        assert await state.ping() is False
        started = time.monotonic()
        with pytest.raises(PnyxError) as err:
            await state.put_part("s1", "room", {}, 1)
        assert err.value.kind is ErrorKind.UNAVAILABLE
        assert "live state (Redis) unavailable" in err.value.message
        assert isinstance(err.value.__cause__, RedisError)
        assert time.monotonic() - started < 10.0
        with pytest.raises(PnyxError):
            await state.get_blob("x")
        with pytest.raises(PnyxError):
            async with state.subscribe("stage:s1"):
                pass
        # a waiter on an unreachable Redis fails rather than hangs
        with pytest.raises(PnyxError):
            await state.wait_snapshot("s1", after=0, timeout=5.0)
    finally:
        await state.close()


async def test_factory_picks_the_implementation(redis_clean_url: str) -> None:
    memory = open_live_state(None, presence_bucket_s=2.0)
    shared = open_live_state(redis_clean_url, presence_bucket_s=2.0)
    try:
        assert isinstance(memory, MemoryLiveState)
        assert isinstance(shared, RedisLiveState)
        assert memory.presence_bucket_s == shared.presence_bucket_s == 2.0
        assert await memory.ping()
        assert await shared.ping()
    finally:
        await memory.close()
        await shared.close()
