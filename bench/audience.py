"""What a host's audience reads cost at 100 and at 10,000 listeners (issue 14).

    .venv/bin/python bench/audience.py [--sizes 100,10000] [--requests 300] [--big 600000]

One ``pnyx serve`` (production settings and clocks) on a Redis live state that this
script starts (tests/support/redis_server.py), on the embedded SQLite store. A host
(a real account) runs one live space per size. Each space's audience is seeded straight
into Redis through ``RedisLiveState`` (the same calls the node makes): ``size`` signed-in
listeners in the capped audience set (the node keeps the newest ``audience_list_cap``,
1,000), all but a tenth of those heard now (the silent tenth last heard at their join,
long before the presence window: the round's first read removes them), and ``size``
listener ids in presence, a tenth of them marked gone; the seeding is repeated every
round so the count stays in its window. Then, interleaved across the
sizes, after ``--warmup`` unmeasured requests each:

* ``GET /v1/spaces/{id}/listeners?limit=50`` (a page of the audience, as the host view
  asks for it), and
* ``GET /v1/spaces/{id}/analytics`` (the space's figures while it is live),

``--requests`` times each (interleaved request by request), timed from here over
loopback. Printed: median and p95 per request and size, and the ratio of the medians
(goal: at most 1.2).

Also, straight against the same Redis: the live state's ``presence_count`` (what the
ticker pays every tick: ``|added or gone| - |gone|``, two PFCOUNTs over the window's
buckets) for a space of 100 and one of ``--big`` listeners with a tenth marked gone,
and how far the big count is from the truth.

Everything is bounded: sizes, requests and rounds are counts; every wait has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the harness lives in tests/support
    sys.path.insert(0, str(ROOT))

from tests.support.api import create_space, register  # noqa: E402
from tests.support.pnyx_server import pnyx_serve  # noqa: E402
from tests.support.redis_server import redis_server  # noqa: E402

from pnyx.live.redis import RedisLiveState  # noqa: E402
from pnyx.loadtest.stats import percentile  # noqa: E402

PASSWORD = "correct horse battery staple"
ROUNDS = 10  # the requests are spread over this many rounds, re-seeding presence each


async def seed(live: RedisLiveState, space: str, size: int, now: float) -> None:
    """``size`` listeners heard now, a tenth of them gone; the audience set filled."""
    ids = [f"{space}-l{i}" for i in range(size)]
    for i in range(0, size, 10_000):
        await live.presence_add_many(space, ids[i : i + 10_000], now)
    await live.presence_leave_many(space, ids[::10], now)
    listed = [f"{ids[i]} user{i}" for i in range(min(size, 1000))]  # the node keeps 1,000
    for i, member in enumerate(listed):
        await live.audience_add(space, member, now - size + i, 1000)
    # heard now (their heartbeats), but for a silent tenth
    await live.audience_heard_many(space, [m for i, m in enumerate(listed) if i % 10], now)


def ms(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:.2f} ms (p95 {percentile(xs, 0.95) * 1000:.2f})"


async def count_costs(live: RedisLiveState, big: int, tries: int = 200) -> None:
    now = time.time()
    for space, size in (("count-small", 100), ("count-big", big)):
        await seed(live, space, size, now)
        times = []
        for _ in range(tries):
            t = time.perf_counter()
            got = await live.presence_count(space, now, 45.0)
            times.append(time.perf_counter() - t)
        truth = size - len(range(0, size, 10))
        print(
            f"presence_count, {size:>7,} listeners ({truth:,} present): {ms(times)}; "
            f"counted {got:,} ({(got - truth) / truth:+.2%})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,10000")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--big", type=int, default=600_000)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "redis").mkdir()
        (folder / "node").mkdir()
        settings = {"max_live_spaces_per_account": str(len(sizes))}
        with (
            redis_server(folder / "redis") as url,
            pnyx_serve(folder / "node", redis=url, settings=settings, fast=False) as node,
        ):
            asyncio.run(run(node.url, url, sizes, args))


async def run(base: str, redis_url: str, sizes: list[int], args: argparse.Namespace) -> None:
    live = RedisLiveState(redis_url)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            host = register(c, "bench_host", PASSWORD)
            spaces = {size: create_space(c, host, title=f"{size} listeners") for size in sizes}
        async with httpx.AsyncClient(base_url=base, timeout=30, headers=host.auth) as client:
            times: dict[tuple[str, int], list[float]] = {}
            per_round = max(1, args.requests // ROUNDS)
            for rnd in range(ROUNDS + 1):  # round 0: the warm-up
                for size, space in spaces.items():
                    await seed(live, space, size, time.time())
                n = args.warmup if rnd == 0 else per_round
                for _ in range(n):  # interleaved request by request: drift hits all alike
                    for what in ("listeners", "analytics"):
                        for size, space in spaces.items():
                            path = f"/v1/spaces/{space}/{what}"
                            params = {"limit": 50} if what == "listeners" else {}
                            t = time.perf_counter()
                            r = await client.get(path, params=params)
                            elapsed = time.perf_counter() - t
                            assert r.status_code == 200, r.text
                            if rnd > 0:
                                times.setdefault((what, size), []).append(elapsed)
            for size, space in spaces.items():
                body = (await client.get(f"/v1/spaces/{space}/listeners?limit=50")).json()
                a = (await client.get(f"/v1/spaces/{space}/analytics")).json()
                print(
                    f"{size:>6,} listeners: a page lists {len(body['listeners'])}, "
                    f"analytics peak {a['peak_listeners']:,}, "
                    f"{len(a['timeline'])} timeline points"
                )
            for what in ("listeners", "analytics"):
                for size in sizes:
                    print(f"GET …/{what:<9} {size:>6,} listeners: {ms(times[(what, size)])}")
                lo, hi = times[(what, sizes[0])], times[(what, sizes[-1])]
                ratio = statistics.median(hi) / statistics.median(lo)
                print(f"GET …/{what}: median ratio {sizes[-1]:,} / {sizes[0]:,} = {ratio:.2f}")
        await count_costs(live, args.big)
    finally:
        await live.close()


if __name__ == "__main__":
    main()
