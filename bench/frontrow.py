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
import contextlib
import multiprocessing as mp
import os
import random
import resource
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
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
def nginx_workers(master: int) -> list[int]:
    """nginx's worker processes (they do the fan-out): not its cache manager, nor its cache
    loader, which exits a minute after the start."""
    found = []
    children = Path(f"/proc/{master}/task/{master}/children").read_text()
    for pid in map(int, children.split()):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"worker process" in title:
            found.append(pid)
    return sorted(found)


@dataclass
class EdgeUnderTest:
    port: int
    proc: Any

    @property
    def workers(self) -> list[int]:
        return nginx_workers(self.proc.pid)


@contextmanager
def frontrow_edge(
    upstream: str, port: int, *, workers: int | None, ws_publisher: bool = False
) -> Iterator[EdgeUnderTest]:
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
    if ws_publisher:  # for the comparison only: pnyx edge-config does not offer it
        text = text.replace("nchan_publisher http;", "nchan_publisher http websocket;")
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
def raise_nofile() -> None:
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


def _frames(buf: bytearray) -> int:
    """Count (and remove) the complete WebSocket frames at the start of ``buf`` (server
    frames: unmasked; nchan's are small)."""
    n = 0
    while len(buf) >= 2:
        size = buf[1] & 0x7F
        head = 2
        if size == 126:
            if len(buf) < 4:
                break
            size, head = int.from_bytes(buf[2:4], "big"), 4
        elif size == 127:
            if len(buf) < 10:
                break
            size, head = int.from_bytes(buf[2:10], "big"), 10
        if len(buf) < head + size:
            break
        del buf[: head + size]
        n += 1
    return n


def load_client(port: int, path: str, n: int, seconds: float, out: Any) -> None:
    """``n`` subscribers. Connects them, says so, waits for the word to start, reads
    what piled up (not counted), then reads every 200 ms for ``seconds`` and sends its
    counts: bytes, stalls (a subscriber that got nothing for over a second), and, for
    its first subscriber, the messages it got (parsed) to check the others by."""
    raise_nofile()
    socks: list[socket.socket] = []
    failed = 0
    for _ in range(n):
        try:
            socks.append(_subscribe(port, path))
        except OSError:
            failed += 1
    out.send(("ready", len(socks)))
    out.recv()  # start
    for s in socks:  # what arrived before the window is not counted
        with contextlib.suppress(OSError):
            while s.recv(1 << 16):
                pass
    got = [0] * len(socks)
    parsed = bytearray()
    messages = 0
    t_start = time.monotonic()
    last = [t_start] * len(socks)
    stalls = 0
    stalled: set[int] = set()
    longest = 0.0
    late = 0.0  # the longest this process overslept its 200 ms (it was not scheduled)
    t_end = t_start + seconds
    woke = t_start
    while time.monotonic() < t_end:
        time.sleep(0.2)
        now = time.monotonic()
        late = max(late, now - woke - 0.2)
        woke = now
        for i, s in enumerate(socks):
            try:
                data = s.recv(1 << 16)
            except BlockingIOError:
                gap = now - last[i]
                if gap > 1.0:
                    stalls += 1
                    stalled.add(i)
                    last[i] = now  # count each second of silence once
                longest = max(longest, gap)
                continue
            except OSError:
                continue
            got[i] += len(data)
            last[i] = now
            if i == 0:
                parsed += data
                messages += _frames(parsed)
    elapsed = time.monotonic() - t_start
    for s in socks:
        s.close()
    out.send(
        (
            "done",
            len(socks),
            sum(got) / elapsed,
            stalls,
            failed,
            longest,
            min(got or [0]) / elapsed,
            len(stalled),
            messages / elapsed,
            late,
        )
    )


@dataclass
class LoadResult:
    connected: int
    bytes_per_s: float  # to all of them, over the counted window
    stalls: int
    failed: int
    longest_gap_s: float
    least_bytes_per_s: float  # to the subscriber that got the least
    stalled: int  # subscribers with at least one stall
    messages_per_s: float  # what one parsed subscriber per process got (the lowest)
    overslept_s: float  # the longest a client process was not scheduled past its 200 ms


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

    def start(self) -> None:
        for _, pipe in self.procs:
            pipe.send("start")

    def close(self) -> None:
        """End any client process still running (after a failure; a no-op after
        :meth:`result`)."""
        for p, _ in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(10)

    def result(self, timeout: float = 120) -> LoadResult:
        parts = []
        for p, pipe in self.procs:
            if not pipe.poll(timeout):
                raise TimeoutError("a load client did not finish")
            parts.append(pipe.recv())
            p.join(10)
        return LoadResult(
            connected=sum(x[1] for x in parts),
            bytes_per_s=sum(x[2] for x in parts),
            stalls=sum(x[3] for x in parts),
            failed=sum(x[4] for x in parts),
            longest_gap_s=max(x[5] for x in parts),
            least_bytes_per_s=min(x[6] for x in parts),
            stalled=sum(x[7] for x in parts),
            messages_per_s=min(x[8] for x in parts),
            overslept_s=max(x[9] for x in parts),
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
    (four probes that decode, the rest load subscribers in client processes); the host
    (``token``) publishes the tone from here."""
    track = webrtc.ToneTrack(TONE_HZ, on=False)
    me = await webrtc.publish(node_url, space, token, track)
    try:
        await me.connected()
        await asyncio.sleep(2.0)  # the channel exists once messages flow
        return await measure(
            edge_port, space, track.switch, nginx_pids, node_pid,
            subscribers=subscribers, onsets=onsets,
        )  # fmt: skip
    finally:
        await me.close()


async def measure(
    edge_port: int,
    space: str,
    switch: Callable[[bool], Awaitable[float]],
    nginx_pids: list[int],
    node_pid: int,
    *,
    subscribers: int,
    onsets: int,
) -> LatencyRow:
    """One latency row of a space whose program already flows to the edge: ``switch(on)``
    turns its tone on or off and returns the capture instant. ``subscribers`` WebSocket
    subscribers on ``/frontrow/{space}`` of the edge on ``edge_port``: four probes here,
    the rest :class:`Load`; ``onsets`` onsets, each on for 0.7 s and off for 0.8 s. CPU:
    of ``nginx_pids`` (summed) and of ``node_pid`` over the onsets."""
    path = f"/frontrow/{space}"
    load: Load | None = None
    phase_s = onsets * 1.6 + 4.0
    extra = max(0, subscribers - PROBES)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        if extra:
            load = Load(edge_port, path, extra, phase_s)
            await asyncio.to_thread(load.ready)
            load.start()
        probes = [Probe(f"ws://127.0.0.1:{edge_port}{path}", []) for _ in range(PROBES)]
        tasks = [asyncio.create_task(p.run(stop)) for p in probes]
        await asyncio.sleep(1.0)
        cpu0 = sum(cpu_seconds(p) for p in nginx_pids), cpu_seconds(node_pid)
        t0 = time.monotonic()
        t_ons = []
        for _ in range(onsets):
            await asyncio.sleep(random.uniform(0, 0.04))  # land anywhere in a batch
            t_ons.append(await switch(True))
            await asyncio.sleep(0.7)
            await switch(False)
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
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        if load is not None:
            load.close()
    return LatencyRow(
        subscribers,
        arrival,
        [a + PLAYER_BUFFER_S for a in arrival],
        result,
        cpu1[0] - cpu0[0],
        cpu1[1] - cpu0[1],
        seconds,
    )


# -- capacity -------------------------------------------------------------------------
@dataclass
class Capacity:
    load: LoadResult
    worker_share: float  # of one core: the nginx worker's user + system time
    softirq_share: float  # of one core: the whole machine's softirq time (loopback TCP)
    posted_per_s: float  # messages the node sent to the edge (every live space)
    seconds: float


def posted_messages(node_url: str) -> float:
    text = httpx.get(f"{node_url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith('pnyx_frontrow_posts_total{outcome="posted"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def softirq_seconds() -> float:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[7]) / os.sysconf("SC_CLK_TCK")  # cpu user nice system idle iowait irq softirq


async def capacity(
    edge_port: int,
    node_url: str,
    workers: list[int],
    space: str,
    token: str,
    n: int,
    seconds: float,
) -> Capacity:
    """``n`` load subscribers on a one-worker edge, counted for ``seconds`` once all are
    connected and a settling second has passed."""
    track = webrtc.ToneTrack(TONE_HZ, on=True)
    me = await webrtc.publish(node_url, space, token, track)
    path = f"/frontrow/{space}"
    try:
        await me.connected()
        await asyncio.sleep(2.0)
        load = Load(edge_port, path, n, seconds)
        await asyncio.to_thread(load.ready)
        await asyncio.sleep(1.0)
        load.start()
        c0, s0, t0 = sum(map(cpu_seconds, workers)), softirq_seconds(), time.monotonic()
        p0 = await asyncio.to_thread(posted_messages, node_url)
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - t0
        share = (sum(map(cpu_seconds, workers)) - c0) / elapsed
        soft = (softirq_seconds() - s0) / elapsed
        posted = (await asyncio.to_thread(posted_messages, node_url) - p0) / elapsed
        result = await asyncio.to_thread(load.result)
        return Capacity(result, share, soft, posted, elapsed)
    finally:
        await me.close()


# -- how a node publishes: the comparison behind services/frontrow.py ---------------------
async def _publish(mode: str, port: int, space: str, seconds: float, period: float) -> int:
    """Publish ``seconds`` of 340-byte messages every ``period`` s: ``awaited`` (httpx, one
    POST after the other's answer), ``pipelined`` (the node's own way: POSTs written as
    they come on one connection, answers read apart) or ``websocket`` (nchan's WebSocket
    publisher). Returns how many it sent."""
    message = os.urandom(340)
    url = f"http://127.0.0.1:{port}/frontrow/pub/{space}"
    t_end = time.monotonic() + seconds
    sent = 0
    due = time.monotonic()

    async def pace() -> None:
        nonlocal due, sent
        sent += 1
        due += period
        await asyncio.sleep(max(0.0, due - time.monotonic()))

    if mode == "awaited":
        async with httpx.AsyncClient() as c:
            while time.monotonic() < t_end:
                headers = {"Content-Type": "application/octet-stream"}
                await c.post(url, content=message, headers=headers)
                await pace()
    elif mode == "pipelined":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST /frontrow/pub/{space} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(message)}\r\n\r\n"
        ).encode()

        async def drain() -> None:
            while await reader.read(1 << 16):
                pass

        answers = asyncio.create_task(drain())
        while time.monotonic() < t_end:
            writer.write(head + message)
            await pace()
        answers.cancel()
        writer.close()
    else:
        async with websockets.connect(url.replace("http", "ws"), compression=None) as ws:

            async def discard() -> None:
                async for _ in ws:
                    pass

            replies = asyncio.create_task(discard())
            while time.monotonic() < t_end:
                await ws.send(message)
                await pace()
            replies.cancel()
    return sent


async def compare_publishers(n: int, batch: int, seconds: float = 15.0) -> list[str]:
    """Each way of publishing against a one-worker edge with ``n`` subscribers: what a
    parsed subscriber got of what was sent."""
    period = batch * FRAME_SAMPLES / RATE
    lines = []
    for mode in ("awaited", "pipelined", "websocket"):
        port = free_port()
        with frontrow_edge("127.0.0.1:9", port, workers=1, ws_publisher=True) as edge:
            space = f"cmp-{mode}"
            pub = asyncio.create_task(_publish(mode, port, space, seconds + 6, period))
            await asyncio.sleep(1.0)
            load = Load(port, f"/frontrow/{space}", n, seconds)
            await asyncio.to_thread(load.ready)
            await asyncio.sleep(1.0)
            load.start()
            (worker,) = edge.workers
            c0, t0 = cpu_seconds(worker), time.monotonic()
            result = await asyncio.to_thread(load.result)
            share = (cpu_seconds(worker) - c0) / (time.monotonic() - t0)
            sent = await pub
            lines.append(
                f"| {mode} | {sent / (seconds + 6):.1f} | {result.messages_per_s:.1f} | "
                f"{result.bytes_per_s / max(result.connected, 1) * 8 / 1e3:.1f} | "
                f"{result.stalled} | {share * 100:.1f} % |"
            )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--subscribers", default="100,2000", help="latency rows (comma-separated)")
    ap.add_argument("--onsets", type=int, default=16)
    ap.add_argument("--capacity", type=int, default=10_000, help="0: skip the capacity row")
    ap.add_argument("--capacity-seconds", type=float, default=20.0)
    ap.add_argument("--capacity-workers", type=int, default=1, help="nginx worker processes")
    ap.add_argument("--batch-frames", type=int, default=None, help="frontrow_batch_frames")
    ap.add_argument(
        "--compare-publishers",
        type=int,
        default=0,
        metavar="N",
        help="only compare the ways a node can publish, with N subscribers on one worker",
    )
    args = ap.parse_args()
    raise_nofile()
    if args.compare_publishers:
        lines = asyncio.run(compare_publishers(args.compare_publishers, args.batch_frames or 2))
        print(f"machine: {machine()}")
        print(
            f"{args.compare_publishers:,} subscribers on one nginx worker, a message every "
            f"{(args.batch_frames or 2) * 20} ms, counted over 15 s"
        )
        print("| publisher | sent/s | got/s (a parsed subscriber) | kbit/s each | stalled | CPU |")
        print("| --- | --- | --- | --- | --- | --- |")
        print("\n".join(lines))
        return
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
            with frontrow_edge(upstream, edge_port, workers=args.capacity_workers) as edge:
                space, (host,) = stage(c, prefix="cap")
                cap = asyncio.run(
                    capacity(
                        edge_port,
                        node.url,
                        edge.workers,
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
        c, lr = cap, cap.load
        subs = max(lr.connected, 1)
        per_core = subs / c.worker_share if c.worker_share > 0 else float("inf")
        both = c.worker_share + c.softirq_share
        print(
            f"capacity: {lr.connected:,} subscribers on {args.capacity_workers} nginx "
            f"worker(s), batch {batch}: the workers {c.worker_share * 100:.1f} % of a core -> "
            f"{per_core:,.0f} subscribers per core ({c.worker_share / subs * 1e6:.1f} µs "
            f"of CPU per subscriber-second); with ALL the machine's softirq time counted "
            f"too ({c.softirq_share * 100:.1f} %): {subs / both:,.0f} per core"
        )
        print(
            f"  delivered: {lr.bytes_per_s * 8 / 1e6:.1f} Mbit/s in all, "
            f"{lr.bytes_per_s / subs * 8 / 1e3:.1f} kbit/s per subscriber (least "
            f"{lr.least_bytes_per_s * 8 / 1e3:.1f}); {lr.messages_per_s:.1f} messages/s to "
            f"a parsed subscriber (the node sent {c.posted_per_s:.1f}/s for all its spaces); "
            f"stalls (over 1 s without data) {lr.stalls} ({lr.stalled} subscribers), "
            f"longest gap {lr.longest_gap_s:.2f} s, a client process overslept by up to "
            f"{lr.overslept_s:.2f} s; failed connects {lr.failed}"
        )


if __name__ == "__main__":
    sys.exit(main())
