"""Speaker-to-speaker latency through the mix-minus, on one ``pnyx serve`` process
(embedded default, production settings) on loopback.

    .venv/bin/python bench/latency_stage.py [--onsets 30]

Speaker A (the host) publishes a 1 kHz tone and switches it ON at known instants (the
capture instant of the first "on" sample, ``t_on``); speaker B publishes silence and
records its mix-minus. Latency = when the onset is heard in B's received audio (arrival
of the decoded WebRTC frame holding it + its offset in the frame) - ``t_on``. Both
clients are aiortc (tests/support/webrtc.py) in this process.

For scale, the same measurement is first made with no server at all: A's peer
connection straight to B's, in-process (``--baseline-onsets``). That is what aiortc's
own path costs (capture frame, Opus, the receiver's jitter buffer); the difference is
what the stage node adds (its jitter buffer, the 20 ms mixer, re-encoding).

Bounded: each onset is given up after 5 s. Prints p50/p95 (goal: p95 ≤ 300 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from latency_support import machine, pnyx_node, poll, stage, webrtc
from pnyx.loadtest.stats import percentile

TONE_HZ = 1000.0
GOAL_P95_S = 0.300


async def onsets(
    track: webrtc.ToneTrack, heard: webrtc.Recording, count: int, label: str
) -> list[float]:
    out = []
    for n in range(count):
        await asyncio.sleep(random.uniform(0, 0.02))  # anywhere in a frame
        t_on = await track.switch(True)
        latency = None
        deadline = time.monotonic() + 5
        while latency is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            found = heard.onset(TONE_HZ, after=t_on - 0.3)
            latency = None if found is None else found - t_on
        await track.switch(False)
        if latency is None:
            print(f"{label} onset {n + 1}: not heard within 5 s")
        else:
            out.append(latency)
            print(f"{label} onset {n + 1}: {latency * 1000:.0f} ms", flush=True)
        await asyncio.sleep(0.6)  # off long enough to be clearly off
    return out


async def through_pnyx(url: str, space: str, a_token: str, b_token: str, n: int) -> list[float]:
    tone = webrtc.ToneTrack(TONE_HZ, on=False)
    a = await webrtc.publish(url, space, a_token, tone)
    try:
        b = await webrtc.publish(url, space, b_token, webrtc.ToneTrack(700.0, on=False))
        try:
            await a.connected()
            await b.connected()
            await b.hearing(2.0)  # warm-up
            result = await onsets(tone, b.received, n, "pnyx")
            print(f"B's mix-minus: longest gap between frames {b.received.gaps():.3f} s")
            return result
        finally:
            await b.close()
    finally:
        await a.close()


async def direct(n: int) -> list[float]:
    """A → B with no server: two aiortc peers in this process."""
    tone = webrtc.ToneTrack(TONE_HZ, on=False)
    heard = webrtc.Recording()
    pa = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pb = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    readers: list[asyncio.Task[None]] = []

    async def read(remote: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await remote.recv()
                arrived = time.time()
                pcm = frame.to_ndarray().reshape(-1)[:: len(frame.layout.channels)]
                heard.append(pcm.astype("float32") / 32768.0, arrived)

    pb.on("track", lambda remote: readers.append(asyncio.ensure_future(read(remote))))
    try:
        pa.addTrack(tone)
        await pa.setLocalDescription(await pa.createOffer())
        await pb.setRemoteDescription(pa.localDescription)
        await pb.setLocalDescription(await pb.createAnswer())
        await pa.setRemoteDescription(pb.localDescription)
        await poll.eventually(lambda: heard.seconds >= 2.0, 10, "direct audio")  # warm-up
        return await onsets(tone, heard, n, "direct")
    finally:
        tone.stop()
        await pa.close()
        await pb.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


def row(name: str, xs: list[float]) -> str:
    if not xs:
        return f"| {name} | - | - | - | 0 |"
    p50, p95, top = (v * 1000 for v in (percentile(xs, 0.5), percentile(xs, 0.95), max(xs)))
    return f"| {name} | {p50:.0f} | {p95:.0f} | {top:.0f} | {len(xs)} |"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--onsets", type=int, default=30)
    ap.add_argument("--baseline-onsets", type=int, default=20)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a server setting (PNYX_KEY), for diagnosis; the reported figures use none",
    )
    args = ap.parse_args()
    settings = dict(kv.split("=", 1) for kv in args.set)
    baseline = asyncio.run(direct(args.baseline_onsets)) if args.baseline_onsets else []
    with (
        pnyx_node(env_settings=settings) as node,
        httpx.Client(base_url=node.url, timeout=10) as c,
    ):
        space, (a, b) = stage(c, speakers=1)
        measured = asyncio.run(through_pnyx(node.url, space, a.token, b.token, args.onsets))
    print(f"machine: {machine()}")
    print(
        f"setup: one pnyx serve ({settings or 'defaults'}); both aiortc speakers in one "
        "client process"
    )
    print("| speaker A → speaker B | p50 ms | p95 ms | max ms | onsets |")
    print("| --- | --- | --- | --- | --- |")
    print(row("through pnyx (mix-minus)", measured))
    print(row("direct aiortc → aiortc (no server)", baseline))
    if not measured:
        raise SystemExit("no onset was heard through pnyx")
    p95 = percentile(measured, 0.95)
    verdict = "meets" if p95 <= GOAL_P95_S else "MISSES"
    print(f"through pnyx p95 {p95 * 1000:.0f} ms {verdict} the goal (p95 ≤ 300 ms)")
    if baseline:
        added = percentile(measured, 0.5) - percentile(baseline, 0.5)
        print(f"the stage node adds {added * 1000:.0f} ms at the median over direct aiortc")


if __name__ == "__main__":
    main()
