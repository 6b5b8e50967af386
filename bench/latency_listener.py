"""Listener mouth-to-ear latency over LL-HLS, on one ``pnyx serve`` process (embedded
default, production settings) on loopback.

    .venv/bin/python bench/latency_listener.py [--onsets 24]

A host publishes a 1 kHz tone over WebRTC (aiortc, tests/support/webrtc.py) and switches
it ON at known instants: the capture instant of the first "on" sample, ``t_on``. A
player-like listener (tests/support/hls.py) in the same process follows the live
playlist with blocking reloads (``_HLS_msn``/``_HLS_part``) and fetches each part as soon
as it is listed. For each onset it finds the sample where the tone starts in the decoded
audio and reports

* **edge latency** = arrival of the part holding the onset + the onset's offset in that
  part - ``t_on``: when a player that plays parts the moment they arrive would play it;
* **player latency** (PART-HOLD-BACK) = edge latency + PART-HOLD-BACK - part duration:
  when a player that keeps its playhead PART-HOLD-BACK behind the end of the newest part
  (what the playlist tells players to do) plays it.

Both include the 20 ms capture frame, Opus, the server's jitter buffer, the 20 ms mixer,
AAC's priming delay, packaging into 0.32 s parts and the HTTP fetch. Bounded: at most
``--onsets`` onsets, each given up after 10 s; prints p50/p95 (goal: p95 ≤ 2.0 s).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

import httpx

from latency_support import hls, machine, pnyx_node, stage, tones, webrtc
from pnyx.loadtest.stats import percentile

TONE_HZ = 1000.0
GOAL_P95_S = 2.0


async def measure(url: str, space: str, token: str, onsets: int) -> tuple[list[float], float]:
    track = webrtc.ToneTrack(TONE_HZ, on=False)
    me = await webrtc.publish(url, space, token, track)
    listener = hls.HlsListener(url, space)
    follow: asyncio.Task[None] | None = None
    latencies: list[float] = []
    try:
        await me.connected()
        await listener.start()
        follow = asyncio.ensure_future(listener.follow())
        await asyncio.sleep(3.0)  # warm-up: jitter buffers, encoder, first segments
        phb = listener.playlists[-1].part_hold_back
        part_s = listener.playlists[-1].part_target
        assert phb is not None and part_s is not None, "playlist without LL-HLS tags"
        for n in range(onsets):
            await asyncio.sleep(random.uniform(0, part_s))  # land anywhere in a part
            t_on = await track.switch(True)
            latency = await _heard(listener, t_on)
            await track.switch(False)
            if latency is None:
                print(f"onset {n + 1}: not heard within 10 s")
            else:
                latencies.append(latency)
                print(f"onset {n + 1}: {latency * 1000:.0f} ms", flush=True)
            await asyncio.sleep(1.2)  # off long enough to be clearly off
        gap, problems = listener.continuity()
        print(f"listener: {len(listener.parts)} parts, longest gap {gap:.2f} s, {problems[:3]}")
        return latencies, phb - part_s
    finally:
        listener.stop()
        if follow is not None:
            await asyncio.gather(follow, return_exceptions=True)
        await listener.aclose()
        await me.close()


async def _heard(listener: hls.HlsListener, t_on: float) -> float | None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        decoded = listener.decode(since=t_on - 1.0)  # includes some "off" before
        found = tones.onset(decoded.samples, TONE_HZ, start=2048)
        if found is not None:
            return listener.arrival_of(decoded.start + found) - t_on
    return None


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--onsets", type=int, default=24)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a server setting (PNYX_KEY), for diagnosis; the reported figures use none",
    )
    args = ap.parse_args()
    settings = dict(kv.split("=", 1) for kv in args.set)
    with (
        pnyx_node(env_settings=settings) as node,
        httpx.Client(base_url=node.url, timeout=10) as c,
    ):
        space, (host,) = stage(c)
        latencies, player_extra = asyncio.run(measure(node.url, space, host.token, args.onsets))
    print(f"machine: {machine()}")
    print(
        f"setup: one pnyx serve ({settings or 'defaults'}); publisher and listener in one "
        "client process"
    )
    if not latencies:
        raise SystemExit("no onset was heard")
    player = [x + player_extra for x in latencies]
    print(f"onsets heard: {len(latencies)} of {args.onsets}")
    print("| listener latency | p50 ms | p95 ms | max ms |")
    print("| --- | --- | --- | --- |")
    for name, xs in (
        ("edge (part arrival + offset)", latencies),
        ("player at PART-HOLD-BACK", player),
    ):
        p50, p95, top = (v * 1000 for v in (percentile(xs, 0.5), percentile(xs, 0.95), max(xs)))
        print(f"| {name} | {p50:.0f} | {p95:.0f} | {top:.0f} |")
    print(
        f"mean edge latency {statistics.mean(latencies) * 1000:.0f} ms; PART-HOLD-BACK adds "
        f"{player_extra * 1000:.0f} ms over a part"
    )
    for name, xs in (("edge", latencies), ("player", player)):
        p95 = percentile(xs, 0.95)
        verdict = "meets" if p95 <= GOAL_P95_S else "MISSES"
        print(f"{name} p95 {p95:.2f} s {verdict} the goal (p95 ≤ {GOAL_P95_S} s)")


if __name__ == "__main__":
    main()
