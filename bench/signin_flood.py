"""A sign-in flood against one node: what bounding argon2's concurrency buys.

    .venv/bin/python bench/signin_flood.py [--concurrency 0,6] [--clients 8] [--requests 48]

For each ``argon2_concurrency`` (0: the CPU count, the default; 6: what the event loop's
default thread pool allowed before, min(32, cores + 4) on two cores), one ``pnyx serve``
(production settings, account rate limits off: the flood is of wrong passwords for one
existing account) takes ``--requests`` sign-ins from ``--clients`` concurrent clients,
while a probe asks ``GET /healthz`` every 50 ms (an answer from the event loop alone).
Reported: sign-in latency p50/p95 and the probe's p50/p95/max (how long the loop was
held up). Bounded: a request count and a 120 s deadline per run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.pnyx_server import pnyx_serve

PASSWORD = "benchmark passphrase"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def flood(url: str, clients: int, requests: int) -> tuple[list[float], list[float]]:
    signins: list[float] = []
    probes: list[float] = []
    todo = iter(range(requests))
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        done = asyncio.Event()

        async def client() -> None:
            for i in todo:
                t0 = time.perf_counter()
                r = await c.post("/v1/sessions", json={"handle": "victim", "password": f"g{i}"})
                signins.append(time.perf_counter() - t0)
                assert r.status_code in (401, 503), r.text

        async def probe() -> None:
            while not done.is_set():
                t0 = time.perf_counter()
                await c.get("/healthz")
                probes.append(time.perf_counter() - t0)
                await asyncio.sleep(0.05)

        prober = asyncio.create_task(probe())
        await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))), 120)
        done.set()
        await prober
    return signins, probes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--concurrency", default="0,6")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=48)
    args = ap.parse_args()
    for conc in args.concurrency.split(","):
        with (
            tempfile.TemporaryDirectory() as tmp,
            pnyx_serve(Path(tmp), fast=False, settings={"argon2_concurrency": conc}) as node,
            node.client() as c,
        ):
            c.post("/v1/accounts", json={"handle": "victim", "password": PASSWORD})
            signins, probes = asyncio.run(flood(node.url, args.clients, args.requests))
        ms = [s * 1000 for s in signins]
        pr = [p * 1000 for p in probes]
        print(
            f"argon2_concurrency={conc}: {len(ms)} sign-ins, {args.clients} clients: "
            f"p50 {statistics.median(ms):.0f} ms, p95 {pct(ms, 0.95):.0f} ms; "
            f"/healthz probe p50 {statistics.median(pr):.1f} ms, p95 {pct(pr, 0.95):.1f} ms, "
            f"max {max(pr):.1f} ms ({len(pr)} probes)"
        )


if __name__ == "__main__":
    main()
