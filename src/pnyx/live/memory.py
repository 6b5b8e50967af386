"""The in-process live state: the embedded default, and the reference implementation.

Everything lives in dicts on one event loop, so no method needs a lock: none of them
awaits while it changes state. Nothing runs in the background either: expired and aged
data is pruned as a side effect of writes (every ``_SWEEP_EVERY_S`` of the callers'
``now`` for the time-bucketed data; a heap of expiry times for blobs), and waiters are
woken by the write that concerns them, never by polling. Spaces let go by ``expire_space``
(and snapshots put with a TTL) are in a heap of deadlines too, reaped by the next call
that touches a space or a blob once their time has come.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import math
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from pnyx.errors import ErrorKind, PnyxError
from pnyx.live import token_bucket, windows
from pnyx.live.base import JSON, EncodedJSON, Lease, RateDecision, Snapshot
from pnyx.live.codec import encode_doc, ttl_ms
from pnyx.live.hll import HyperLogLog
from pnyx.live.keys import blob_belongs, snapshot_keys
from pnyx.live.subscription import DEFAULT_QUEUE_SIZE, Subscription

_SWEEP_EVERY_S = 30.0  # of the callers' ``now``: how often aged buckets are pruned


@dataclass(slots=True)
class _Snap:
    version: int = 0
    parts: dict[str, str] = field(default_factory=dict)  # part -> JSON text
    part_versions: dict[str, int] = field(default_factory=dict)
    expires: float = math.inf  # time.monotonic(): put_part's ttl_s, expire_space


@dataclass(slots=True)
class _Watch:
    """The waiters of one space: a fresh event per snapshot change (set, then replaced)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: int = 0


@dataclass(slots=True)
class _Held:
    holder: str
    token: int
    expires: float  # time.monotonic()


class _Due(StrEnum):
    """What a deadline in ``MemoryLiveState._due`` ends."""

    SNAPSHOT = "snapshot"  # one snapshot key
    SPACE = "space"  # the rest of a space (expire_space)
    FENCE = "fence"  # a lease's fencing counter (expire_space's leases)


class MemoryLiveState:
    """Live state for one process (see ``base.LiveState`` for the contract)."""

    def __init__(
        self, presence_bucket_s: float = 5.0, *, subscriber_queue: int = DEFAULT_QUEUE_SIZE
    ) -> None:
        if not presence_bucket_s > 0:
            raise ValueError("presence_bucket_s must be > 0")
        self.presence_bucket_s = presence_bucket_s
        self._queue_size = subscriber_queue
        self._closed = False
        self._snaps: dict[str, _Snap] = {}
        self._watches: dict[str, _Watch] = {}
        self._presence: dict[str, dict[int, HyperLogLog]] = {}
        self._gone: dict[str, dict[int, HyperLogLog]] = {}  # presence_leave_many
        self._unique: dict[str, HyperLogLog] = {}
        self._people: dict[str, HyperLogLog] = {}  # presence_people
        self._audience: dict[str, dict[str, float]] = {}  # member -> join time
        self._heard: dict[str, dict[str, float]] = {}  # member -> last heard (same members)
        self._reactions: dict[str, dict[int, dict[str, int]]] = {}
        self._buckets: dict[str, token_bucket.Bucket] = {}
        self._leases: dict[str, _Held] = {}
        self._fences: dict[str, int] = {}
        self._channels: dict[str, set[Subscription]] = {}
        self._blobs: dict[str, tuple[bytes, float]] = {}
        self._blob_expiry: list[tuple[float, str]] = []  # heap of (expires, key)
        # expire_space: space -> when its data goes; lease name -> when its fence goes
        self._space_deadlines: dict[str, float] = {}
        self._fence_deadlines: dict[str, float] = {}
        self._due: list[tuple[float, _Due, str]] = []  # heap of (deadline, what, key)
        self._last_sweep = -math.inf

    # -- lifecycle -------------------------------------------------------------------
    async def close(self) -> None:
        """End every open subscription. The data is simply dropped with the object."""
        self._closed = True
        for subs in self._channels.values():
            for sub in subs:
                sub.close()
        self._channels.clear()

    async def ping(self) -> bool:
        return not self._closed

    # -- versioned state snapshot per space -------------------------------------------
    async def put_part(
        self,
        space: str,
        part: str,
        doc: JSON | EncodedJSON,
        part_version: int,
        *,
        ttl_s: float | None = None,
    ) -> int | None:
        text = encode_doc(doc)
        self._reap()
        snap = self._snaps.setdefault(space, _Snap())
        stored = snap.part_versions.get(part)
        if stored is not None and stored >= part_version:
            return None
        snap.parts[part] = text
        snap.part_versions[part] = part_version
        snap.version += 1
        if ttl_s is not None:
            snap.expires = time.monotonic() + ttl_ms(ttl_s) / 1000
            heapq.heappush(self._due, (snap.expires, _Due.SNAPSHOT, space))
        self._notify(space)
        return snap.version

    async def get_snapshot(self, space: str) -> Snapshot | None:
        return self._snapshot(space)

    def _snapshot(self, space: str) -> Snapshot | None:
        self._reap()
        snap = self._snaps.get(space)
        if snap is None or snap.version == 0:
            return None
        parts = {name: json.loads(text) for name, text in snap.parts.items()}
        return Snapshot(snap.version, parts)

    async def wait_snapshot(
        self,
        space: str,
        after: int,
        timeout: float,  # noqa: ASYNC109 (the protocol's signature)
    ) -> Snapshot | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        watch = self._watches.get(space)
        if watch is None:
            watch = self._watches[space] = _Watch()
        watch.waiters += 1
        try:
            while True:
                event = watch.event  # taken before the check: a change after it sets it
                snap = self._snapshot(space)
                if snap is not None and snap.version > after:
                    return snap
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                try:
                    async with asyncio.timeout(remaining):
                        await event.wait()
                except TimeoutError:
                    pass  # one last look, then None
        finally:
            watch.waiters -= 1
            if watch.waiters == 0 and self._watches.get(space) is watch:
                del self._watches[space]

    def _notify(self, space: str) -> None:
        watch = self._watches.get(space)
        if watch is not None:
            watch.event.set()
            watch.event = asyncio.Event()

    async def drop_space(self, space: str) -> None:
        for key in snapshot_keys(space):
            self._snaps.pop(key, None)
        self._forget_data(space)
        for key in [k for k in self._blobs if blob_belongs(k, space)]:
            del self._blobs[key]
        self._notify(space)  # waiters look again (and find nothing newer)

    def _forget_data(self, space: str) -> None:
        """Everything of the space but its snapshots and blobs."""
        self._space_deadlines.pop(space, None)
        self._presence.pop(space, None)
        self._gone.pop(space, None)
        self._unique.pop(space, None)
        self._people.pop(space, None)
        self._audience.pop(space, None)
        self._heard.pop(space, None)
        self._reactions.pop(space, None)

    async def expire_space(
        self,
        space: str,
        ttl_s: float,
        *,
        leases: Iterable[str] = (),
        keep: Iterable[str] = (),
        blobs: Iterable[str] | None = None,  # each blob of the space is in hand anyway
    ) -> None:
        self._reap()
        deadline = time.monotonic() + ttl_ms(ttl_s) / 1000
        kept = set(keep)
        for key, (data, expires) in list(self._blobs.items()):
            if deadline < expires and blob_belongs(key, space) and key not in kept:
                self._blobs[key] = (data, deadline)
                heapq.heappush(self._blob_expiry, (deadline, key))
        for key in snapshot_keys(space):
            snap = self._snaps.get(key)
            if snap is not None and deadline < snap.expires:
                snap.expires = deadline
                heapq.heappush(self._due, (deadline, _Due.SNAPSHOT, key))
        if deadline < self._space_deadlines.get(space, math.inf):
            self._space_deadlines[space] = deadline
            heapq.heappush(self._due, (deadline, _Due.SPACE, space))
        for name in leases:
            if name in self._fences and deadline < self._fence_deadlines.get(name, math.inf):
                self._fence_deadlines[name] = deadline
                heapq.heappush(self._due, (deadline, _Due.FENCE, name))

    def _reap(self) -> None:
        """Forget the snapshots, spaces and fences whose deadline has passed (an entry
        whose deadline moved since is left to its newer one)."""
        due = self._due
        if not due or due[0][0] > time.monotonic():
            return
        now = time.monotonic()
        while due and due[0][0] <= now:
            deadline, what, key = heapq.heappop(due)
            if what is _Due.SNAPSHOT:
                snap = self._snaps.get(key)
                if snap is not None and snap.expires == deadline:
                    del self._snaps[key]
                    self._notify(key)
            elif what is _Due.SPACE:
                if self._space_deadlines.get(key) == deadline:
                    self._forget_data(key)
            elif self._fence_deadlines.get(key) == deadline:
                del self._fence_deadlines[key]
                self._fences.pop(key, None)

    # -- presence ---------------------------------------------------------------------
    async def presence_add(self, space: str, member: str, now: float) -> None:
        await self.presence_add_many(space, (member,), now)

    async def presence_add_many(
        self, space: str, members: Iterable[str], now: float, people: Iterable[str] = ()
    ) -> None:
        """``presence_add`` for many members at once."""
        self._reap()
        members = list(members)
        if members:
            self._bucket(self._presence, space, now).update(members)
            self._unique.setdefault(space, HyperLogLog()).update(members)
        people = list(people)
        if people:
            self._people.setdefault(space, HyperLogLog()).update(people)
        self._maybe_sweep(now)

    async def presence_leave_many(self, space: str, members: Iterable[str], now: float) -> None:
        self._reap()
        self._bucket(self._gone, space, now).update(members)
        self._maybe_sweep(now)

    def _bucket(
        self, table: dict[str, dict[int, HyperLogLog]], space: str, now: float
    ) -> HyperLogLog:
        bucket = windows.presence_bucket(now, self.presence_bucket_s)
        buckets = table.setdefault(space, {})
        sketch = buckets.get(bucket)
        if sketch is None:
            sketch = buckets[bucket] = HyperLogLog()
            oldest = bucket - windows.presence_keep_buckets(self.presence_bucket_s)
            for old in [b for b in buckets if b < oldest]:
                del buckets[old]
        return sketch

    async def presence_count(self, space: str, now: float, window_s: float) -> int:
        self._reap()
        span = windows.presence_buckets(now, window_s, self.presence_bucket_s)
        added = self._presence.get(space, {})
        gone = self._gone.get(space, {})
        sketches = [added[b] for b in span if b in added]
        if not sketches:
            return 0
        left = [gone[b] for b in span if b in gone]
        if not left:
            return HyperLogLog.union(sketches).count()
        left_count = HyperLogLog.union(left).count()
        return max(0, HyperLogLog.union(sketches + left).count() - left_count)

    async def presence_unique(self, space: str) -> int:
        self._reap()
        sketch = self._unique.get(space)
        return 0 if sketch is None else sketch.count()

    async def presence_people(self, space: str) -> int:
        self._reap()
        sketch = self._people.get(space)
        return 0 if sketch is None else sketch.count()

    # -- audience ---------------------------------------------------------------------
    async def audience_add(self, space: str, member: str, score: float, cap: int) -> None:
        self._reap()
        members = self._audience.setdefault(space, {})
        members[member] = score
        self._heard.setdefault(space, {})[member] = score
        if len(members) > cap:  # trim on write: drop the lowest scores
            ranked = sorted(members.items(), key=lambda kv: (kv[1], kv[0]))
            await self.audience_remove(space, [m for m, _ in ranked[:-cap]])

    async def audience_heard_many(self, space: str, members: Iterable[str], now: float) -> None:
        self._reap()
        heard = self._heard.get(space)
        if heard is None:
            return
        for member in members:
            if member in heard:
                heard[member] = max(heard[member], now)

    async def audience_remove(self, space: str, members: Iterable[str]) -> None:
        held = self._audience.get(space)
        if held is None:
            return
        heard = self._heard.get(space, {})
        for member in members:
            held.pop(member, None)
            heard.pop(member, None)
        if not held:
            del self._audience[space]
            self._heard.pop(space, None)

    async def audience_page(
        self, space: str, before: float | None, limit: int, heard_since: float | None = None
    ) -> list[tuple[str, float]]:
        self._reap()
        if heard_since is not None:
            heard = self._heard.get(space, {})
            stale = [m for m, at in heard.items() if at < heard_since]
            if stale:
                await self.audience_remove(space, stale)
        held = self._audience.get(space, {})
        rows = [(m, s) for m, s in held.items() if before is None or s < before]
        rows.sort(key=lambda kv: (kv[1], kv[0]), reverse=True)
        return rows[: max(0, limit)]

    # -- reactions --------------------------------------------------------------------
    async def react(self, space: str, emoji: str, now: float, count: int = 1) -> None:
        self._reap()
        second = windows.reaction_second(now)
        seconds = self._reactions.setdefault(space, {})
        counts = seconds.get(second)
        if counts is None:
            counts = seconds[second] = {}
            oldest = second - windows.REACTION_RETENTION_S
            for old in [s for s in seconds if s < oldest]:
                del seconds[old]
        counts[emoji] = counts.get(emoji, 0) + count
        self._maybe_sweep(now)

    async def reactions(self, space: str, now: float, window_s: int) -> dict[str, int]:
        self._reap()
        seconds = self._reactions.get(space, {})
        totals: dict[str, int] = {}
        for second in windows.reaction_seconds(now, window_s):
            for emoji, n in seconds.get(second, {}).items():
                totals[emoji] = totals.get(emoji, 0) + n
        return totals

    # -- rate limits ------------------------------------------------------------------
    async def take(
        self, key: str, *, rate: float, burst: float, now: float, cost: float = 1.0
    ) -> RateDecision:
        bucket, decision = token_bucket.take(
            self._buckets.get(key), rate=rate, burst=burst, now=now, cost=cost
        )
        self._buckets[key] = bucket
        self._maybe_sweep(now)
        return decision

    # -- leases -----------------------------------------------------------------------
    def _current(self, name: str) -> _Held | None:
        held = self._leases.get(name)
        if held is not None and held.expires <= time.monotonic():
            del self._leases[name]
            return None
        return held

    async def acquire(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        self._reap()
        expires = time.monotonic() + ttl_ms(ttl_s) / 1000
        held = self._current(name)
        if held is not None:
            if held.holder != holder:
                return None
            held.expires = expires
            return Lease(name, holder, held.token)
        token = self._fences.get(name, 0) + 1
        self._fences[name] = token
        self._leases[name] = _Held(holder, token, expires)
        return Lease(name, holder, token)

    async def renew(self, lease: Lease, ttl_s: float) -> bool:
        held = self._current(lease.name)
        if held is None or held.holder != lease.holder or held.token != lease.token:
            return False
        held.expires = time.monotonic() + ttl_ms(ttl_s) / 1000
        return True

    async def release(self, lease: Lease) -> None:
        held = self._current(lease.name)
        if held is not None and held.holder == lease.holder and held.token == lease.token:
            del self._leases[lease.name]

    async def holder(self, name: str) -> Lease | None:
        held = self._current(name)
        return None if held is None else Lease(name, held.holder, held.token)

    # -- pub/sub ----------------------------------------------------------------------
    async def publish(self, channel: str, message: bytes) -> None:
        for sub in self._channels.get(channel, ()):
            sub.offer(message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        if self._closed:
            raise PnyxError(ErrorKind.UNAVAILABLE, "live state is closed")
        sub = Subscription(channel, self._queue_size)
        subs = self._channels.setdefault(channel, set())
        subs.add(sub)
        try:
            yield sub
        finally:
            sub.close()
            subs.discard(sub)
            if not subs and self._channels.get(channel) is subs:
                del self._channels[channel]

    # -- blobs ------------------------------------------------------------------------
    async def put_blob(self, key: str, data: bytes, ttl_s: float) -> None:
        self._reap()
        now = time.monotonic()
        self._expire_blobs(now)
        expires = now + ttl_ms(ttl_s) / 1000
        self._blobs[key] = (bytes(data), expires)
        heapq.heappush(self._blob_expiry, (expires, key))

    async def get_blob(self, key: str) -> bytes | None:
        self._reap()
        entry = self._blobs.get(key)
        if entry is None:
            return None
        data, expires = entry
        if expires <= time.monotonic():
            del self._blobs[key]
            return None
        return data

    def _expire_blobs(self, now: float) -> None:
        heap = self._blob_expiry
        while heap and heap[0][0] <= now:
            expires, key = heapq.heappop(heap)
            entry = self._blobs.get(key)
            if entry is not None and entry[1] == expires:  # not re-put since
                del self._blobs[key]

    # -- housekeeping -----------------------------------------------------------------
    def _maybe_sweep(self, now: float) -> None:
        """Every ``_SWEEP_EVERY_S`` of ``now``, forget what aged out in spaces and buckets
        that were not written since (writes prune their own space as they go)."""
        if now - self._last_sweep < _SWEEP_EVERY_S:
            return
        self._last_sweep = now
        oldest_bucket = windows.presence_bucket(
            now, self.presence_bucket_s
        ) - windows.presence_keep_buckets(self.presence_bucket_s)
        for table in (self._presence, self._gone):
            for space, buckets in list(table.items()):
                for b in [b for b in buckets if b < oldest_bucket]:
                    del buckets[b]
                if not buckets:
                    del table[space]
        oldest_second = windows.reaction_second(now) - windows.REACTION_RETENTION_S
        for space, seconds in list(self._reactions.items()):
            for s in [s for s in seconds if s < oldest_second]:
                del seconds[s]
            if not seconds:
                del self._reactions[space]
        for key in [k for k, b in self._buckets.items() if b.is_full(now)]:
            del self._buckets[key]
        self._reap()
        mono = time.monotonic()
        for name in [n for n, h in self._leases.items() if h.expires <= mono]:
            del self._leases[name]
        self._expire_blobs(mono)
