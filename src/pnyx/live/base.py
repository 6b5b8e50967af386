"""The live-state protocol: what every node shares, fast and short-lived.

One protocol, two implementations (docs/conventions.md, rule 6): ``memory.MemoryLiveState`` (the
embedded default and the reference) and ``redis.RedisLiveState`` (many nodes). The same
contract suite (tests/contract) runs against both. ``factory.open_live_state`` picks one.

Times that decide *which bucket* something falls in (presence, reactions, rate limits)
are passed in as ``now`` (seconds since the epoch, float), so the contract is testable
without sleeping. Expiry of leases and blobs uses each backend's own clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

JSON = dict[str, Any]


class EncodedJSON(str):
    """A snapshot part already encoded as compact JSON, exactly as the live state would
    encode the document (``codec.encode_doc``): a writer that builds its text
    incrementally hands it to :meth:`LiveState.put_part` as it is (the LL-HLS playlist
    state, rewritten with every part)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A space's versioned state document, assembled from named parts.

    ``version`` grows by one every time any part changes; ``parts`` maps a part name
    (e.g. "room", "stats") to its latest JSON document.
    """

    version: int
    parts: Mapping[str, JSON]


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    token: int  # fencing token: strictly greater for every new acquisition of ``name``


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: float  # seconds until one token is available (0.0 when allowed)


class LiveState(Protocol):
    # -- lifecycle -------------------------------------------------------------------
    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True when the backend answers (used by /healthz)."""
        ...

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
        """Store ``doc`` as ``part`` of the space's snapshot if ``part_version`` is greater
        than the part's stored version (so a late writer never overwrites a newer one).
        Returns the new snapshot version, or None when the write was stale and ignored.
        An :class:`EncodedJSON` is stored as it is (readers get the document it encodes).
        A snapshot has no expiry of its own; with ``ttl_s`` a write that is taken makes
        the whole snapshot expire ``ttl_s`` seconds later (the room of an ended space),
        and later writes without it keep that expiry."""
        ...

    async def get_snapshot(self, space: str) -> Snapshot | None:
        """The current snapshot, or None when nothing was ever stored for the space."""
        ...

    async def wait_snapshot(
        self,
        space: str,
        after: int,
        timeout: float,  # noqa: ASYNC109 (the timeout is the HTTP long-poll's budget)
    ) -> Snapshot | None:
        """Return as soon as the snapshot's version is greater than ``after`` (at once if
        it already is); None if that did not happen within ``timeout`` seconds."""
        ...

    async def drop_space(self, space: str) -> None:
        """Forget everything held for the space (its snapshots, ``keys.snapshot_keys``;
        counters, presence, audience, blobs made by ``keys.blob_key(space, …)``). Leases,
        rate-limit buckets and channels are not the space's: their owners end them."""
        ...

    async def expire_space(
        self,
        space: str,
        ttl_s: float,
        *,
        leases: Iterable[str] = (),
        keep: Iterable[str] = (),
        blobs: Iterable[str] | None = None,
    ) -> None:
        """Let everything ``drop_space`` would forget go ``ttl_s`` seconds from now, by
        the backend's clock: what is due sooner keeps its sooner expiry, nothing is kept
        longer. Meanwhile it reads as before (an ended space's last room and playlist).
        ``keep`` names blobs of the space left as they are (with their own TTLs).
        ``blobs``, when given, names the only blobs of the space that may be due later
        than ``ttl_s``: the caller knows every other one is due sooner, so the backend
        need not look for them (on Redis, a SCAN of the whole keyspace). None: every
        blob of the space is found.
        ``leases`` names leases whose owner is done with them for good (the stage lease
        of a space that ended): their fencing counters go too, so a later acquisition
        would start again from 1. Idempotent; a space with nothing held is a no-op.
        What is written for the space after the call may go with it, or keeps its own
        expiry (blobs do; a new snapshot written after its expiry has none)."""
        ...

    # -- presence: distinct listeners heard recently (HyperLogLog per time bucket) --------
    async def presence_add(self, space: str, member: str, now: float) -> None: ...

    async def presence_add_many(
        self, space: str, members: Iterable[str], now: float, people: Iterable[str] = ()
    ) -> None:
        """``presence_add`` for many members in one round trip (a process's batch);
        ``people`` (who joined: an account, a client, see ``presence_people``) go into the
        space's sketch of distinct people in the same round trip."""
        ...

    async def presence_leave_many(self, space: str, members: Iterable[str], now: float) -> None:
        """Mark members as gone: ``presence_count`` stops counting them at once, though
        they were added within its window (a listener who left, went on stage or was
        removed). Kept per bucket like presence; a member must not be added again
        after leaving (listener ids are per join)."""
        ...

    async def presence_count(self, space: str, now: float, window_s: float) -> int:
        """Approximate number of distinct members added in ``(now - window_s, now]``
        and not marked gone in it, counted over whole buckets (bucket width: the
        implementation's ``presence_bucket_s``): ``|added or gone| - |gone|``, two
        HyperLogLog counts. Error within 2% at 100k members. Buckets are kept for
        ``windows.PRESENCE_RETENTION_S`` (300 s): longer windows count only that much."""
        ...

    async def presence_unique(self, space: str) -> int:
        """Approximate number of distinct members ever added to the space (one
        HyperLogLog for the whole space, kept ``windows.UNIQUE_RETENTION_S``)."""
        ...

    async def presence_people(self, space: str) -> int:
        """Approximate number of distinct ``people`` ever given to ``presence_add_many``
        for the space (one HyperLogLog, kept ``windows.UNIQUE_RETENTION_S``): members are
        per join, people are not (analytics' unique listeners)."""
        ...

    # -- audience: the recent signed-in listeners, a capped sorted set per space --------
    async def audience_add(self, space: str, member: str, score: float, cap: int) -> None:
        """Add ``member`` with ``score`` (its join time, also its first time heard);
        keep the ``cap`` highest scores (a trimmed member is forgotten entirely)."""
        ...

    async def audience_heard_many(self, space: str, members: Iterable[str], now: float) -> None:
        """Members heard at ``now`` (a process's batch of heartbeats): their last-heard
        time moves on. Only members held are touched; others are ignored, never added
        (one that left, was trimmed or never joined stays out)."""
        ...

    async def audience_remove(self, space: str, members: Iterable[str]) -> None: ...

    async def audience_page(
        self, space: str, before: float | None, limit: int, heard_since: float | None = None
    ) -> list[tuple[str, float]]:
        """Up to ``limit`` members, highest score first, with scores below ``before``
        (all when None). With ``heard_since``, members last heard before it are removed
        first (at most the capped set's size: bounded work), so a page lists only
        members present then."""
        ...

    # -- reactions: per-second counters --------------------------------------------------
    async def react(self, space: str, emoji: str, now: float, count: int = 1) -> None: ...

    async def reactions(self, space: str, now: float, window_s: int) -> dict[str, int]:
        """Per-emoji totals over the last ``window_s`` whole seconds up to ``now``
        (the second holding ``now`` included; at most ``windows.REACTION_RETENTION_S``,
        120 s, are kept)."""
        ...

    # -- rate limits: token buckets ------------------------------------------------------
    async def take(
        self, key: str, *, rate: float, burst: float, now: float, cost: float = 1.0
    ) -> RateDecision:
        """Take ``cost`` tokens from bucket ``key`` (refilling at ``rate``/s up to
        ``burst``; a bucket never seen is full). When denied, ``retry_after`` is the time
        until ``cost`` tokens are there (one token for the default cost), and nothing is
        taken. Needs ``rate > 0``, ``burst > 0`` and ``0 <= cost <= burst``, else
        ``PnyxError(INVALID)``."""
        ...

    # -- leases with fencing tokens -------------------------------------------------------
    async def acquire(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        """Take the lease if it is free or expired; None if someone else holds it. If
        ``holder`` already holds it, renew and return the same lease."""
        ...

    async def renew(self, lease: Lease, ttl_s: float) -> bool:
        """Extend the lease; False if it was lost (expired and/or taken by another)."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give the lease up if still held by this lease's holder and token."""
        ...

    async def holder(self, name: str) -> Lease | None: ...

    # -- pub/sub for stage events -------------------------------------------------------
    async def publish(self, channel: str, message: bytes) -> None: ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """``async with live.subscribe(ch) as messages: async for m in messages: ...``
        Delivery is at-most-once; a slow subscriber's bounded queue drops the oldest."""
        ...

    # -- blobs: media parts and playlists (the seam for media, issue 3) -----------------
    async def put_blob(self, key: str, data: bytes, ttl_s: float) -> None:
        """Store ``data`` under ``key`` for ``ttl_s`` seconds. Keys made by
        ``keys.blob_key`` belong to their space: ``drop_space`` removes them."""
        ...

    async def get_blob(self, key: str) -> bytes | None:
        """The blob, or None when it was never stored or its TTL has passed."""
        ...
