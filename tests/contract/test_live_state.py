"""The live-state contract (pnyx.live.base.LiveState), run against memory and Redis.

Times that pick buckets are passed in as ``now``; only lease and blob expiry use the
backends' own clocks, and those tests poll with a deadline rather than sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import EncodedJSON, Lease, LiveState
from pnyx.live.keys import blob_key, hls_key, lease_name
from pnyx.live.memory import MemoryLiveState
from pnyx.live.redis import RedisLiveState
from tests.contract.conftest import BUCKET_S, QUEUE
from tests.support.poll import Seen, eventually

T0 = 1_700_000_000.0  # a bucket boundary (divisible by BUCKET_S)
PROMPT_S = 0.5  # "at once": well under the Redis waiters' 1 s re-check
SOON_S = 3.0  # what expires or arrives in the background does within this


async def still_pending(task: asyncio.Task[Any], seconds: float = 0.2) -> bool:
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return not done


# -- snapshots -------------------------------------------------------------------------


async def test_snapshot_is_none_until_a_part_is_put(live: LiveState) -> None:
    assert await live.get_snapshot("s1") is None


async def test_every_accepted_part_bumps_the_version(live: LiveState) -> None:
    assert await live.put_part("s1", "room", {"title": "Agora", "n": [1, 2]}, 1) == 1
    assert await live.put_part("s1", "stats", {"listeners": 3}, 100) == 2
    snap = await live.get_snapshot("s1")
    assert snap is not None
    assert snap.version == 2
    assert dict(snap.parts) == {"room": {"title": "Agora", "n": [1, 2]}, "stats": {"listeners": 3}}
    assert await live.put_part("s1", "room", {"title": "Pnyx ✓"}, 2) == 3
    snap = await live.get_snapshot("s1")
    assert snap is not None
    assert snap.version == 3
    assert snap.parts["room"] == {"title": "Pnyx ✓"}


async def test_stale_part_is_rejected_and_changes_nothing(live: LiveState) -> None:
    await live.put_part("s1", "room", {"rev": 5}, 5)
    await live.put_part("s1", "stats", {"x": 1}, 1)
    assert await live.put_part("s1", "room", {"rev": 4}, 4) is None
    assert await live.put_part("s1", "room", {"rev": "again"}, 5) is None  # equal: stale too
    snap = await live.get_snapshot("s1")
    assert snap is not None
    assert snap.version == 2
    assert snap.parts["room"] == {"rev": 5}
    # part versions are per part: a low version of another part is fine
    assert await live.put_part("s1", "levels", {"speaking": []}, 0) == 3


async def test_a_pre_encoded_part_is_stored_as_the_document_it_encodes(live: LiveState) -> None:
    text = EncodedJSON('{"title":"Pnyx ✓","n":[1,2.5],"ok":true}')
    assert await live.put_part("s1", "playlist", text, 1) == 1
    assert await live.put_part("s1", "playlist", EncodedJSON('{"stale":1}'), 1) is None
    snap = await live.get_snapshot("s1")
    assert snap is not None
    assert snap.parts == {"playlist": {"title": "Pnyx ✓", "n": [1, 2.5], "ok": True}}
    waiter = asyncio.create_task(live.wait_snapshot("s1", 1, SOON_S))
    assert await live.put_part("s1", "playlist", EncodedJSON('{"rev":2}'), 2) == 2
    woken = await waiter
    assert woken is not None
    assert woken.parts["playlist"] == {"rev": 2}


async def test_spaces_are_independent(live: LiveState) -> None:
    await live.put_part("s1", "room", {"a": 1}, 1)
    await live.put_part("s1", "room", {"a": 2}, 2)
    assert await live.put_part("s2", "room", {"b": 1}, 1) == 1
    snap = await live.get_snapshot("s2")
    assert snap is not None
    assert snap.parts == {"room": {"b": 1}}


async def test_wait_returns_at_once_when_already_newer(live: LiveState) -> None:
    await live.put_part("s1", "room", {"a": 1}, 1)
    started = time.monotonic()
    snap = await live.wait_snapshot("s1", after=0, timeout=10.0)
    assert snap is not None
    assert snap.version == 1
    assert time.monotonic() - started < PROMPT_S


async def test_wait_times_out_with_none(live: LiveState) -> None:
    await live.put_part("s1", "room", {"a": 1}, 1)
    started = time.monotonic()
    assert await live.wait_snapshot("s1", after=1, timeout=0.3) is None
    assert 0.29 <= time.monotonic() - started < 2.0
    assert await live.wait_snapshot("s1", after=1, timeout=0) is None
    assert await live.wait_snapshot("never-written", after=0, timeout=0.1) is None


async def test_waiter_wakes_when_a_part_is_put(live_pair: tuple[LiveState, LiveState]) -> None:
    """Across nodes for Redis: the put on one node wakes the waiter on the other."""
    writer, reader = live_pair
    await writer.put_part("s1", "room", {"a": 1}, 1)
    waiter = asyncio.create_task(reader.wait_snapshot("s1", after=1, timeout=10.0))
    assert await still_pending(waiter), "returned before anything changed"
    put_at = time.monotonic()
    assert await writer.put_part("s1", "room", {"a": 2}, 2) == 2
    snap = await asyncio.wait_for(waiter, timeout=5.0)
    woke_after = time.monotonic() - put_at
    assert snap is not None
    assert snap.version == 2
    assert snap.parts["room"] == {"a": 2}
    assert woke_after < PROMPT_S, f"woke {woke_after:.2f}s after the put"


async def test_waiter_on_a_new_space_wakes_on_its_first_put(
    live_pair: tuple[LiveState, LiveState],
) -> None:
    writer, reader = live_pair
    waiter = asyncio.create_task(reader.wait_snapshot("fresh", after=0, timeout=10.0))
    assert await still_pending(waiter)
    put_at = time.monotonic()
    await writer.put_part("fresh", "room", {"a": 1}, 1)
    snap = await asyncio.wait_for(waiter, timeout=5.0)
    assert snap is not None
    assert snap.version == 1
    assert time.monotonic() - put_at < PROMPT_S


async def test_many_waiters_wake_on_one_put(live_pair: tuple[LiveState, LiveState]) -> None:
    writer, reader = live_pair
    await writer.put_part("s1", "room", {"a": 1}, 1)
    waiters = [
        asyncio.create_task(reader.wait_snapshot("s1", after=1, timeout=10.0)) for _ in range(50)
    ]
    other = asyncio.create_task(reader.wait_snapshot("s2", after=0, timeout=0.5))
    assert await still_pending(waiters[0])
    put_at = time.monotonic()
    await writer.put_part("s1", "stats", {"n": 1}, 1)
    snaps = await asyncio.wait_for(asyncio.gather(*waiters), timeout=5.0)
    assert time.monotonic() - put_at < PROMPT_S
    assert {s.version for s in snaps if s is not None} == {2}
    assert len(snaps) == 50
    assert await other is None  # a put to s1 does not satisfy a waiter on s2


async def test_cancelled_waiter_leaves_others_waiting(live: LiveState) -> None:
    await live.put_part("s1", "room", {"a": 1}, 1)
    first = asyncio.create_task(live.wait_snapshot("s1", after=1, timeout=10.0))
    second = asyncio.create_task(live.wait_snapshot("s1", after=1, timeout=10.0))
    assert await still_pending(first)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await live.put_part("s1", "room", {"a": 2}, 2)
    snap = await asyncio.wait_for(second, timeout=PROMPT_S * 2)
    assert snap is not None
    assert snap.version == 2


async def test_snapshots_are_shared_between_nodes(live_pair: tuple[LiveState, LiveState]) -> None:
    a, b = live_pair
    await a.put_part("s1", "room", {"from": "a"}, 1)
    assert await b.put_part("s1", "room", {"from": "b, stale"}, 1) is None
    assert await b.put_part("s1", "stats", {"from": "b"}, 1) == 2
    for node in (a, b):
        snap = await node.get_snapshot("s1")
        assert snap is not None
        assert snap.version == 2
        assert snap.parts == {"room": {"from": "a"}, "stats": {"from": "b"}}


# -- presence --------------------------------------------------------------------------


async def test_presence_counts_distinct_members_over_the_window(live: LiveState) -> None:
    assert await live.presence_count("s1", T0, 30) == 0
    for member in ("ann", "bob", "cid"):
        await live.presence_add("s1", member, T0)
    await live.presence_add("s1", "bob", T0 + 1)  # same bucket, same member
    await live.presence_add("s1", "ann", T0 + BUCKET_S)  # next bucket, same member
    await live.presence_add("s1", "dee", T0 + BUCKET_S + 2)
    now = T0 + BUCKET_S + 2
    assert await live.presence_count("s1", now, 2 * BUCKET_S) == 4
    assert await live.presence_count("s1", now, BUCKET_S) == 2  # the current bucket only
    assert await live.presence_count("s2", now, 2 * BUCKET_S) == 0


async def test_presence_forgets_buckets_outside_the_window(live: LiveState) -> None:
    await live.presence_add("s1", "old", T0)
    await live.presence_add("s1", "new", T0 + 6 * BUCKET_S)
    now = T0 + 6 * BUCKET_S
    assert await live.presence_count("s1", now, 3 * BUCKET_S) == 1
    assert await live.presence_count("s1", now, 7 * BUCKET_S) == 2
    assert await live.presence_count("s1", T0 + 100 * BUCKET_S, 3 * BUCKET_S) == 0


async def test_presence_window_counts_whole_buckets(live: LiveState) -> None:
    """A window that is not a whole number of buckets is rounded up to whole buckets."""
    await live.presence_add("s1", "a", T0 + 1)
    await live.presence_add("s1", "b", T0 + BUCKET_S + 1)
    assert await live.presence_count("s1", T0 + BUCKET_S + 1, BUCKET_S * 1.5) == 2
    assert await live.presence_count("s1", T0 + BUCKET_S + 1, 0.1) == 1


async def test_presence_is_within_two_percent_at_100k(live: LiveState) -> None:
    """Against Redis's own HyperLogLog and the memory one (pnyx.live.hll). The members
    go in through ``presence_add_many`` (one round trip per bucket): 100k single adds
    would time the client, not the count."""
    assert isinstance(live, MemoryLiveState | RedisLiveState)
    n = 100_000
    for bucket in range(3):  # spread over three buckets, so the count is a union
        members = (f"listener-{i}" for i in range(bucket, n, 3))
        await live.presence_add_many("big", members, T0 + bucket * BUCKET_S)
    await live.presence_add_many("big", (f"listener-{i}" for i in range(0, n, 7)), T0)  # repeats
    count = await live.presence_count("big", T0 + 2 * BUCKET_S, 3 * BUCKET_S)
    assert abs(count - n) / n <= 0.02, count


async def test_presence_is_within_two_percent_one_add_at_a_time(live: LiveState) -> None:
    n = 5_000
    for start in range(0, n, 250):
        await asyncio.gather(
            *(live.presence_add("s1", f"member-{i}", T0 + i % 4) for i in range(start, start + 250))
        )
    count = await live.presence_count("s1", T0 + 4, BUCKET_S)
    assert abs(count - n) / n <= 0.02, count


async def test_members_marked_gone_stop_counting_at_once(live: LiveState) -> None:
    await live.presence_add_many("s1", ["ann", "bob", "cat", "dee"], T0)
    await live.presence_add("s1", "eve", T0 + BUCKET_S)
    now = T0 + BUCKET_S + 1
    assert await live.presence_count("s1", now, 3 * BUCKET_S) == 5
    await live.presence_leave_many("s1", ["bob", "eve"], now)
    assert await live.presence_count("s1", now, 3 * BUCKET_S) == 3
    # gone without having been counted in this window (heard before it): no harm
    await live.presence_leave_many("s1", ["zed"], now)
    assert await live.presence_count("s1", now, 3 * BUCKET_S) == 3
    assert await live.presence_count("s2", now, 3 * BUCKET_S) == 0
    # gone marks age out with the window, like presence
    later = T0 + 20 * BUCKET_S
    await live.presence_add("s1", "fay", later)
    assert await live.presence_count("s1", later, 3 * BUCKET_S) == 1


async def test_gone_is_within_two_percent_at_100k(live: LiveState) -> None:
    n = 100_000
    await live.presence_add_many("big", (f"l-{i}" for i in range(n)), T0)
    await live.presence_leave_many("big", (f"l-{i}" for i in range(0, n, 2)), T0 + 1)
    count = await live.presence_count("big", T0 + 1, 3 * BUCKET_S)
    assert abs(count - n / 2) / (n / 2) <= 0.04, count  # two estimates' errors, on n


async def test_presence_unique_counts_everyone_ever_added(live: LiveState) -> None:
    assert await live.presence_unique("s1") == 0
    await live.presence_add_many("s1", ["ann", "bob"], T0)
    await live.presence_add("s1", "cat", T0 + 1000 * BUCKET_S)  # long after
    await live.presence_add("s1", "ann", T0 + 1000 * BUCKET_S)
    await live.presence_leave_many("s1", ["bob"], T0 + 1000 * BUCKET_S)
    assert await live.presence_unique("s1") == 3
    assert await live.presence_unique("s2") == 0


async def test_audience_is_capped_newest_first_and_paged(live: LiveState) -> None:
    for i in range(12):
        await live.audience_add("s1", f"l{i} h{i}", T0 + i, cap=10)
    page = await live.audience_page("s1", None, 4)
    assert page == [(f"l{i} h{i}", T0 + i) for i in (11, 10, 9, 8)]
    rest = await live.audience_page("s1", page[-1][1], 100)
    assert [m for m, _ in rest] == [f"l{i} h{i}" for i in range(7, 1, -1)]  # l0, l1 trimmed
    await live.audience_remove("s1", ["l11 h11", "l5 h5", "never"])
    members = [m for m, _ in await live.audience_page("s1", None, 100)]
    assert "l11 h11" not in members and "l5 h5" not in members
    assert len(members) == 8
    assert await live.audience_page("s2", None, 10) == []
    assert await live.audience_page("s1", None, 0) == []
    await live.drop_space("s1")
    assert await live.audience_page("s1", None, 10) == []
    assert await live.presence_unique("s1") == 0


async def test_people_are_counted_apart_from_members(live: LiveState) -> None:
    await live.presence_add_many("s1", ["l1", "l2", "l3"], T0, people=["@ann", "~c1"])
    await live.presence_add_many("s1", ["l4"], T0 + 1, people=["@ann"])  # ann again
    await live.presence_add_many("s1", [], T0 + 2, people=["~c2"])  # people alone
    assert await live.presence_people("s1") == 3
    assert await live.presence_unique("s1") == 4  # members: one per join
    assert await live.presence_count("s1", T0 + 2, 3 * BUCKET_S) == 4
    assert await live.presence_people("s2") == 0
    await live.drop_space("s1")
    assert await live.presence_people("s1") == 0


async def test_audience_keeps_only_members_heard_since(live: LiveState) -> None:
    for i in range(4):
        await live.audience_add("s1", f"l{i} h{i}", T0 + i, cap=10)
    # l1 and l3 are heard later; "l9 h9" was never added, so it is not added now.
    await live.audience_heard_many("s1", ["l1 h1", "l3 h3", "l9 h9"], T0 + 30)
    page = await live.audience_page("s1", None, 10, heard_since=T0 + 20)
    assert page == [("l3 h3", T0 + 3), ("l1 h1", T0 + 1)]  # join times, newest first
    # The silent ones were removed, not only left off this page.
    assert [m for m, _ in await live.audience_page("s1", None, 10)] == ["l3 h3", "l1 h1"]
    # Joining counts as being heard; a later heartbeat moves it on.
    await live.audience_add("s1", "l5 h5", T0 + 40, cap=10)
    page = await live.audience_page("s1", None, 10, heard_since=T0 + 35)
    assert [m for m, _ in page] == ["l5 h5"]
    # Paging goes on by join time, with the same pruning.
    for i in range(6, 9):
        await live.audience_add("s1", f"l{i} h{i}", T0 + 40 + i, cap=10)
    first = await live.audience_page("s1", None, 2, heard_since=T0 + 35)
    rest = await live.audience_page("s1", first[-1][1], 10, heard_since=T0 + 35)
    assert [m for m, _ in first + rest] == ["l8 h8", "l7 h7", "l6 h6", "l5 h5"]
    assert await live.audience_page("s1", None, 0, heard_since=T0 + 35) == []


async def test_audience_forgets_trimmed_and_removed_members_heard_later(live: LiveState) -> None:
    for i in range(3):
        await live.audience_add("s1", f"l{i} h{i}", T0 + i, cap=2)  # l0 trimmed
    await live.audience_remove("s1", ["l2 h2"])
    await live.audience_heard_many("s1", ["l0 h0", "l1 h1", "l2 h2"], T0 + 10)
    page = await live.audience_page("s1", None, 10, heard_since=T0 + 5)
    assert page == [("l1 h1", T0 + 1)]
    await live.audience_heard_many("s2", ["l1 h1"], T0 + 10)  # an unknown space: nothing
    assert await live.audience_page("s2", None, 10, heard_since=0.0) == []


# -- reactions -------------------------------------------------------------------------


async def test_reactions_are_summed_per_emoji_over_the_window(live: LiveState) -> None:
    assert await live.reactions("s1", T0, 10) == {}
    await live.react("s1", "👏", T0)
    await live.react("s1", "👏", T0 + 0.5, count=2)
    await live.react("s1", "🔥", T0 + 1, count=3)
    await live.react("s1", "👏", T0 + 10.9)
    await live.react("s2", "👏", T0 + 10)
    now = T0 + 10.9
    assert await live.reactions("s1", now, 1) == {"👏": 1}
    assert await live.reactions("s1", now, 5) == {"👏": 1}
    assert await live.reactions("s1", now, 10) == {"👏": 1, "🔥": 3}  # seconds T0+1 … T0+10
    assert await live.reactions("s1", now, 11) == {"👏": 4, "🔥": 3}
    assert await live.reactions("s1", now, 0) == {}
    assert await live.reactions("s1", T0 + 300, 60) == {}


# -- token buckets ---------------------------------------------------------------------


async def test_token_bucket_allows_a_burst_then_refills(live: LiveState) -> None:
    async def take(now: float, cost: float = 1.0) -> tuple[bool, float]:
        d = await live.take("u1", rate=2.0, burst=3.0, now=now, cost=cost)
        return d.allowed, d.retry_after

    assert [await take(T0) for _ in range(3)] == [(True, 0.0)] * 3
    allowed, retry = await take(T0)
    assert not allowed
    assert retry == pytest.approx(0.5)
    allowed, retry = await take(T0 + 0.25)
    assert not allowed
    assert retry == pytest.approx(0.25)
    assert await take(T0 + 0.5) == (True, 0.0)
    allowed, retry = await take(T0 + 0.5)
    assert not allowed
    assert retry == pytest.approx(0.5)
    # a long pause refills to the burst, not beyond
    assert [(await take(T0 + 100))[0] for _ in range(4)] == [True, True, True, False]


async def test_token_bucket_cost_and_keys(live: LiveState) -> None:
    d = await live.take("u1", rate=1.0, burst=3.0, now=T0, cost=2)
    assert d.allowed
    d = await live.take("u1", rate=1.0, burst=3.0, now=T0, cost=2)
    assert not d.allowed
    assert d.retry_after == pytest.approx(1.0)  # until 2 tokens: 1 left, 1 token/s
    d = await live.take("u2", rate=1.0, burst=3.0, now=T0, cost=3)
    assert d.allowed  # another key, another bucket
    d = await live.take("u1", rate=1.0, burst=3.0, now=T0 - 10)  # a clock behind: no refill
    assert d.allowed  # the one token left
    d = await live.take("u1", rate=1.0, burst=3.0, now=T0)
    assert not d.allowed
    assert d.retry_after == pytest.approx(1.0)


async def test_token_bucket_rejects_impossible_arguments(live: LiveState) -> None:
    for kwargs in ({"rate": 0.0, "burst": 1.0}, {"rate": 1.0, "burst": 0.0}):
        with pytest.raises(PnyxError) as err:
            await live.take("u1", now=T0, **kwargs)
        assert err.value.kind is ErrorKind.INVALID
    with pytest.raises(PnyxError) as err:
        await live.take("u1", rate=1.0, burst=2.0, now=T0, cost=3.0)
    assert err.value.kind is ErrorKind.INVALID


# -- leases ----------------------------------------------------------------------------


async def test_lease_is_exclusive_renewable_and_released_by_its_holder(
    live_pair: tuple[LiveState, LiveState],
) -> None:
    a, b = live_pair
    assert await a.holder("stage:s1") is None
    lease = await a.acquire("stage:s1", "node-a", 10.0)
    assert lease is not None
    assert (lease.name, lease.holder) == ("stage:s1", "node-a")
    assert await b.acquire("stage:s1", "node-b", 10.0) is None
    assert await b.holder("stage:s1") == lease
    assert await a.acquire("stage:s1", "node-a", 10.0) == lease  # re-acquire: same token
    assert await a.renew(lease, 10.0)
    # only the holder with the right token can release
    await b.release(Lease("stage:s1", "node-b", lease.token))
    await b.release(Lease("stage:s1", "node-a", lease.token + 1))
    assert await b.holder("stage:s1") == lease
    assert not await b.renew(Lease("stage:s1", "node-b", lease.token), 10.0)
    await a.release(lease)
    assert await b.holder("stage:s1") is None
    assert not await a.renew(lease, 10.0)
    taken = await b.acquire("stage:s1", "node-b", 10.0)
    assert taken is not None
    assert taken.token > lease.token


async def test_lease_expires_and_the_old_holder_cannot_renew_or_release(
    live_pair: tuple[LiveState, LiveState],
) -> None:
    a, b = live_pair
    lease = await a.acquire("stage:s1", "node-a", 0.2)
    assert lease is not None

    async def lapsed() -> Seen:
        held = await b.holder("stage:s1")
        return Seen(held is None, f"held: {held}")

    await eventually(lapsed, SOON_S, "the lease to expire")
    assert not await a.renew(lease, 10.0)
    taken = await b.acquire("stage:s1", "node-b", 10.0)
    assert taken is not None
    assert taken.token > lease.token
    assert not await a.renew(lease, 10.0)
    await a.release(lease)
    assert await a.holder("stage:s1") == taken


async def test_renewing_keeps_a_short_lease(live: LiveState) -> None:
    lease = await live.acquire("stage:s1", "node-a", 0.4)
    assert lease is not None
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert await live.renew(lease, 0.4)
        await asyncio.sleep(0.1)
    assert await live.holder("stage:s1") == lease


async def test_fencing_tokens_strictly_increase_across_holders(
    live_pair: tuple[LiveState, LiveState],
) -> None:
    tokens = []
    for i in range(6):
        node = live_pair[i % 2]
        lease = await node.acquire("stage:s1", f"node-{i}", 10.0)
        assert lease is not None
        tokens.append(lease.token)
        await node.release(lease)
    assert tokens == sorted(set(tokens))
    other = await live_pair[0].acquire("stage:s2", "node-x", 10.0)  # another name, own fence
    assert other is not None


# -- pub/sub ---------------------------------------------------------------------------


async def next_message(messages: AsyncIterator[bytes], within: float = 3.0) -> bytes:
    return await asyncio.wait_for(anext(messages), within)


async def test_published_messages_reach_every_subscriber_in_order(
    live_pair: tuple[LiveState, LiveState],
) -> None:
    a, b = live_pair
    async with (
        b.subscribe("stage:s1") as first,
        a.subscribe("stage:s1") as second,
        b.subscribe("stage:s2") as elsewhere,
    ):
        for i in range(5):
            await a.publish("stage:s1", f"m{i}".encode())
        for messages in (first, second):
            assert [await next_message(messages) for _ in range(5)] == [
                f"m{i}".encode() for i in range(5)
            ]
        await a.publish("stage:s2", b"other")
        assert await next_message(elsewhere) == b"other"


async def test_slow_subscriber_drops_the_oldest(live_pair: tuple[LiveState, LiveState]) -> None:
    a, b = live_pair
    total = QUEUE + 12
    async with b.subscribe("stage:s1") as messages:
        for i in range(total):
            await a.publish("stage:s1", str(i).encode())

        async def all_arrived() -> Seen:
            dropped = getattr(messages, "dropped", 0)
            return Seen(dropped == total - QUEUE, f"{dropped} dropped")

        await eventually(all_arrived, SOON_S, f"{total - QUEUE} drops")
        got = [int(await next_message(messages)) for _ in range(QUEUE)]
        assert got == list(range(total - QUEUE, total))  # the newest survive, in order


async def test_publish_without_subscribers_and_after_leaving(live: LiveState) -> None:
    await live.publish("nobody", b"x")
    async with live.subscribe("stage:s1") as messages:
        await live.publish("stage:s1", b"1")
        assert await next_message(messages) == b"1"
    await live.publish("stage:s1", b"2")  # nobody listens any more: fine


async def test_closing_the_live_state_ends_subscriptions(live: LiveState) -> None:
    async with live.subscribe("stage:s1") as messages:
        await live.publish("stage:s1", b"last")
        assert await next_message(messages) == b"last"
        received = []

        async def drain() -> None:
            async for m in messages:
                received.append(m)

        reader = asyncio.create_task(drain())
        assert await still_pending(reader, 0.1)
        await live.close()
        await asyncio.wait_for(reader, timeout=3.0)
        assert received == []
    with pytest.raises(PnyxError) as err:
        async with live.subscribe("stage:s1"):
            pass
    assert err.value.kind is ErrorKind.UNAVAILABLE


# -- blobs -----------------------------------------------------------------------------


async def test_blobs_are_stored_until_their_ttl(live: LiveState) -> None:
    assert await live.get_blob("s1/missing") is None
    await live.put_blob("s1/part-1.m4s", b"\x00\x01media", 60.0)
    await live.put_blob("s1/short", b"brief", 0.2)
    assert await live.get_blob("s1/part-1.m4s") == b"\x00\x01media"
    assert await live.get_blob("s1/short") == b"brief"

    async def gone() -> bool:
        return await live.get_blob("s1/short") is None

    await eventually(gone, SOON_S, "the blob to expire")
    assert await live.get_blob("s1/part-1.m4s") == b"\x00\x01media"
    await live.put_blob("s1/part-1.m4s", b"replaced", 60.0)
    assert await live.get_blob("s1/part-1.m4s") == b"replaced"


# -- drop_space, ping ------------------------------------------------------------------


async def test_drop_space_forgets_the_space_and_only_it(live: LiveState) -> None:
    for space in ("s1", "s10", "s1:x"):
        await live.put_part(space, "room", {"space": space}, 1)
        await live.presence_add(space, "ann", T0)
        await live.react(space, "👏", T0)
        await live.put_blob(blob_key(space, "live.m3u8"), space.encode(), 60.0)
    lease = await live.acquire("stage:s1", "node-a", 10.0)
    await live.drop_space("s1")
    assert await live.get_snapshot("s1") is None
    assert await live.presence_count("s1", T0, 30) == 0
    assert await live.reactions("s1", T0, 10) == {}
    assert await live.get_blob(blob_key("s1", "live.m3u8")) is None
    assert await live.holder("stage:s1") == lease  # leases are their owners' business
    for other in ("s10", "s1:x"):  # neighbours with similar names are untouched
        assert await live.get_snapshot(other) is not None
        assert await live.presence_count(other, T0, 30) == 1
        assert await live.reactions(other, T0, 10) == {"👏": 1}
        assert await live.get_blob(blob_key(other, "live.m3u8")) == other.encode()
    # the space starts again from version 1
    assert await live.put_part("s1", "room", {"again": True}, 1) == 1
    await live.drop_space("never-existed")


async def test_drop_space_forgets_its_playlist_state_too(live: LiveState) -> None:
    for space in ("s1", "s10"):
        await live.put_part(hls_key(space), "playlist", {"ended": True}, 1)
    await live.drop_space("s1")
    assert await live.get_snapshot(hls_key("s1")) is None
    assert await live.get_snapshot(hls_key("s10")) is not None


# -- expire_space ------------------------------------------------------------------------


async def _fill(live: LiveState, space: str) -> None:
    """Something of every kind a space holds."""
    await live.put_part(space, "room", {"space": space, "status": "ended"}, 1)
    await live.put_part(hls_key(space), "playlist", {"ended": True}, 1)
    await live.presence_add_many(space, ["l1", "l2"], T0, people=["@ann"])
    await live.presence_leave_many(space, ["l2"], T0)
    await live.audience_add(space, "l1 ann", T0, cap=10)
    await live.react(space, "👏", T0)
    await live.put_blob(blob_key(space, "live.m3u8"), space.encode(), 60.0)


async def _holds_nothing(live: LiveState, space: str) -> Seen:
    held = {
        "snapshot": await live.get_snapshot(space) is not None,
        "playlist": await live.get_snapshot(hls_key(space)) is not None,
        "presence": await live.presence_count(space, T0, 30) > 0,
        "unique": await live.presence_unique(space) > 0,
        "people": await live.presence_people(space) > 0,
        "audience": await live.audience_page(space, None, 10) != [],
        "reactions": await live.reactions(space, T0, 10) != {},
        "blob": await live.get_blob(blob_key(space, "live.m3u8")) is not None,
    }
    left = sorted(name for name, there in held.items() if there)
    return Seen(not left, f"{space} still holds {left}")


async def _holds_everything(live: LiveState, space: str) -> None:
    snap = await live.get_snapshot(space)
    assert snap is not None
    assert snap.parts["room"] == {"space": space, "status": "ended"}
    playlist = await live.get_snapshot(hls_key(space))
    assert playlist is not None
    assert playlist.parts["playlist"] == {"ended": True}
    assert await live.presence_count(space, T0, 30) == 1
    assert await live.presence_unique(space) == 2
    assert await live.presence_people(space) == 1
    assert await live.audience_page(space, None, 10) == [("l1 ann", T0)]
    assert await live.reactions(space, T0, 10) == {"👏": 1}
    assert await live.get_blob(blob_key(space, "live.m3u8")) == space.encode()


async def test_expire_space_lets_the_space_go_after_the_ttl_and_only_it(
    live: LiveState,
) -> None:
    for space in ("s1", "s10", "s1:x"):
        await _fill(live, space)
    for space in ("s1", "s10"):  # stage leases, let go (their fencing counters stay)
        lease = await live.acquire(lease_name(space), "node-a", 10.0)
        assert lease is not None and lease.token == 1
        await live.release(lease)
    await live.expire_space("s1", 0.5, leases=[lease_name("s1")])
    await _holds_everything(live, "s1")  # meanwhile it reads as before
    await eventually(lambda: _holds_nothing(live, "s1"), SOON_S, "s1 to expire")
    for other in ("s10", "s1:x"):  # neighbours with similar names are untouched
        await _holds_everything(live, other)
    again = await live.acquire(lease_name("s1"), "node-a", 10.0)
    assert again is not None and again.token == 1  # its fencing counter went too
    other = await live.acquire(lease_name("s10"), "node-a", 10.0)
    assert other is not None and other.token == 2
    assert await live.put_part("s1", "room", {"again": True}, 1) == 1  # from version 1


async def test_expire_space_never_keeps_anything_longer(live: LiveState) -> None:
    await live.put_part("s1", "room", {}, 1, ttl_s=0.3)
    await live.put_blob(blob_key("s1", "part.m4s"), b"x", 0.3)
    await live.put_blob(blob_key("s1", "init.mp4"), b"i", 60.0)
    await live.put_blob(blob_key("s1", "analytics"), b"a", 60.0)
    await live.expire_space("s1", 60.0)  # sooner expiries stand
    await live.expire_space("s1", 0.5, keep=[blob_key("s1", "analytics")])
    await live.expire_space("s1", 60.0)  # and so does the shorter TTL just given

    async def gone() -> Seen:
        left = [
            await live.get_snapshot("s1"),
            await live.get_blob(blob_key("s1", "part.m4s")),
            await live.get_blob(blob_key("s1", "init.mp4")),
        ]
        return Seen(left == [None, None, None], f"left: {left}")

    await eventually(gone, SOON_S, "the snapshot and blobs of s1 to expire")
    assert await live.get_blob(blob_key("s1", "analytics")) == b"a"  # kept: its own TTL
    await live.expire_space("never-existed", 0.1)  # a no-op
    assert await live.get_snapshot("never-existed") is None


async def test_a_part_put_with_a_ttl_expires_its_snapshot(live: LiveState) -> None:
    assert await live.put_part("s1", "room", {"status": "ended"}, 1, ttl_s=0.5) == 1
    assert await live.put_part("s1", "stats", {"listeners": 0}, 1) == 2  # keeps the TTL
    await live.put_part("s2", "room", {"rev": 5}, 5)
    assert await live.put_part("s2", "room", {"rev": 4}, 4, ttl_s=0.1) is None  # stale: no TTL
    snap = await live.get_snapshot("s1")
    assert snap is not None and snap.version == 2

    async def gone() -> bool:
        return await live.get_snapshot("s1") is None

    await eventually(gone, SOON_S, "the snapshot put with a TTL to expire")
    kept = await live.get_snapshot("s2")
    assert kept is not None and kept.parts["room"] == {"rev": 5}
    assert await live.put_part("s1", "room", {"status": "ended"}, 1) == 1  # anew, for good
    assert await live.wait_snapshot("s1", after=0, timeout=0.1) is not None


async def test_ping(live: LiveState) -> None:
    assert await live.ping() is True
