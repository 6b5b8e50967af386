"""What ending a space costs the live state, beside a keyspace of other spaces' keys.

When a space ends, its live state is set to go after ``ended_live_retention_s``
(``LiveState.expire_space``, from the end command and again from the stage node's
ticker; also for every scheduled space the sweep cancels). Looking for the space's
bucketed keys and blobs is a SCAN of the whole keyspace per kind; naming the few that can
outlive the retention (``services.spaces.lasting_blobs``) needs none.

One Redis (started here), ``--keys`` keys of other spaces, and one ended space's own
(parts, segments, presence buckets, reaction seconds: what a live space holds). Each
round times both ways in turn (every kind looked for, as every end did before, then
``expire_space`` with the lasting blobs named) and reads Redis's CPU around each; the
median round is printed with the ratio.

    .venv/bin/python bench/space_expiry.py [--keys 1000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

import redis
import redis.asyncio as aioredis

from pnyx.live.codec import ttl_ms
from pnyx.live.redis import RedisLiveState
from pnyx.live.redis_space import SCANNED, expire_all, space_keys
from pnyx.services.spaces import lasting_blobs

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the harness lives in tests/support
    sys.path.insert(0, str(ROOT))

from tests.support.redis_server import redis_server  # noqa: E402

RETENTION_S = 600.0  # the default ended_live_retention_s
MEDIA_TTL_S = 300.0  # the default segments' TTL, the longest of a space's media blobs
SPACE = "endedSpace01"


def redis_cpu(url: str) -> float:
    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def fill(url: str, keys: int) -> None:
    """``keys`` keys of other spaces (blobs, as parts are), in batches of 1,000."""
    client = aioredis.Redis.from_url(url)
    try:
        for start in range(0, keys, 1000):
            batch = {
                f"pnyx:blob:other{i % 5000:05d}/part/{i}.0.m4s": b"x"
                for i in range(start, min(keys, start + 1000))
            }
            await client.mset(batch)  # type: ignore[arg-type]
    finally:
        await client.aclose()


async def ended_space(live: RedisLiveState) -> None:
    """What a live space holds in the live state: an hour's worth of buckets and the
    media still in its TTLs."""
    now = time.time()
    await live.put_part(SPACE, "room", {"status": "ended"}, 1)
    await live.put_part(f"hls:{SPACE}", "playlist", {}, 1)
    await live.put_blob(f"{SPACE}/init.mp4", b"i", 86_400.0)
    for msn in range(80):  # segments: 300 s of 3.84 s
        await live.put_blob(f"{SPACE}/seg/{msn}.m4s", b"s", MEDIA_TTL_S)
    for i in range(470):  # parts: 60 s of 0.128 s
        await live.put_blob(f"{SPACE}/part/{i // 30}.{i % 30}.m4s", b"p", 60.0)
    for second in range(120):
        await live.react(SPACE, "👏", now - second)
    for bucket in range(72):
        await live.presence_add_many(SPACE, ["l1"], now - 5 * bucket)


async def before(client: aioredis.Redis) -> None:
    """What every end did before: each kind looked for (four SCANs), then PEXPIRE LT."""
    doomed = await space_keys(client, "pnyx:", SPACE, scan=SCANNED)
    await expire_all(client, doomed, ttl_ms(RETENTION_S))


async def now(live: RedisLiveState) -> None:
    named = lasting_blobs(SPACE, RETENTION_S, MEDIA_TTL_S)
    assert named is not None
    await live.expire_space(SPACE, RETENTION_S, leases=[f"tick:{SPACE}"], blobs=named)


async def round_(url: str, way: Awaitable[None]) -> tuple[float, float]:
    cpu = redis_cpu(url)
    began = time.perf_counter()
    await way
    return time.perf_counter() - began, redis_cpu(url) - cpu


async def main(keys: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as url:
        await fill(url, keys)
        live = RedisLiveState(url)
        client = aioredis.Redis.from_url(url)
        await ended_space(live)
        scanning: list[tuple[float, float]] = []
        naming: list[tuple[float, float]] = []
        for _ in range(rounds):
            scanning.append(await round_(url, before(client)))
            naming.append(await round_(url, now(live)))
        await live.close()
        await client.aclose()
    print(f"# ending one space beside {keys:,} other keys (median of {rounds} rounds)")
    for what, runs in (
        ("looking for every key (SCAN)", scanning),
        ("naming its lasting blobs", naming),
    ):
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"{what:32s} {wall * 1e3:9.1f} ms   Redis CPU {cpu * 1e3:8.1f} ms")
    ratio = statistics.median(r[0] for r in scanning) / statistics.median(r[0] for r in naming)
    print(f"ratio (time): {ratio:.0f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.keys, args.rounds))
