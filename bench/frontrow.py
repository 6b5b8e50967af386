"""The front row (push tier) through a real nginx edge with nchan: mouth-to-ear latency
at 100 and 2,000 subscribers, and how many subscribers one edge core holds.

    .venv/bin/python bench/frontrow.py [--subscribers 100,2000] [--onsets 16]
                                       [--capacity 10000] [--batch-frames 2]

One ``pnyx serve`` (production defaults, ``frontrow_publish_urls`` set to the edge) and
one nginx from ``pnyx edge-config --frontrow`` on loopback. A host publishes a 1 kHz
tone over WebRTC (aiortc) and switches it on at known capture instants ``t_on``.

* **Latency rows.** ``subscribers`` WebSocket subscribers on ``/frontrow/{space}``: four
  *probes* in this process keep every message with its arrival time and decode the Opus
  frames (libopus); the rest are *load* subscribers in client processes that only read.
  For each onset a probe finds the first sample of the tone in its decoded audio;
  **arrival latency** = arrival of the message carrying it + the sample's offset in the
  message - ``t_on`` (a player that plays messages the moment they arrive);
  **player latency** = arrival latency + the web player's buffer target (60 ms, what
  frontrow_worklet.js starts with). Both include the 20 ms capture frame, Opus, the
  node's jitter buffer, the 20 ms mixer, the batch (``frontrow_batch_frames``), the POST
  to the edge and nchan's fan-out.
* **Capacity row.** nginx with ONE worker process (one core) and ``--capacity``
  subscribers in client processes (fd limit ~20k per process: 2,500 per process): the
  worker's CPU over 20 s; subscribers per core = subscribers / CPU share. A subscriber
  that gets nothing for over a second counts as a stall.

Load subscribers read every 200 ms (a bulk read of what piled up in the kernel), so
nginx's per-message, per-subscriber writes are what is measured, not Python's. Bounded:
every phase has a fixed duration.

``frontrow_latency(...)`` is the function other benches import (bench/
listener_latency_edge.py): one row at a given subscriber count.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import random
import resource
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

from latency_support import cpu_seconds, machine, nginx_running, pnyx_node, stage, tones, webrtc
from pnyx.edge import EdgeSpec, create_folders, render
from pnyx.edge_frontrow import FrontRow
from pnyx.loadtest.stats import percentile
from pnyx.media.opus import OpusDecoder
from pnyx.protocol import frontrow
from pnyx.protocol.frontrow import FRAME_SAMPLES

TONE_HZ = 1000.0
RATE = 48_000
PROBES = 4
PLAYER_BUFFER_S = 0.06  # frontrow_worklet.js: the buffer target a player starts with
GOAL_P95_S = 0.35
PER_PROCESS = 2500  # load subscribers per client process (fd limit ~20k; CPU)


# -- the edge -------------------------------------------------------------------------
@dataclass
class EdgeUnderTest:
    port: int
    proc: Any

    @property
    def workers(self) -> list[int]:
        """nginx's worker processes (not its cache manager and loader)."""
        found = []
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        for pid in map(int, children.split()):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"worker process" in title:
                found.append(pid)
        return sorted(found)


@contextmanager
def frontrow_edge(upstream: str, port: int, *, workers: int | None) -> Iterator[EdgeUnderTest]:
    """nginx from ``render`` with the front row; ``workers``: worker_processes (None:
    auto, as generated)."""
    root = Path(tempfile.mkdtemp(prefix="pnyx-frontrow-edge-"))
    root.chmod(0o755)
    spec = EdgeSpec(
        f"127.0.0.1:{port}",
        (upstream,),
        cache_dir=root / "cache",
        state_dir=root / "state",
        frontrow=FrontRow(),
    )
    create_folders(spec)
    text = render(spec)
    if workers is not None:
        text = text.replace("worker_processes auto;", f"worker_processes {workers};")
    conf = root / "nginx.conf"
    conf.write_text(text)
    with nginx_running(conf, [port], log=root / "nginx.log") as proc:
        edge = EdgeUnderTest(port, proc)
        deadline = time.monotonic() + 10
        while not edge.workers and time.monotonic() < deadline:
            time.sleep(0.05)
        yield edge


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- load subscribers (client processes) ------------------------------------------------
def _raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _subscribe(port: int, path: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    s.setblocking(False)
    return s


def load_client(port: int, path: str, n: int, seconds: float, out: Any) -> None:
    """``n`` subscribers that read every 200 ms for ``seconds`` after all are connected;
    sends (connected, bytes, stalls, failed connects) to ``out``."""
    _raise_nofile()
    socks: list[socket.socket] = []
    failed = 0
    for _ in range(n):
        try:
            socks.append(_subscribe(port, path))
        except OSError:
            failed += 1
    out.send(("ready", len(socks)))
    got = [0] * len(socks)
    last = [time.monotonic()] * len(socks)
    stalls = 0
    longest = 0.0
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        time.sleep(0.2)
        now = time.monotonic()
        for i, s in enumerate(socks):
            try:
                data = s.recv(1 << 16)
            except BlockingIOError:
                gap = now - last[i]
                if gap > 1.0:
                    stalls += 1
                    last[i] = now  # count each second of silence once
                longest = max(longest, gap)
                continue
            except OSError:
                continue
            got[i] += len(data)
            last[i] = now
    for s in socks:
        s.close()
    out.send(("done", len(socks), sum(got), stalls, failed, longest, min(got or [0])))


@dataclass
class LoadResult:
    connected: int
    bytes: int
    stalls: int
    failed: int
    longest_gap_s: float
    least_bytes: int


class Load:
    """Load subscribers spread over client processes."""

    def __init__(self, port: int, path: str, n: int, seconds: float) -> None:
        self.procs: list[tuple[Any, Any]] = []
        left = n
        ctx = mp.get_context("fork")
        while left > 0:
            k = min(PER_PROCESS, left)
            left -= k
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=load_client, args=(port, path, k, seconds, theirs))
            p.start()
            self.procs.append((p, mine))

    def ready(self, timeout: float = 120) -> int:
        total = 0
        for _, pipe in self.procs:
            if not pipe.poll(timeout):
                raise TimeoutError("load subscribers did not connect in time")
            total += pipe.recv()[1]
        return total

    def result(self, timeout: float = 120) -> LoadResult:
        parts = []
        for p, pipe in self.procs:
            if not pipe.poll(timeout):
                raise TimeoutError("a load client did not finish")
            parts.append(pipe.recv())
            p.join(10)
        return LoadResult(
            connected=sum(x[1] for x in parts),
            bytes=sum(x[2] for x in parts),
            stalls=sum(x[3] for x in parts),
            failed=sum(x[4] for x in parts),
            longest_gap_s=max(x[5] for x in parts),
            least_bytes=min(x[6] for x in parts),
        )


# -- probes ---------------------------------------------------------------------------
@dataclass
class Probe:
    url: str
    arrivals: list[tuple[float, frontrow.FrontRowMessage]]

    async def run(self, stop: asyncio.Event) -> None:
        async with websockets.connect(self.url, max_size=1 << 16, compression=None) as ws:
            while not stop.is_set():
                try:
                    data = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                assert isinstance(data, bytes)
                self.arrivals.append((time.time(), frontrow.decode(data)))

    def latencies(self, onsets: list[float]) -> list[float]:
        """Arrival latency of each onset (capture instants ``onsets``) found."""
        if not self.arrivals:
            return []
        start = self.arrivals[0][1].media_time
        end = max(m.end_time for _, m in self.arrivals)
        n = (end - start) // FRAME_SAMPLES
        pcm = np.zeros(n * FRAME_SAMPLES, np.float32)
        play = np.full(n, np.nan)  # when a frame's first sample plays (arrival + offset)
        decoder = OpusDecoder()
        for at, m in sorted(self.arrivals, key=lambda a: a[1].media_time):
            for i, packet in enumerate(m.frames):
                k = (m.media_time - start) // FRAME_SAMPLES + i
                pcm[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES] = decoder.decode(packet)[
                    :FRAME_SAMPLES
                ]
                play[k] = at + i * FRAME_SAMPLES / RATE
        decoder.close()
        out = []
        for t_on in onsets:
            # frames that played from 0.3 s before the onset's capture to 3 s after
            window = np.nonzero((play >= t_on - 0.3) & (play < t_on + 3.0))[0]
            if len(window) == 0:
                continue
            k0 = int(window[0])
            seg = pcm[k0 * FRAME_SAMPLES : (int(window[-1]) + 1) * FRAME_SAMPLES]
            found = tones.onset(seg, TONE_HZ)
            if found is None:
                continue
            k = k0 + found // FRAME_SAMPLES
            out.append(float(play[k]) + (found % FRAME_SAMPLES) / RATE - t_on)
        return out


# -- one latency row --------------------------------------------------------------------
@dataclass
class LatencyRow:
    subscribers: int
    arrival: list[float]
    player: list[float]
    load: LoadResult | None
    nginx_cpu_s: float
    node_cpu_s: float
    seconds: float

    def line(self) -> str:
        a50, a95 = percentile(self.arrival, 0.5), percentile(self.arrival, 0.95)
        p50, p95 = percentile(self.player, 0.5), percentile(self.player, 0.95)
        stalls = self.load.stalls if self.load else 0
        per = self.nginx_cpu_s / self.seconds / self.subscribers * 1e6
        return (
            f"| {self.subscribers:,} | {a50 * 1000:.0f} | {a95 * 1000:.0f} | {p50 * 1000:.0f} | "
            f"{p95 * 1000:.0f} | {len(self.arrival)} | {stalls} | "
            f"{self.nginx_cpu_s / self.seconds * 100:.1f} % ({per:.1f} µs/s each) | "
            f"{self.node_cpu_s / self.seconds * 100:.1f} % |"
        )


async def frontrow_latency(
    edge_port: int,
    node_url: str,
    node_pid: int,
    nginx_pids: list[int],
    space: str,
    token: str,
    *,
    subscribers: int,
    onsets: int = 16,
) -> LatencyRow:
    """Mouth-to-ear of the front row through the edge at ``subscribers`` subscribers
    (four probes that decode, the rest load subscribers in client processes)."""
    path = f"/frontrow/{space}"
    track = webrtc.ToneTrack(TONE_HZ, on=False)
    me = await webrtc.publish(node_url, space, token, track)
    load: Load | None = None
    phase_s = onsets * 1.6 + 4.0
    try:
        await me.connected()
        await asyncio.sleep(2.0)  # the channel exists once messages flow
        extra = max(0, subscribers - PROBES)
        if extra:
            load = Load(edge_port, path, extra, phase_s)
            await asyncio.to_thread(load.ready)
        stop = asyncio.Event()
        probes = [Probe(f"ws://127.0.0.1:{edge_port}{path}", []) for _ in range(PROBES)]
        tasks = [asyncio.create_task(p.run(stop)) for p in probes]
        await asyncio.sleep(1.0)
        cpu0 = sum(cpu_seconds(p) for p in nginx_pids), cpu_seconds(node_pid)
        t0 = time.monotonic()
        t_ons = []
        for _ in range(onsets):
            await asyncio.sleep(random.uniform(0, 0.04))  # land anywhere in a batch
            t_ons.append(await track.switch(True))
            await asyncio.sleep(0.7)
            await track.switch(False)
            await asyncio.sleep(0.8)
        seconds = time.monotonic() - t0
        cpu1 = sum(cpu_seconds(p) for p in nginx_pids), cpu_seconds(node_pid)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
        arrival: list[float] = []
        for p in probes:
            arrival += p.latencies(t_ons)
        result = await asyncio.to_thread(load.result) if load is not None else None
        return LatencyRow(
            subscribers,
            arrival,
            [a + PLAYER_BUFFER_S for a in arrival],
            result,
            cpu1[0] - cpu0[0],
            cpu1[1] - cpu0[1],
            seconds,
        )
    finally:
        await me.close()


# -- capacity -------------------------------------------------------------------------
@dataclass
class Capacity:
    load: LoadResult
    worker_share: float  # of one core
    load_bytes_per_s: float  # to all load subscribers
    probe_messages: int  # what one decoding probe received in the window
    probe_bytes: int  # their WebSocket payload + frame header bytes
    probe_longest_gap_s: float
    posted: float  # messages the node posted to the edge in the window
    seconds: float


def posted_messages(node_url: str) -> float:
    text = httpx.get(f"{node_url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith('pnyx_frontrow_posts_total{outcome="posted"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def capacity(
    edge_port: int, node_url: str, worker: int, space: str, token: str, n: int, seconds: float
) -> Capacity:
    """``n`` load subscribers (and one probe) on a one-worker edge for ``seconds``."""
    track = webrtc.ToneTrack(TONE_HZ, on=True)
    me = await webrtc.publish(node_url, space, token, track)
    path = f"/frontrow/{space}"
    try:
        await me.connected()
        await asyncio.sleep(2.0)
        load = Load(edge_port, path, n, seconds)
        await asyncio.to_thread(load.ready)
        probe = Probe(f"ws://127.0.0.1:{edge_port}{path}", [])
        stop = asyncio.Event()
        task = asyncio.create_task(probe.run(stop))
        await asyncio.sleep(1.0)
        c0, t0 = cpu_seconds(worker), time.monotonic()
        p0, k0 = await asyncio.to_thread(posted_messages, node_url), len(probe.arrivals)
        await asyncio.sleep(seconds - 3.0)
        elapsed = time.monotonic() - t0
        share = (cpu_seconds(worker) - c0) / elapsed
        posted = await asyncio.to_thread(posted_messages, node_url) - p0
        window = probe.arrivals[k0:]
        stop.set()
        await task
        result = await asyncio.to_thread(load.result)
        sizes = [len(frontrow.encode(m.seq, m.media_time, m.frames)) for _, m in window]
        gaps = np.diff([at for at, _ in window]) if len(window) > 1 else np.zeros(1)
        return Capacity(
            result,
            share,
            result.bytes / seconds,
            len(window),
            sum(x + (2 if x < 126 else 4) for x in sizes),
            float(gaps.max()),
            posted,
            elapsed,
        )
    finally:
        await me.close()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--subscribers", default="100,2000", help="latency rows (comma-separated)")
    ap.add_argument("--onsets", type=int, default=16)
    ap.add_argument("--capacity", type=int, default=10_000, help="0: skip the capacity row")
    ap.add_argument("--capacity-seconds", type=float, default=20.0)
    ap.add_argument("--batch-frames", type=int, default=None, help="frontrow_batch_frames")
    args = ap.parse_args()
    _raise_nofile()
    edge_port = free_port()
    settings = {"frontrow_publish_urls": f"http://127.0.0.1:{edge_port}/frontrow/pub/"}
    if args.batch_frames is not None:
        settings["frontrow_batch_frames"] = str(args.batch_frames)
    rows: list[LatencyRow] = []
    cap: Capacity | None = None
    with pnyx_node(env_settings=settings) as node, httpx.Client(base_url=node.url) as c:
        upstream = node.url.removeprefix("http://")
        with frontrow_edge(upstream, edge_port, workers=None) as edge:
            for i, n in enumerate(int(x) for x in args.subscribers.split(",")):
                space, (host,) = stage(c, prefix=f"lat{i}")
                row = asyncio.run(
                    frontrow_latency(
                        edge_port,
                        node.url,
                        node.pid,
                        edge.workers,
                        space,
                        host.token,
                        subscribers=n,
                        onsets=args.onsets,
                    )
                )
                rows.append(row)
                print(f"{n} subscribers: {len(row.arrival)} onsets found", flush=True)
        if args.capacity:
            with frontrow_edge(upstream, edge_port, workers=1) as edge:
                (worker,) = edge.workers
                space, (host,) = stage(c, prefix="cap")
                cap = asyncio.run(
                    capacity(
                        edge_port,
                        node.url,
                        worker,
                        space,
                        host.token,
                        args.capacity,
                        args.capacity_seconds,
                    )
                )
    print(f"machine: {machine()}")
    batch = args.batch_frames or 2
    print(
        f"setup: one pnyx serve (defaults, frontrow_batch_frames {batch}), one nginx edge "
        "(pnyx edge-config --frontrow: nchan), loopback; 4 decoding probes in the bench "
        f"process, the other subscribers in client processes ({PER_PROCESS} each)"
    )
    print(
        "| subscribers | arrival p50 ms | arrival p95 ms | player p50 ms | player p95 ms "
        "| onsets | stalls | nginx CPU (all workers) | node CPU |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(row.line())
    for row in rows:
        if row.player:
            p95 = percentile(row.player, 0.95)
            verdict = "meets" if p95 <= GOAL_P95_S else "MISSES"
            print(
                f"{row.subscribers}: player p95 {p95:.3f} s {verdict} the goal (≤ {GOAL_P95_S} s)"
            )
    if cap is not None:
        c = cap
        per_core = c.load.connected / c.worker_share if c.worker_share > 0 else float("inf")
        # what each load subscriber got, against what the probe got in the same window
        # (the load clients count over their whole run, which is as long)
        each = c.load_bytes_per_s / max(c.load.connected, 1)
        probe_rate = c.probe_bytes / c.seconds
        print(
            f"capacity: {c.load.connected:,} subscribers (+1 probe) on ONE nginx worker: "
            f"{c.worker_share * 100:.1f} % of a core -> {per_core:,.0f} subscribers per core "
            f"({c.worker_share / max(c.load.connected, 1) * 1e6:.1f} µs of CPU per "
            f"subscriber-second); {c.load_bytes_per_s * 8 / 1e6:.1f} Mbit/s to them"
        )
        print(
            f"  node posted {c.posted / c.seconds:.1f} messages/s; the probe got "
            f"{c.probe_messages / c.seconds:.1f}/s (longest gap {c.probe_longest_gap_s:.3f} s); "
            f"each load subscriber got {each * 8 / 1e3:.1f} kbit/s against the probe's "
            f"{probe_rate * 8 / 1e3:.1f}; least bytes to one "
            f"subscriber {c.load.least_bytes:,}; stalls (over 1 s without data) "
            f"{c.load.stalls}, failed connects {c.load.failed}, longest gap "
            f"{c.load.longest_gap_s:.2f} s"
        )


if __name__ == "__main__":
    sys.exit(main())
