"""The Redis live state: what many nodes share (redis-py's asyncio client).

Every key and channel is under ``key_prefix`` (default ``pnyx:``), laid out as
``keys.py`` says (``keys.redis_key``, one ``keys.RedisKind`` per sort of data).

Snapshot waiters never get a connection each: one listener task per instance
(``_listen``, started by the first waiter, cancelled and awaited by ``close``) holds one
PSUBSCRIBE on ``snap:*`` and wakes the local waiters of the space a notification names.
Every node thus hears every space's (small, infrequent) notifications; in exchange there
is one subscription per node whatever the number of spaces and waiters. Waiters also look
at the version at least every ``_RECHECK_S``, so a lost notification (a reconnect) delays
them by at most that.

With a Sentinel URL (``redis_url.py``, ``sentinel.py``) every connection, the pub/sub
ones included, is made to the primary the Sentinels name at that moment: after a
failover the lost connections fail (``UNAVAILABLE``), and the next ones (the listener's
and subscriptions' reconnects too) go to the promoted replica. A former primary that
lives on as a replica answers writes with READONLY (redis-py then asks the Sentinels
again), and pub/sub connections still on it move once the pool knows the new primary
(``_follow_primary``).

The Lua scripts (the steps that must be atomic) are in ``redis_scripts.py``.

Redis errors are translated where they enter: ``PnyxError(ErrorKind.UNAVAILABLE)``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
from redis.exceptions import RedisError

from pnyx.errors import ErrorKind, PnyxError
from pnyx.live import redis_space, token_bucket, windows
from pnyx.live.base import JSON, EncodedJSON, Lease, RateDecision, Snapshot
from pnyx.live.codec import encode_doc, ttl_ms
from pnyx.live.keys import RedisKind, redis_key
from pnyx.live.redis_scripts import Scripts
from pnyx.live.redis_space import expire_all, glob_escape, space_keys, unlink_all
from pnyx.live.redis_url import SentinelTarget, is_sentinel_url, parse_sentinel_url
from pnyx.live.sentinel import sentinel_client
from pnyx.live.subscription import DEFAULT_QUEUE_SIZE, Subscription

log = logging.getLogger(__name__)

_RECHECK_S = 1.0  # a waiter looks at the version at least this often
_BACKOFF_MAX_S = 1.0  # listener/subscription reconnect backoff cap (a failover: ~3 s)
# A bounded pool: a burst of requests queues for a connection (up to 5 s) rather than
# opening thousands of them against Redis.
_POOL_OPTIONS: dict[str, Any] = {
    "timeout": 5.0,
    "socket_connect_timeout": 5.0,
    "socket_timeout": 10.0,
    "health_check_interval": 30,
}


@dataclass(slots=True)
class _Watch:
    event: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: int = 0


@dataclass(slots=True, eq=False)
class _Sub:
    queue: Subscription
    pubsub: aioredis.client.PubSub
    pump: asyncio.Task[None] | None = None


class RedisLiveState:
    """Live state shared through Redis (see ``base.LiveState`` for the contract)."""

    def __init__(
        self,
        url: str,
        presence_bucket_s: float = 5.0,
        key_prefix: str = "pnyx:",
        *,
        max_connections: int = 128,
        subscriber_queue: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        if not presence_bucket_s > 0:
            raise ValueError("presence_bucket_s must be > 0")
        self.presence_bucket_s = presence_bucket_s
        self.key_prefix = key_prefix
        self._queue_size = subscriber_queue
        self._sentinel: Sentinel | None = None
        self._target: SentinelTarget | None = None
        if is_sentinel_url(url):
            self._target = parse_sentinel_url(url)
            self._sentinel, self._redis = sentinel_client(
                self._target, max_connections=max_connections, **_POOL_OPTIONS
            )
        else:
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, **_POOL_OPTIONS
            )
            self._redis = aioredis.Redis.from_pool(pool)
        self._lua = Scripts.register(self._redis)
        self._closed = False
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()  # the listener's PSUBSCRIBE is confirmed
        self._watches: dict[str, _Watch] = {}
        self._subs: set[_Sub] = set()

    # -- keys -------------------------------------------------------------------------
    def _k(self, kind: RedisKind, *parts: str | int) -> str:
        return redis_key(self.key_prefix, kind, *parts)

    def _reason(self, exc: BaseException) -> str:
        """What went wrong, in one short line (redis-py's "no master" error quotes every
        Sentinel client's repr)."""
        if isinstance(exc, MasterNotFoundError) and self._target is not None:
            hosts = ",".join(f"{h}:{p}" for h, p in self._target.sentinels)
            return f"no Sentinel at {hosts} names a primary for {self._target.service!r}"
        return str(exc) or type(exc).__name__

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        """Translate Redis failures into the error kind the API maps to 503."""
        try:
            yield
        except (RedisError, OSError) as exc:
            raise PnyxError(
                ErrorKind.UNAVAILABLE,
                f"live state (Redis) unavailable: {self._reason(exc)}",
                retry_after=1.0,
            ) from exc

    # -- lifecycle -------------------------------------------------------------------
    async def close(self) -> None:
        """Stop the listener and every subscription, then close the connections."""
        if self._closed:
            return
        self._closed = True
        for space in list(self._watches):
            self._wake(space)  # waiters see the state closed and leave
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        for sub in list(self._subs):
            await self._end(sub)
        await self._redis.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()  # its connections to the Sentinels themselves

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

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
        key = self._k(RedisKind.SNAP, space)
        ttl = "" if ttl_s is None else ttl_ms(ttl_s)
        with self._unavailable():
            version = await self._lua.put_part(
                keys=[key], args=[part, text, int(part_version), key, ttl]
            )
        return None if version is None else int(version)

    async def get_snapshot(self, space: str) -> Snapshot | None:
        with self._unavailable():
            fields = await self._redis.hgetall(self._k(RedisKind.SNAP, space))
        version = fields.get(b"v")
        if version is None:
            return None
        parts = {
            _text(name)[2:]: json.loads(value)
            for name, value in fields.items()
            if _text(name).startswith("p:")
        }
        return Snapshot(int(version), parts)

    async def wait_snapshot(
        self,
        space: str,
        after: int,
        timeout: float,  # noqa: ASYNC109 (the protocol's signature)
    ) -> Snapshot | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._ensure_listener()
        watch = self._watches.get(space)
        if watch is None:
            watch = self._watches[space] = _Watch()
        watch.waiters += 1
        try:
            if not self._listening.is_set():
                # Let the listener subscribe first, so the first look below cannot miss
                # a change (bounded: the periodic re-check covers a slow subscribe).
                await _wait_event(self._listening, min(_RECHECK_S, deadline - loop.time()))
            while True:
                if self._closed:
                    raise PnyxError(ErrorKind.UNAVAILABLE, "live state (Redis) is closed")
                event = watch.event  # taken before the look: a change after it sets it
                snap = await self._newer(space, after)
                if snap is not None:
                    return snap
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                await _wait_event(event, min(remaining, _RECHECK_S))
        finally:
            watch.waiters -= 1
            if watch.waiters == 0 and self._watches.get(space) is watch:
                del self._watches[space]

    async def _newer(self, space: str, after: int) -> Snapshot | None:
        """The snapshot if its version is greater than ``after`` (one cheap HGET else)."""
        with self._unavailable():
            version = await self._redis.hget(self._k(RedisKind.SNAP, space), "v")
        if version is None or int(version) <= after:
            return None
        snap = await self.get_snapshot(space)
        return snap if snap is not None and snap.version > after else None

    def _ensure_listener(self) -> None:
        if self._closed:
            raise PnyxError(ErrorKind.UNAVAILABLE, "live state (Redis) is closed")
        if self._listener is None or self._listener.done():
            self._listening.clear()
            self._listener = asyncio.create_task(self._listen(), name="pnyx-live-listener")

    async def _listen(self) -> None:
        """Dispatch snapshot notifications to local waiters, until cancelled."""
        channel_prefix = self._k(RedisKind.SNAP, "").encode()
        pattern = glob_escape(self._k(RedisKind.SNAP, "")) + "*"
        pubsub = self._redis.pubsub()
        backoff = 0.1
        try:
            while True:
                try:
                    if not pubsub.subscribed:
                        await pubsub.psubscribe(pattern)
                    await self._follow_primary(pubsub)
                    message = await pubsub.get_message(timeout=_RECHECK_S)
                except (RedisError, OSError) as exc:
                    self._listening.clear()
                    log.warning(
                        "live state listener: %s; retrying in %.1fs", self._reason(exc), backoff
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX_S)
                    continue
                if message is None:
                    continue
                if message["type"] == "psubscribe":  # (re)subscribed: everyone looks again
                    backoff = 0.1
                    self._listening.set()
                    for space in list(self._watches):
                        self._wake(space)
                elif message["type"] == "pmessage":
                    channel: bytes = message["channel"]
                    if channel.startswith(channel_prefix):
                        self._wake(channel[len(channel_prefix) :].decode())
        finally:
            self._listening.clear()
            await pubsub.aclose()

    async def _follow_primary(self, pubsub: aioredis.client.PubSub) -> None:
        """Move a pub/sub connection left on a former primary to the one the pool now
        knows (after a Sentinel failover that kept the old one running as a replica: it
        still relays what is published, but not for long if it is being retired). Dropped
        here, it reconnects through the Sentinels and resubscribes."""
        pool = self._redis.connection_pool
        conn = pubsub.connection
        if not isinstance(pool, SentinelConnectionPool) or conn is None or not conn.is_connected:
            return
        primary = pool.master_address
        at = (getattr(conn, "host", None), getattr(conn, "port", None))
        if primary is not None and at != tuple(primary):
            log.info("live state: pub/sub leaves %s:%s for the new primary", *at)
            await conn.disconnect()

    def _wake(self, space: str) -> None:
        watch = self._watches.get(space)
        if watch is not None:
            watch.event.set()
            watch.event = asyncio.Event()

    async def drop_space(self, space: str) -> None:
        with self._unavailable():
            await unlink_all(self._redis, await space_keys(self._redis, self.key_prefix, space))

    async def expire_space(
        self,
        space: str,
        ttl_s: float,
        *,
        leases: Iterable[str] = (),
        keep: Iterable[str] = (),
        blobs: Iterable[str] | None = None,
    ) -> None:
        fences = [self._k(RedisKind.FENCE, name) for name in leases]
        kept = {self._k(RedisKind.BLOB, key).encode() for key in keep}
        scan = redis_space.outliving(ttl_s, blobs_named=blobs is not None)
        named = [self._k(RedisKind.BLOB, key) for key in blobs or ()]
        with self._unavailable():
            doomed = await space_keys(self._redis, self.key_prefix, space, scan=scan, blobs=named)
            doomed = [k for k in doomed if (k.encode() if isinstance(k, str) else k) not in kept]
            await expire_all(self._redis, [*doomed, *fences], ttl_ms(ttl_s))

    # -- presence ---------------------------------------------------------------------
    async def presence_add(self, space: str, member: str, now: float) -> None:
        key = self._k(
            RedisKind.PRESENCE, space, windows.presence_bucket(now, self.presence_bucket_s)
        )
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.pfadd(key, member)
                pipe.expire(key, redis_space.PRESENCE_TTL_S)
                pipe.pfadd(self._k(RedisKind.UNIQUE, space), member)
                pipe.expire(self._k(RedisKind.UNIQUE, space), redis_space.UNIQUE_TTL_S)
                await pipe.execute()

    async def presence_add_many(
        self, space: str, members: Iterable[str], now: float, people: Iterable[str] = ()
    ) -> None:
        """``presence_add`` for many members at once, and ``people`` into their sketch, in
        one round trip (a PFADD per thousand of each)."""
        key = self._k(
            RedisKind.PRESENCE, space, windows.presence_bucket(now, self.presence_bucket_s)
        )
        unique = self._k(RedisKind.UNIQUE, space)  # the whole-space sketch, same members
        everyone = self._k(RedisKind.PEOPLE, space)
        added, joined = list(members), list(people)
        if not added and not joined:
            return
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in range(0, len(added), 1000):
                    pipe.pfadd(key, *added[i : i + 1000])
                    pipe.pfadd(unique, *added[i : i + 1000])
                if added:
                    pipe.expire(key, redis_space.PRESENCE_TTL_S)
                    pipe.expire(unique, redis_space.UNIQUE_TTL_S)
                for i in range(0, len(joined), 1000):
                    pipe.pfadd(everyone, *joined[i : i + 1000])
                if joined:
                    pipe.expire(everyone, redis_space.UNIQUE_TTL_S)
                await pipe.execute()

    async def presence_leave_many(self, space: str, members: Iterable[str], now: float) -> None:
        gone = list(members)
        if not gone:
            return
        key = self._k(RedisKind.GONE, space, windows.presence_bucket(now, self.presence_bucket_s))
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in range(0, len(gone), 1000):
                    pipe.pfadd(key, *gone[i : i + 1000])
                pipe.expire(key, redis_space.PRESENCE_TTL_S)
                await pipe.execute()

    async def presence_count(self, space: str, now: float, window_s: float) -> int:
        span = windows.presence_buckets(now, window_s, self.presence_bucket_s)
        added = [self._k(RedisKind.PRESENCE, space, b) for b in span]
        gone = [self._k(RedisKind.GONE, space, b) for b in span]
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.pfcount(*added, *gone)
                pipe.pfcount(*gone)
                both, left = await pipe.execute()
        return max(0, int(both) - int(left))

    async def presence_unique(self, space: str) -> int:
        with self._unavailable():
            return int(await self._redis.pfcount(self._k(RedisKind.UNIQUE, space)))

    async def presence_people(self, space: str) -> int:
        with self._unavailable():
            return int(await self._redis.pfcount(self._k(RedisKind.PEOPLE, space)))

    # -- audience ---------------------------------------------------------------------
    def _audience_keys(self, space: str) -> list[str]:
        return [self._k(RedisKind.AUDIENCE, space), self._k(RedisKind.HEARD, space)]

    async def audience_add(self, space: str, member: str, score: float, cap: int) -> None:
        with self._unavailable():
            await self._lua.audience_add(
                keys=self._audience_keys(space),
                args=[member, repr(score), cap, redis_space.UNIQUE_TTL_S],
            )

    async def audience_heard_many(self, space: str, members: Iterable[str], now: float) -> None:
        heard = list(members)
        if not heard:
            return
        key = self._k(RedisKind.HEARD, space)
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in range(0, len(heard), 1000):  # XX: only members held move on
                    pipe.zadd(key, dict.fromkeys(heard[i : i + 1000], now), xx=True)
                await pipe.execute()

    async def audience_remove(self, space: str, members: Iterable[str]) -> None:
        doomed = list(members)
        if doomed:
            with self._unavailable():
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key in self._audience_keys(space):
                        pipe.zrem(key, *doomed)
                    await pipe.execute()

    async def audience_page(
        self, space: str, before: float | None, limit: int, heard_since: float | None = None
    ) -> list[tuple[str, float]]:
        if limit <= 0 and heard_since is None:
            return []
        top = "+inf" if before is None else f"({before!r}"
        since = "" if heard_since is None else repr(heard_since)
        with self._unavailable():
            flat = await self._lua.audience_page(
                keys=self._audience_keys(space), args=[since, top, max(0, limit)]
            )
        rows = cast(list[bytes | str], flat)
        out: list[tuple[str, float]] = []
        for member, score in zip(rows[0::2], rows[1::2], strict=True):
            name = member.decode() if isinstance(member, bytes) else str(member)
            out.append((name, float(score)))
        return out

    # -- reactions --------------------------------------------------------------------
    async def react(self, space: str, emoji: str, now: float, count: int = 1) -> None:
        key = self._k(RedisKind.REACT, space, windows.reaction_second(now))
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(key, emoji, count)
                pipe.expire(key, redis_space.REACT_TTL_S)
                await pipe.execute()

    async def reactions(self, space: str, now: float, window_s: int) -> dict[str, int]:
        seconds = windows.reaction_seconds(now, window_s)
        if not seconds:
            return {}
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                for second in seconds:
                    pipe.hgetall(self._k(RedisKind.REACT, space, second))
                results = await pipe.execute()
        totals: dict[str, int] = {}
        for counts in results:
            for emoji, n in counts.items():
                name = _text(emoji)
                totals[name] = totals.get(name, 0) + int(n)
        return totals

    # -- rate limits ------------------------------------------------------------------
    async def take(
        self, key: str, *, rate: float, burst: float, now: float, cost: float = 1.0
    ) -> RateDecision:
        token_bucket.check_args(rate, burst, cost)
        with self._unavailable():
            allowed, retry = await self._lua.take(
                keys=[self._k(RedisKind.RATE, key)],
                args=[repr(rate), repr(burst), repr(now), repr(cost)],
            )
        return RateDecision(bool(allowed), float(retry) if not allowed else 0.0)

    # -- leases -----------------------------------------------------------------------
    async def acquire(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        with self._unavailable():
            token = await self._lua.acquire(
                keys=[self._k(RedisKind.LEASE, name), self._k(RedisKind.FENCE, name)],
                args=[holder, ttl_ms(ttl_s)],
            )
        return None if token is None else Lease(name, holder, int(token))

    async def renew(self, lease: Lease, ttl_s: float) -> bool:
        value = f"{lease.holder}|{lease.token}"
        with self._unavailable():
            ok = await self._lua.renew(
                keys=[self._k(RedisKind.LEASE, lease.name)], args=[value, ttl_ms(ttl_s)]
            )
        return bool(ok)

    async def release(self, lease: Lease) -> None:
        value = f"{lease.holder}|{lease.token}"
        with self._unavailable():
            await self._lua.release(keys=[self._k(RedisKind.LEASE, lease.name)], args=[value])

    async def holder(self, name: str) -> Lease | None:
        with self._unavailable():
            value = await self._redis.get(self._k(RedisKind.LEASE, name))
        if value is None:
            return None
        holder, _, token = _text(value).rpartition("|")
        return Lease(name, holder, int(token))

    # -- pub/sub ----------------------------------------------------------------------
    async def publish(self, channel: str, message: bytes) -> None:
        with self._unavailable():
            await self._redis.publish(self._k(RedisKind.CHAN, channel), message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        """One Redis connection per subscription (stage sockets are few), read by a pump
        task into a bounded drop-oldest queue. Yields once Redis confirmed the
        subscription, so anything published after entering is delivered."""
        if self._closed:
            raise PnyxError(ErrorKind.UNAVAILABLE, "live state (Redis) is closed")
        sub = _Sub(Subscription(channel, self._queue_size), self._redis.pubsub())
        self._subs.add(sub)
        try:
            with self._unavailable():
                await sub.pubsub.subscribe(self._k(RedisKind.CHAN, channel))
                async with asyncio.timeout(10.0):
                    while True:
                        confirm = await sub.pubsub.get_message(timeout=1.0)
                        if confirm is not None and confirm["type"] == "subscribe":
                            break
            sub.pump = asyncio.create_task(self._pump(sub), name=f"pnyx-live-sub:{channel}")
            yield sub.queue
        finally:
            await self._end(sub)

    async def _pump(self, sub: _Sub) -> None:
        backoff = 0.1
        while True:
            try:
                await self._follow_primary(sub.pubsub)
                message = await sub.pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=_RECHECK_S
                )
            except (RedisError, OSError) as exc:
                log.warning(
                    "subscription %s: %s; retrying in %.1fs",
                    sub.queue.channel,
                    self._reason(exc),
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            backoff = 0.1
            if message is not None and message["type"] == "message":
                sub.queue.offer(message["data"])

    async def _end(self, sub: _Sub) -> None:
        if sub not in self._subs:
            return
        self._subs.discard(sub)
        sub.queue.close()
        if sub.pump is not None:
            sub.pump.cancel()
            await asyncio.gather(sub.pump, return_exceptions=True)
        await sub.pubsub.aclose()

    # -- blobs ------------------------------------------------------------------------
    async def put_blob(self, key: str, data: bytes, ttl_s: float) -> None:
        with self._unavailable():
            await self._redis.set(self._k(RedisKind.BLOB, key), data, px=ttl_ms(ttl_s))

    async def get_blob(self, key: str) -> bytes | None:
        with self._unavailable():
            data = await self._redis.get(self._k(RedisKind.BLOB, key))
        return None if data is None else _bytes(data)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


async def _wait_event(event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event`` at most ``seconds`` (returning either way)."""
    if seconds <= 0:
        return
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass
