"""The Redis live state behind Sentinels: it reaches the primary they name, and after the
primary dies it follows the promoted replica (writes, leases, pub/sub) within a bound,
keeping what was replicated. The contract suite itself also runs on a Sentinel URL
(conftest.py); this file is what only a failover shows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import RedisError

from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.factory import open_live_state
from pnyx.live.redis import RedisLiveState
from pnyx.live.subscription import Subscription
from tests.support.poll import Seen, eventually
from tests.support.procs import free_port
from tests.support.redis_server import SentinelCluster, sentinel_cluster

# From the kill to a write that succeeds: the Sentinels notice (down-after 1 s), agree,
# elect a leader and promote (about 2-3 s here), then the client reconnects.
OUTAGE_BOUND_S = 15.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    """A cluster of this test's own (it kills its primary); quick to fail over."""
    with sentinel_cluster(tmp_path, down_after_ms=1000) as started:
        yield started


@pytest.fixture
async def live(cluster: SentinelCluster) -> AsyncIterator[RedisLiveState]:
    state = open_live_state(cluster.url, presence_bucket_s=5.0)
    assert isinstance(state, RedisLiveState)
    try:
        yield state
    finally:
        await state.close()


async def next_message(sub: Subscription, within: float = 5.0) -> bytes:
    async with asyncio.timeout(within):
        return await anext(sub)


async def test_a_sentinel_url_reaches_the_primary(redis_sentinel_clean_url: str) -> None:
    state = open_live_state(redis_sentinel_clean_url, presence_bucket_s=2.0)
    try:
        assert isinstance(state, RedisLiveState)
        assert await state.ping()
        assert await state.put_part("s1", "room", {"title": "Agora"}, 1) == 1
    finally:
        await state.close()


def test_a_bad_sentinel_url_fails_at_once_saying_why() -> None:
    with pytest.raises(PnyxError) as err:
        open_live_state("redis+sentinel://127.0.0.1:26379")  # no service name
    assert err.value.kind is ErrorKind.INVALID
    assert "no service name" in err.value.message
    assert "redis+sentinel://host:26379" in err.value.message  # the form to use


async def test_no_sentinel_answering_is_unavailable_in_one_line() -> None:
    ports = [free_port(), free_port()]
    url = f"redis+sentinel://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/mymaster"
    state = open_live_state(url)
    try:
        assert await state.ping() is False
        with pytest.raises(PnyxError) as err:
            await state.put_blob("x", b"1", 1.0)
        assert err.value.kind is ErrorKind.UNAVAILABLE
        assert isinstance(err.value.__cause__, RedisError)
        assert err.value.message == (
            "live state (Redis) unavailable: no Sentinel at "
            f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]} names a primary for 'mymaster'"
        )
    finally:
        await state.close()


async def test_the_live_state_follows_a_failover(
    cluster: SentinelCluster, live: RedisLiveState
) -> None:
    # Before: a snapshot part, a blob, a lease, a subscriber and a snapshot waiter.
    assert await live.put_part("s1", "room", {"title": "before"}, 1) == 1
    await live.put_blob("s1/init.mp4", b"init-segment", 120.0)
    lease = await live.acquire("tick:s1", "node-a", 60.0)
    assert lease is not None
    async with live.subscribe("stage:s1") as sub:
        await live.publish("stage:s1", b"before")
        assert await next_message(sub) == b"before"
        waiter = asyncio.create_task(live.wait_snapshot("s1", after=1, timeout=60.0))

        def replicate_then_kill() -> int:
            primary = cluster.primary()
            try:
                assert primary.execute_command("WAIT", 1, 5000) == 1  # the replica has it all
            finally:
                primary.close()
            return cluster.kill_primary()

        old_port = await asyncio.to_thread(replicate_then_kill)
        killed_at = time.monotonic()

        refusals: set[ErrorKind] = set()

        async def writes() -> bool:
            try:
                await live.put_blob("probe", b"x", 60.0)
            except PnyxError as exc:
                refusals.add(exc.kind)
                return False
            return True

        await eventually(writes, OUTAGE_BOUND_S, "a write after the failover", interval=0.1)
        outage = time.monotonic() - killed_at
        assert refusals <= {ErrorKind.UNAVAILABLE}  # a 503 while it lasts, nothing else
        new_port = await asyncio.to_thread(cluster.wait_promoted, old_port, 5.0)
        print(f"\nSentinel failover: writes were refused for {outage:.2f} s after the kill")
        assert new_port != old_port

        # What was written (and replicated) before the kill is still there.
        snap = await live.get_snapshot("s1")
        assert snap is not None
        assert (snap.version, snap.parts["room"]) == (1, {"title": "before"})
        assert await live.get_blob("s1/init.mp4") == b"init-segment"
        assert await live.holder("tick:s1") == lease
        assert await live.renew(lease, 60.0)
        assert await live.acquire("tick:s1", "node-b", 60.0) is None  # still ours

        # A long-poll caught by the outage failed (a 503: its client asks again); the
        # shared snapshot listener resubscribed on the new primary, so a new one is
        # woken by the notification of a change.
        with pytest.raises(PnyxError) as err:
            await waiter
        assert err.value.kind is ErrorKind.UNAVAILABLE

        def pubsub_clients() -> Seen:
            primary = cluster.primary()
            try:
                clients = primary.client_list()
            finally:
                primary.close()
            # (the Sentinels' own hello subscriptions are named sentinel-…)
            clients = [c for c in clients if not c["name"].startswith("sentinel-")]
            seen = (
                sum(1 for c in clients if int(c["psub"]) > 0),
                sum(1 for c in clients if int(c["sub"]) > 0),
            )
            return Seen(seen == (1, 1), f"(pattern, channel) subscribers: {seen}")

        await eventually(
            lambda: asyncio.to_thread(pubsub_clients),
            10.0,
            "the listener and the subscription to subscribe on the new primary",
            interval=0.2,
        )
        resubscribed_at = time.monotonic()
        waiter = asyncio.create_task(live.wait_snapshot("s1", after=1, timeout=30.0))
        await asyncio.sleep(0.2)
        put_at = time.monotonic()
        assert await live.put_part("s1", "room", {"title": "after"}, 2) == 2
        woken = await asyncio.wait_for(waiter, timeout=5.0)
        assert woken is not None
        assert woken.parts["room"] == {"title": "after"}
        assert time.monotonic() - put_at < 0.5  # notified, not found by the 1 s re-check

        # The subscription from before the kill hears what is published now (what was
        # published while it reconnected is lost, as pub/sub always loses it).
        async def delivered() -> Seen:
            await live.publish("stage:s1", b"after")
            try:
                got = await next_message(sub, within=0.2)
            except TimeoutError:
                return Seen(False, "nothing delivered yet")
            return Seen(got == b"after", f"got {got!r}")

        await eventually(delivered, 10.0, "a message published after the failover")
        print(
            "Sentinel failover: pub/sub subscribed again on the new primary"
            f" {resubscribed_at - killed_at:.2f} s after the kill"
        )
        await live.publish("stage:s1", b"again")  # and keeps hearing
        while (got := await next_message(sub)) != b"again":
            assert got == b"after"  # a late copy of the probe

    # A subscription opened after the failover works from the start.
    async with live.subscribe("stage:s2") as fresh:
        await live.publish("stage:s2", b"hello")
        assert await next_message(fresh) == b"hello"


async def test_the_live_state_follows_a_coordinated_failover(
    cluster: SentinelCluster, live: RedisLiveState
) -> None:
    """``SENTINEL FAILOVER``: the old primary lives on as a replica (it answers writes
    with READONLY and drops its subscribers); writes and pub/sub move to the new one."""
    await live.put_blob("before", b"1", 60.0)
    async with live.subscribe("stage:s1") as sub:

        def failover() -> tuple[int, int]:
            old = cluster.primary_port()
            sentinel = redis.Redis(host="127.0.0.1", port=cluster.sentinel_ports[0])
            try:
                assert sentinel.execute_command("SENTINEL", "FAILOVER", cluster.service)
            finally:
                sentinel.close()
            return old, cluster.wait_promoted(old, 20.0)

        old_port, new_port = await asyncio.to_thread(failover)
        assert new_port != old_port

        def on_new_primary() -> Seen:
            client = redis.Redis(host="127.0.0.1", port=new_port, socket_timeout=2.0)
            try:
                written = client.get("pnyx:blob:probe")
                clients = [c for c in client.client_list() if not c["name"].startswith("sentinel-")]
            finally:
                client.close()
            subs = sum(1 for c in clients if int(c["sub"]) > 0)
            return Seen(written == b"2" and subs == 1, f"probe {written!r}, subscribers {subs}")

        async def moved() -> Seen:
            try:
                await live.put_blob("probe", b"2", 60.0)
            except PnyxError as exc:
                return Seen(False, exc.message)
            return await asyncio.to_thread(on_new_primary)

        await eventually(moved, 10.0, "writes and the subscription on the new primary")
        assert await live.get_blob("before") == b"1"  # replicated before the switch
        await live.publish("stage:s1", b"after")
        assert await next_message(sub) == b"after"
