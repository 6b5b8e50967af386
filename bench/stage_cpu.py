"""CPU of one ``pnyx serve`` process mixing and packaging a full stage: the host, two
co-hosts and ten speakers (13 publishers), each publishing a tone over WebRTC.

    .venv/bin/python bench/stage_cpu.py [--seconds 60] [--warmup 10]

The 13 aiortc clients (and one LL-HLS listener that checks the stream keeps flowing) run
in a SEPARATE process, started by this script: they cost real CPU too (Opus encode and
decode of 13 peers, in Python), and on a small machine they compete with the server for
the same cores. Both processes' CPU is reported; the server's is what the goal is about.

Measured over ``--seconds`` after ``--warmup``: the server process's CPU time (user +
system, all threads, from /proc/<pid>/stat) as a percentage of one core; and, from the
server's ``/metrics``, the mixer's tick lateness (``pnyx_media_tick_lateness_seconds``, a
histogram: percentiles are reported as the bucket bound they fall under), skipped ticks,
dropped frames and the time spent mixing per tick. Goals: ≤ 50% of one core, tick
lateness p99 ≤ 20 ms. Bounded: the whole run takes warmup + seconds + ~20 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

import httpx

from latency_support import cpu_seconds, hls, machine, pnyx_node, stage, tones, webrtc
from pnyx.loadtest.stats import nearest_rank

GOAL_CPU = 50.0  # % of one core
GOAL_LATENESS_P99_S = 0.020
FREQS = [300.0 + 97.0 * k for k in range(13)]  # 300 … 1464 Hz, one per publisher


# -- the client process --------------------------------------------------------------------


async def clients(url: str, space: str, tokens: list[str]) -> dict[str, Any]:
    """Publish one tone per token, listen over LL-HLS, until stdin says stop."""
    speakers: list[webrtc.Speaker] = []
    listener = hls.HlsListener(url, space)
    follow: asyncio.Task[None] | None = None
    try:
        for token, freq in zip(tokens, FREQS, strict=False):
            speakers.append(await webrtc.publish(url, space, token, webrtc.ToneTrack(freq, 0.05)))
        for s in speakers:
            await s.connected(within=30)
        await listener.start()
        follow = asyncio.ensure_future(listener.follow())
        cpu0, t0 = cpu_seconds_self(), time.monotonic()
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu = (cpu_seconds_self() - cpu0) / (time.monotonic() - t0) * 100
        listener.stop()
        await follow
        gap, problems = listener.continuity()
        decoded = listener.decode().samples[48_000:]
        window = decoded[-48_000 * 2 :]
        heard = sorted(tones.dominant_tones(window, 48_000, FREQS)) if len(window) else []
        return {
            "client_cpu": cpu,
            "parts": len(listener.parts),
            "longest_part_gap_s": gap,
            "problems": problems[:5],
            "skipped": len(listener.skipped),
            "tones_heard_by_listener": len(heard),
            "mix_minus_longest_gap_s": max(s.received.gaps() for s in speakers),
        }
    finally:
        listener.stop()
        if follow is not None and not follow.done():
            await asyncio.gather(follow, return_exceptions=True)
        await listener.aclose()
        for s in speakers:
            await s.close()


def cpu_seconds_self() -> float:
    return cpu_seconds(os.getpid())


def client_main(spec: str) -> None:
    args = json.loads(spec)
    result = asyncio.run(clients(args["url"], args["space"], args["tokens"]))
    print("RESULT " + json.dumps(result), flush=True)


# -- the measuring process -------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN|[+-]Inf)$")


def scrape(url: str) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and m.group(1).startswith("pnyx_media_") and not m.group(1).endswith("_created"):
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def delta(
    after: dict[tuple[str, str], float], before: dict[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def histogram_quantile(d: dict[tuple[str, str], float], name: str, q: float) -> str:
    buckets = []
    for (metric, labels), count in d.items():
        if metric == f"{name}_bucket":
            le = re.search(r'le="([^"]+)"', labels)
            if le:
                buckets.append((float(le.group(1)), count))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    if not total:
        return "n/a"
    rank = nearest_rank(q, round(total))  # the bucket holding that sample
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if bound == float("inf"):
                return f"> {buckets[-2][0] * 1000:g} ms"
            return f"≤ {bound * 1000:g} ms"
    return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--publishers", type=int, default=13, help="1 host + 2 co-hosts + rest")
    ap.add_argument("--clients", help=argparse.SUPPRESS)  # internal: run as the client side
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a server setting (PNYX_KEY), e.g. captions_default=false",
    )
    args = ap.parse_args()
    settings = dict(kv.split("=", 1) for kv in args.set)
    if args.clients:
        client_main(args.clients)
        return
    speakers = max(0, args.publishers - 3)
    with pnyx_node(env_settings=settings) as node, httpx.Client(base_url=node.url, timeout=10) as c:
        space, members = stage(c, cohosts=min(2, args.publishers - 1), speakers=speakers)
        spec = json.dumps({"url": node.url, "space": space, "tokens": [m.token for m in members]})
        proc = subprocess.Popen(
            [sys.executable, __file__, "--clients", spec],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            line = proc.stdout.readline()
            if not line.startswith("READY"):
                raise SystemExit(f"the clients did not start: {line!r}")
            time.sleep(args.warmup)
            m0, cpu0, t0 = scrape(node.url), cpu_seconds(node.pid), time.monotonic()
            client0 = cpu_seconds(proc.pid)
            samples = []
            while (elapsed := time.monotonic() - t0) < args.seconds:
                time.sleep(min(5.0, args.seconds - elapsed))
                samples.append((cpu_seconds(node.pid) - cpu0) / (time.monotonic() - t0) * 100)
            m1, cpu1, t1 = scrape(node.url), cpu_seconds(node.pid), time.monotonic()
            client_cpu = (cpu_seconds(proc.pid) - client0) / (t1 - t0) * 100
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        result_lines = [x for x in out.splitlines() if x.startswith("RESULT ")]
        result = json.loads(result_lines[0][7:]) if result_lines else {}

    d = delta(m1, m0)
    server_cpu = (cpu1 - cpu0) / (t1 - t0) * 100
    ticks = d.get(("pnyx_media_ticks_total", ""), 0.0)
    skipped = d.get(("pnyx_media_ticks_skipped_total", ""), 0.0)
    dropped: dict[str, float] = defaultdict(float)
    for (metric, labels), v in d.items():
        if metric == "pnyx_media_frames_dropped_total":
            dropped[labels] += v
    print(f"machine: {machine()}")
    print(
        f"setup: one pnyx serve ({settings or 'defaults'}) with {args.publishers} publishers "
        "on one stage "
        f"and one LL-HLS listener; clients in a separate process; {args.seconds:.0f} s "
        f"measured after {args.warmup:.0f} s warm-up"
    )
    print(f"server CPU over time (% of one core, cumulative): {[round(s) for s in samples]}")
    late, mix = "pnyx_media_tick_lateness_seconds", "pnyx_media_mix_seconds"
    print(
        "| server CPU | clients' CPU | ticks | skipped | tick lateness p50 | p99 "
        "| mix time p50 | p99 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {server_cpu:.0f}% | {client_cpu:.0f}% | {ticks:.0f} | {skipped:.0f} "
        f"| {histogram_quantile(d, late, 0.5)} | {histogram_quantile(d, late, 0.99)} "
        f"| {histogram_quantile(d, mix, 0.5)} | {histogram_quantile(d, mix, 0.99)} |"
    )
    expected = (t1 - t0) / 0.02
    print(f"ticks expected in {t1 - t0:.1f} s: {expected:.0f}")
    print(f"frames dropped (by queue): {dict(dropped) or 'none'}")
    concealed = sum(v for (m, _), v in d.items() if m == "pnyx_media_frames_concealed_total")
    frames = ticks * args.publishers
    print(
        f"frames concealed (lost, late or missing, all speakers): {concealed:.0f} "
        f"of {frames:.0f} ({100 * concealed / max(frames, 1):.2f}%)"
    )
    print(f"client side: {result}")
    names = sorted({k[0] for k in m1})
    print(f"pnyx_media_* metrics exposed: {', '.join(names)}")
    verdict = "meets" if server_cpu <= GOAL_CPU else "MISSES"
    print(f"server CPU {server_cpu:.0f}% {verdict} the goal (≤ {GOAL_CPU:.0f}% of one core)")
    p99 = histogram_quantile(d, "pnyx_media_tick_lateness_seconds", 0.99)
    print(f"tick lateness p99 {p99} (goal ≤ {GOAL_LATENESS_P99_S * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
