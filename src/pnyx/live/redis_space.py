"""The Redis keys one space owns and the expiries they are written with, for
``RedisLiveState.drop_space`` and ``expire_space``.

A space's keys are named after it (``keys.py``): a fixed few (its snapshots, its
whole-space sketches and audience) and the bucketed ones found by SCAN (presence and
gone buckets, reaction seconds, blobs). A space id containing ``:`` must not take its
neighbours with it: ``presence:s1:x:<bucket>`` is the space ``s1:x``'s, not ``s1``'s, so
a scanned key is the space's only when the rest of it is a bucket number (or, for a
blob, anything after ``<space>/``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import redis.asyncio as aioredis

from pnyx.live import windows
from pnyx.live.keys import RedisKind, blob_key, redis_key, snapshot_keys

BATCH = 500  # keys per UNLINK, or PEXPIREs per pipeline round trip

# The expiries a space's keys are given when written (every write sets it again).
REACT_TTL_S = windows.REACTION_RETENTION_S
PRESENCE_TTL_S = int(windows.PRESENCE_RETENTION_S) + 60  # plus a bucket or so of slack
UNIQUE_TTL_S = int(windows.UNIQUE_RETENTION_S)
_BUCKET_TTL_S = {  # the longest expiry a bucketed key of each kind is given
    RedisKind.PRESENCE: PRESENCE_TTL_S,
    RedisKind.GONE: PRESENCE_TTL_S,
    RedisKind.REACT: REACT_TTL_S,
}

_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern (SCAN MATCH, PSUBSCRIBE)."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def fixed_keys(prefix: str, space: str) -> list[str]:
    """The keys of the space whose names are known without looking."""
    return [
        *(redis_key(prefix, RedisKind.SNAP, key) for key in snapshot_keys(space)),
        *(
            redis_key(prefix, kind, space)
            for kind in (RedisKind.UNIQUE, RedisKind.PEOPLE, RedisKind.AUDIENCE, RedisKind.HEARD)
        ),
    ]


SCANNED = (RedisKind.PRESENCE, RedisKind.GONE, RedisKind.REACT, RedisKind.BLOB)


def outliving(ttl_s: float, *, blobs_named: bool) -> list[RedisKind]:
    """The kinds ``expire_space`` must look for: those whose keys may be due later than
    ``ttl_s`` (with the default retention, none), and the blobs unless the caller named
    the ones that may."""
    kinds = [kind for kind, longest_s in _BUCKET_TTL_S.items() if longest_s > ttl_s]
    return kinds if blobs_named else [*kinds, RedisKind.BLOB]


async def space_keys(
    client: aioredis.Redis,
    prefix: str,
    space: str,
    *,
    scan: Iterable[RedisKind] = SCANNED,
    blobs: Iterable[str] = (),
) -> list[str | bytes]:
    """Every key the space owns: the fixed ones (whether they exist or not), the named
    ``blobs`` (full keys, likewise) and the bucketed ones that exist of each kind in
    ``scan``: one SCAN of the whole keyspace per kind (seconds at a million keys)."""
    starts = {
        RedisKind.PRESENCE: redis_key(prefix, RedisKind.PRESENCE, space, ""),  # then the bucket
        RedisKind.GONE: redis_key(prefix, RedisKind.GONE, space, ""),  # then the bucket
        RedisKind.REACT: redis_key(prefix, RedisKind.REACT, space, ""),  # then the second
        RedisKind.BLOB: redis_key(prefix, RedisKind.BLOB, blob_key(space, "")),  # the name
    }
    counted = "|".join(re.escape(starts[kind]) for kind in SCANNED[:3])
    owned = re.compile(rf"(?:{counted})-?\d+|{re.escape(starts[RedisKind.BLOB])}.*", re.DOTALL)
    found: list[str | bytes] = [*fixed_keys(prefix, space), *blobs]
    for kind in scan:
        async for key in client.scan_iter(match=glob_escape(starts[kind]) + "*", count=1000):
            if owned.fullmatch(key.decode(errors="replace")):
                found.append(key)
    return found


async def unlink_all(client: aioredis.Redis, keys: list[str | bytes]) -> None:
    for i in range(0, len(keys), BATCH):
        await client.unlink(*keys[i : i + BATCH])


async def expire_all(client: aioredis.Redis, keys: list[str | bytes], ttl_ms: int) -> None:
    """PEXPIRE ... LT on every key: a key due sooner keeps its expiry, a key without one
    (or due later) gets ``ttl_ms``; a key that does not exist stays absent."""
    for i in range(0, len(keys), BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for key in keys[i : i + BATCH]:
                pipe.pexpire(key, ttl_ms, lt=True)
            await pipe.execute()
