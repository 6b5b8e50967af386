"""The front row (push tier) through a real nginx edge with nchan: mouth-to-ear latency
at 100 and 2,000 subscribers, and how many subscribers one edge core holds.

    .venv/bin/python bench/frontrow.py [--subscribers 100,2000] [--onsets 16]
                                       [--capacity 10000] [--batch-frames 2]
                                       [--pin [--worker-nice -5] [--split-rx]]
                                       [--read-every 0.2]
    .venv/bin/python bench/frontrow.py --compare-publishers 8000 [--publishers pipelined]
                                       [--pin [--split-rx]] [--batch-frames 2]

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
  that gets nothing for over a second counts as a stall. Also reported: how long the
  worker waited for a CPU while it was runnable (``/proc/PID/schedstat``: starved or
  not), how often it was preempted, each CPU's user, system, softirq, steal and idle
  time (``/proc/stat``), the TCP segments in and out, and the packets the kernel dropped
  at a full per-CPU input backlog (``/proc/net/softnet_stat``: loopback and veth
  deliver through it; each drop costs a subscriber a retransmission timeout).
* ``--pin`` (capacity row; default off): the nginx worker alone on CPU 0, at nice
  ``--worker-nice`` (-5), and everything else the bench starts (this process and its
  probes, the node, nginx's master, the client processes) on CPU 1, so the worker has a
  whole core. Loopback TCP still does the receiving side's kernel work (softirq) on the
  sending CPU: the worker's core pays for its subscribers' receive path too, which an
  edge serving remote listeners does not. ``--split-rx`` (with ``--pin``) moves it: the
  bench and all it starts run in a network namespace of their own, the load subscribers
  in another, joined by a veth whose receiving is steered (RPS) to CPU 1 on the
  subscribers' side and to CPU 0 on the edge's (their ACKs), so CPU 0 does what an
  edge's core does for remote listeners: send, and take the ACKs. Both namespaces are
  removed at the end (``pnyxlab-<pid>-fr*``, as tests/support/netlab.py names them).
* ``--compare-publishers N``: no node; the bench publishes 340-byte messages itself
  (``--publishers``: awaited, pipelined, websocket) to a one-worker edge with N
  subscribers; honours ``--pin``, ``--split-rx``, ``--batch-frames``,
  ``--capacity-seconds``.

Load subscribers read every ``--read-every`` s (200 ms; a bulk read of what piled up in
the kernel), so nginx's per-message, per-subscriber writes are what is measured, not
Python's; every byte is counted for every subscriber, and one subscriber per client
process parses its frames (the messages it got). They send an unsolicited pong every 5 s
(nchan closes a subscriber that has not answered its last ping, as a browser does by
itself), and a subscription the edge closes is counted (``closed``). Bounded: every
phase has a fixed duration.

``frontrow_latency(...)`` is the function other benches import (bench/
listener_latency_edge.py): one row at a given subscriber count.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import functools
import multiprocessing as mp
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

from latency_support import (
    cpu_seconds,
    machine,
    netlab,
    nginx_running,
    pnyx_node,
    stage,
    tones,
    webrtc,
)
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
    upstream: str,
    port: int,
    *,
    workers: int | None,
    ws_publisher: bool = False,
    every_address: bool = False,
) -> Iterator[EdgeUnderTest]:
    """nginx from ``render`` with the front row; ``workers``: worker_processes (None:
    auto, as generated); on loopback, or on every address with ``every_address``."""
    root = Path(tempfile.mkdtemp(prefix="pnyx-frontrow-edge-"))
    root.chmod(0o755)
    spec = EdgeSpec(
        f"0.0.0.0:{port}" if every_address else f"127.0.0.1:{port}",
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
@dataclass(frozen=True)
class Where:
    """Where load subscribers reach the edge: its address, and the network namespace
    they subscribe from (None: this process's)."""

    host: str = "127.0.0.1"
    netns: str | None = None


SPLIT_NET = ("10.214.77.1", "10.214.77.2", "10.214.77.0/30")  # edge, subscribers, net
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, check=False, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.decode(errors='replace')}")


def _rps(ns: str, dev: str, cpu: int) -> None:
    """Receive packet steering: what ``dev`` receives is processed (softirq) on ``cpu``."""
    _ip("netns", "exec", ns, "sh", "-c",
        f"echo {1 << cpu:x} > /sys/class/net/{dev}/queues/rx-0/rps_cpus")  # fmt: skip


@contextmanager
def split_rx() -> Iterator[Where]:
    """Two network namespaces joined by a veth: this process (and all it starts from now
    on: node, nginx, probes) moves into ``pnyxlab-<pid>-fredge`` (10.214.77.1), the load
    subscribers subscribe from ``pnyxlab-<pid>-frsubs`` (10.214.77.2). What the
    subscribers' side receives is processed on ``OTHERS_CPU``, what the edge's side
    receives (their ACKs) on ``WORKER_CPU`` (RPS), so the edge's core pays for sending
    and for the ACKs, as with remote listeners, not for its subscribers' receive path
    (over loopback the sending CPU does both). Removed (with anything left in them) when
    the block ends."""
    netlab.remove_stale()
    netlab.check_no_overlap(SPLIT_NET[2])
    edge_ns, subs_ns = (
        f"{netlab.PREFIX}{os.getpid()}-fredge",
        f"{netlab.PREFIX}{os.getpid()}-frsubs",
    )
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for ns in (edge_ns, subs_ns):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", edge_ns, "link", "add", "fr0", "type", "veth", "peer", "name", "fr1",
            "netns", subs_ns)  # fmt: skip
        for ns, dev, addr, cpu in (
            (edge_ns, "fr0", SPLIT_NET[0], WORKER_CPU),
            (subs_ns, "fr1", SPLIT_NET[1], OTHERS_CPU),
        ):
            _ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _rps(ns, dev, cpu)
        netlab.enter_netns(edge_ns)
        yield Where(SPLIT_NET[0], subs_ns)
    finally:
        if _libc.setns(home, netlab.CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back to the machine's namespace")
        os.close(home)
        netlab.remove_namespaces([edge_ns, subs_ns])


def raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# nchan pings every subscriber (``FrontRow.ping_s``) and closes one that sent no pong by
# its next ping (1000 "410 Gone"): a browser answers pings by itself. These subscribers
# read in bulk without parsing, so they send an unsolicited pong (RFC 6455 §5.5.3: a
# heartbeat nchan counts as the answer) more often than the edge pings: a masked, empty
# pong frame with a zero mask.
PONG = bytes([0x8A, 0x80, 0, 0, 0, 0])
PONG_EVERY_S = 5.0


def _pong(socks: Iterable[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.send(PONG)


def _subscribe(host: str, port: int, path: str) -> tuple[socket.socket, bytes]:
    """A WebSocket subscription; with what came after the handshake's answer (frames)."""
    s = socket.create_connection((host, port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
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
    return s, head.split(b"\r\n\r\n", 1)[1]


def _frames(buf: bytearray) -> int:
    """Count the messages (binary frames) among the complete WebSocket frames at the
    start of ``buf``, and remove those frames (server frames: unmasked)."""
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
        n += buf[0] & 0x0F == 2  # a binary frame: a message (not a ping)
        del buf[: head + size]
    return n


def load_client(
    port: int, path: str, n: int, seconds: float, every: float, out: Any, where: Where
) -> None:
    """``n`` subscribers. Connects them, says so, waits for the word to start, reads
    what piled up (not counted), then reads every ``every`` s for ``seconds`` and sends
    its counts: bytes, stalls (a subscriber that got nothing for over a second), and, for
    its first subscriber, the messages it got (parsed) to check the others by. A read
    drains a socket (into one reused buffer: no allocation per read), at most 16 reads
    of 64 KiB per socket per round. ``where``: the edge's address (and the network
    namespace to subscribe from)."""
    raise_nofile()
    if where.netns is not None:
        netlab.enter_netns(where.netns)
    socks: list[socket.socket] = []
    parsed = bytearray()  # the first subscriber's stream from its first byte: in step
    failed = 0
    for _ in range(n):
        try:
            sock, rest = _subscribe(where.host, port, path)
        except OSError:
            failed += 1
            continue
        if not socks:
            parsed += rest
        socks.append(sock)
    out.send(("ready", len(socks)))
    while not out.poll(PONG_EVERY_S):  # wait for the word to start, alive to the edge
        _pong(socks)
    out.recv()  # start
    buf = bytearray(1 << 16)
    for i, s in enumerate(socks):  # what arrived before the window is not counted
        with contextlib.suppress(OSError):
            for _ in range(64):
                m = s.recv_into(buf)
                if i == 0:
                    parsed += buf[:m]
                if m < len(buf):
                    break
    _frames(parsed)  # (not counted: complete frames go, a partial one stays)
    reads = [s.recv_into for s in socks]
    got = [0] * len(socks)
    messages = 0
    t_start = time.monotonic()
    last = [t_start] * len(socks)
    stalls = 0
    stalled: set[int] = set()
    longest = 0.0
    late = 0.0  # the longest this process overslept its period (it was not scheduled)
    t_end = t_start + seconds
    due = t_start
    pong_due = t_start
    closed: set[int] = set()  # closed by the edge (a read of 0 bytes)
    while True:
        due += every
        time.sleep(max(0.0, min(due, t_end) - time.monotonic()))
        now = time.monotonic()
        late = max(late, now - min(due, t_end))
        if now >= pong_due:  # the liveness a browser gives nchan's pings (see PONG)
            pong_due = now + PONG_EVERY_S
            _pong(s for i, s in enumerate(socks) if i not in closed)
        for i, read in enumerate(reads):
            if i in closed:
                continue
            k = 0
            try:
                for _ in range(16):
                    m = read(buf)
                    if m == 0:
                        closed.add(i)
                        break
                    k += m
                    if i == 0:
                        parsed += buf[:m]
                    if m < len(buf):
                        break
            except BlockingIOError:
                pass
            except OSError:
                continue
            if k:
                got[i] += k
                last[i] = now
                continue
            gap = now - last[i]
            if gap > 1.0:
                stalls += 1
                stalled.add(i)
                last[i] = now  # count each second of silence once
            longest = max(longest, gap)
        messages += _frames(parsed)
        if now >= t_end:
            break
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
            len(closed),
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
    overslept_s: float  # the longest a client process was not scheduled past its period
    closed: int  # subscriptions the edge closed during the window


class Load:
    """Load subscribers spread over client processes."""

    def __init__(
        self,
        port: int,
        path: str,
        n: int,
        seconds: float,
        every: float = 0.2,
        where: Where | None = None,
    ) -> None:
        self.procs: list[tuple[Any, Any]] = []
        left = n
        ctx = mp.get_context("fork")
        while left > 0:
            k = min(PER_PROCESS, left)
            left -= k
            mine, theirs = ctx.Pipe()
            p = ctx.Process(
                target=load_client,
                args=(port, path, k, seconds, every, theirs, where or Where()),
            )
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
            closed=sum(x[10] for x in parts),
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
WORKER_CPU = 0  # --pin: the nginx worker's CPU
OTHERS_CPU = 1  # --pin: everything else's


def pin_others() -> None:
    """This process (and all it starts from now on: node, nginx, client processes,
    threads) on ``OTHERS_CPU`` only."""
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("--pin needs two CPUs")
    os.sched_setaffinity(0, {OTHERS_CPU})


def pin_worker(pid: int, nice: int) -> None:
    """nginx worker ``pid`` (every thread of it) alone on ``WORKER_CPU``, at ``nice``."""
    for tid in map(int, os.listdir(f"/proc/{pid}/task")):
        os.sched_setaffinity(tid, {WORKER_CPU})
        os.setpriority(os.PRIO_PROCESS, tid, nice)


@dataclass(frozen=True)
class Sched:
    """A process's scheduling counters (``/proc/PID/schedstat``, ``status``)."""

    run_s: float  # on a CPU
    wait_s: float  # runnable but waiting for a CPU (starved)
    preempted: int  # involuntary context switches
    slept: int  # voluntary ones (it waited for events)

    @classmethod
    def of(cls, pid: int) -> Sched:
        run, wait, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
        counts = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.endswith("ctxt_switches"):
                counts[key] = int(value)
        return cls(
            int(run) / 1e9,
            int(wait) / 1e9,
            counts["nonvoluntary_ctxt_switches"],
            counts["voluntary_ctxt_switches"],
        )

    def __sub__(self, other: Sched) -> Sched:
        return Sched(
            self.run_s - other.run_s,
            self.wait_s - other.wait_s,
            self.preempted - other.preempted,
            self.slept - other.slept,
        )


CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times() -> dict[str, dict[str, float]]:
    """Each CPU's times in seconds (``/proc/stat``): {"cpu0": {"user": …, …}, …}."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            out[name] = {k: int(v) / tick for k, v in zip(CPU_FIELDS, values, strict=False)}
    return out


def cpu_shares(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], seconds: float
) -> dict[str, dict[str, float]]:
    return {
        cpu: {k: (after[cpu][k] - before[cpu][k]) / seconds for k in CPU_FIELDS} for cpu in after
    }


@dataclass
class Capacity:
    load: LoadResult
    worker_share: float  # of one core: the nginx worker's user + system time
    softirq_share: float  # of one core: the whole machine's softirq time (loopback TCP)
    posted_per_s: float  # messages the node sent to the edge (every live space)
    seconds: float
    dropped: float  # messages the node dropped (its queue to the edge was full)
    sched: Sched  # the worker's (summed over workers) over the window
    cpus: dict[str, dict[str, float]]  # each CPU's shares over the window
    clients_share: float  # of one core: the client processes
    node_share: float  # of one core: the node
    segments_per_s: tuple[float, float]  # TCP in, out of this network namespace
    backlog_drops: str  # packets dropped at a full input backlog over the window, per CPU
    trouble: tuple[str, str]  # TCP trouble over the window: the edge's side, the clients'


def posted_messages(node_url: str, outcome: str = "posted") -> float:
    """The node's front-row posts so far with ``outcome`` (posted: the edge answered;
    dropped: waited too long in the node's queue)."""
    text = httpx.get(f"{node_url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f'pnyx_frontrow_posts_total{{outcome="{outcome}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def softirq_seconds() -> float:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[7]) / os.sysconf("SC_CLK_TCK")  # cpu user nice system idle iowait irq softirq


def tcp_segments() -> tuple[int, int]:
    """TCP segments (in, out) of this process's network namespace so far
    (``/proc/net/snmp``)."""
    lines = [
        line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
        if line.startswith("Tcp:")
    ]  # fmt: skip
    row = dict(zip(lines[0], lines[1], strict=True))
    return int(row["InSegs"]), int(row["OutSegs"])


@functools.cache
def netdev_max_backlog() -> int:
    """(Read first from the machine's namespace: other namespaces do not show it.)"""
    return int(Path("/proc/sys/net/core/netdev_max_backlog").read_text())


def backlog_drops() -> tuple[int, ...]:
    """Packets the kernel dropped so far because a CPU's input backlog was full
    (``/proc/net/softnet_stat``, every CPU; ``net.core.netdev_max_backlog``): over
    loopback and veth every packet sent to a local socket passes that queue."""
    lines = Path("/proc/net/softnet_stat").read_text().splitlines()
    return tuple(int(line.split()[1], 16) for line in lines)


def _minus(after: tuple[int, ...], before: tuple[int, ...]) -> str:
    """Per-CPU differences, e.g. "cpu0 12, cpu1 0"."""
    return ", ".join(
        f"cpu{i} {a - b:,}" for i, (a, b) in enumerate(zip(after, before, strict=True))
    )


TCP_TROUBLE = (
    "RetransSegs",
    "TCPTimeouts",
    "TCPRcvQDrop",
    "PruneCalled",
    "TCPRcvCollapsed",
    "TCPWantZeroWindowAdv",
    "TCPMemoryPressures",
)


def _proc_net(name: str, netns: str | None) -> str:
    if netns is None:
        return Path(f"/proc/self/net/{name}").read_text()
    argv = ["ip", "netns", "exec", netns, "cat", f"/proc/net/{name}"]
    return subprocess.run(argv, capture_output=True, check=True, timeout=30).stdout.decode()


def tcp_trouble(netns: str | None = None) -> dict[str, int]:
    """TCP's counters of loss and memory trouble in network namespace ``netns`` (None:
    this process's; ``/proc/net/snmp`` and ``netstat``): retransmissions, timeouts,
    receive queues pruned or full, memory pressure."""
    out: dict[str, int] = {}
    for name in ("snmp", "netstat"):
        rows = [line.split() for line in _proc_net(name, netns).splitlines()]
        for keys, values in zip(rows[::2], rows[1::2], strict=False):
            for k, v in zip(keys[1:], values[1:], strict=True):
                if k in TCP_TROUBLE:
                    out[k] = int(v)
    return out


def _trouble_line(before: dict[str, int], after: dict[str, int]) -> str:
    return ", ".join(f"{k} {after.get(k, 0) - before.get(k, 0):,}" for k in TCP_TROUBLE)


def _sched(pids: list[int]) -> Sched:
    total = Sched(0.0, 0.0, 0, 0)
    for pid in pids:
        one = Sched.of(pid)
        total = Sched(
            total.run_s + one.run_s,
            total.wait_s + one.wait_s,
            total.preempted + one.preempted,
            total.slept + one.slept,
        )
    return total


async def capacity(
    edge_port: int,
    node: Any,
    workers: list[int],
    space: str,
    token: str,
    n: int,
    seconds: float,
    every: float = 0.2,
    where: Where | None = None,
) -> Capacity:
    """``n`` load subscribers on a one-worker edge, counted for ``seconds`` once all are
    connected and a settling second has passed; they read every ``every`` s (from
    ``where``)."""
    track = webrtc.ToneTrack(TONE_HZ, on=True)
    me = await webrtc.publish(node.url, space, token, track)
    path = f"/frontrow/{space}"
    try:
        await me.connected()
        await asyncio.sleep(2.0)
        load = Load(edge_port, path, n, seconds, every, where)
        clients = [p.pid for p, _ in load.procs]
        await asyncio.to_thread(load.ready)
        await asyncio.sleep(1.0)
        load.start()
        c0, s0, t0 = sum(map(cpu_seconds, workers)), softirq_seconds(), time.monotonic()
        q0, k0, g0, b0 = _sched(workers), cpu_times(), tcp_segments(), backlog_drops()
        e0, r0 = tcp_trouble(), tcp_trouble(where.netns if where else None)
        l0, n0 = sum(map(cpu_seconds, clients)), cpu_seconds(node.pid)
        p0 = await asyncio.to_thread(posted_messages, node.url)
        d0 = await asyncio.to_thread(posted_messages, node.url, "dropped")
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - t0
        share = (sum(map(cpu_seconds, workers)) - c0) / elapsed
        soft = (softirq_seconds() - s0) / elapsed
        q1, k1, g1, b1 = _sched(workers), cpu_times(), tcp_segments(), backlog_drops()
        e1, r1 = tcp_trouble(), tcp_trouble(where.netns if where else None)
        l1, n1 = sum(map(cpu_seconds, clients)), cpu_seconds(node.pid)
        posted = (await asyncio.to_thread(posted_messages, node.url) - p0) / elapsed
        dropped = await asyncio.to_thread(posted_messages, node.url, "dropped") - d0
        result = await asyncio.to_thread(load.result)
        return Capacity(
            result,
            share,
            soft,
            posted,
            elapsed,
            dropped,
            q1 - q0,
            cpu_shares(k0, k1, elapsed),
            (l1 - l0) / elapsed,
            (n1 - n0) / elapsed,
            ((g1[0] - g0[0]) / elapsed, (g1[1] - g0[1]) / elapsed),
            _minus(b1, b0),
            (_trouble_line(e0, e1), _trouble_line(r0, r1)),
        )
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


async def compare_publishers(
    n: int,
    batch: int,
    seconds: float = 15.0,
    *,
    modes: tuple[str, ...] = ("awaited", "pipelined", "websocket"),
    nice: int | None = None,
    where: Where | None = None,
    every: float = 0.2,
) -> list[str]:
    """Each way of publishing (``modes``) against a one-worker edge with ``n``
    subscribers: what a parsed subscriber got of what was sent. ``nice``: pin the worker
    (:func:`pin_worker`); ``where``: where the subscribers subscribe from."""
    where = where or Where()
    period = batch * FRAME_SAMPLES / RATE
    lines: list[str] = []
    trouble: list[str] = []
    for mode in modes:
        port = free_port()
        with frontrow_edge(
            "127.0.0.1:9",
            port,
            workers=1,
            ws_publisher=True,
            every_address=where.netns is not None,
        ) as edge:
            (worker,) = edge.workers
            if nice is not None:
                pin_worker(worker, nice)
            space = f"cmp-{mode}"
            pub = asyncio.create_task(_publish(mode, port, space, seconds + 6, period))
            await asyncio.sleep(1.0)
            load = Load(port, f"/frontrow/{space}", n, seconds, every, where)
            await asyncio.to_thread(load.ready)
            await asyncio.sleep(1.0)
            load.start()
            c0, t0, q0, k0 = cpu_seconds(worker), time.monotonic(), Sched.of(worker), cpu_times()
            b0, e0, r0 = backlog_drops(), tcp_trouble(), tcp_trouble(where.netns)
            result = await asyncio.to_thread(load.result)
            drops = _minus(backlog_drops(), b0)
            e1, r1 = tcp_trouble(), tcp_trouble(where.netns)
            trouble.append(
                f"{n:,} {mode}: the edge's side: {_trouble_line(e0, e1)}"
                + (f"; the subscribers': {_trouble_line(r0, r1)}" if where.netns else "")
            )
            elapsed = time.monotonic() - t0
            share = (cpu_seconds(worker) - c0) / elapsed
            q, cpu0 = Sched.of(worker) - q0, cpu_shares(k0, cpu_times(), elapsed)["cpu0"]
            sent = await pub
            lines.append(
                f"| {mode} | {sent / (seconds + 6):.1f} | {result.messages_per_s:.1f} | "
                f"{result.bytes_per_s / max(result.connected, 1) * 8 / 1e3:.1f} | "
                f"{result.stalled} | {share * 100:.1f} % | {q.wait_s / elapsed * 100:.1f} % | "
                f"{cpu0['softirq'] * 100:.1f} % | {cpu0['idle'] * 100:.1f} % | {drops} |"
            )
    return [*lines, "", "TCP over the window:", *trouble]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--subscribers", default="100,2000", help="latency rows (comma-separated)")
    ap.add_argument("--onsets", type=int, default=16)
    ap.add_argument("--capacity", type=int, default=10_000, help="0: skip the capacity row")
    ap.add_argument(
        "--capacity-seconds",
        type=float,
        default=20.0,
        help="the counted window of the capacity row and of --compare-publishers (20 s)",
    )
    ap.add_argument("--capacity-workers", type=int, default=1, help="nginx worker processes")
    ap.add_argument("--batch-frames", type=int, default=None, help="frontrow_batch_frames")
    ap.add_argument(
        "--pin",
        action="store_true",
        help=f"capacity row: the nginx worker alone on CPU {WORKER_CPU} (at --worker-nice), "
        f"everything else the bench starts on CPU {OTHERS_CPU}",
    )
    ap.add_argument(
        "--worker-nice", type=int, default=-5, help="with --pin: the worker's nice (-5)"
    )
    ap.add_argument(
        "--split-rx",
        action="store_true",
        help="capacity row: the load subscribers in a network namespace of their own, "
        "behind a veth whose receiving is steered (RPS) to their CPU, so the edge's CPU "
        "does not also do their receive path (as on loopback); with --pin",
    )
    ap.add_argument(
        "--read-every",
        type=float,
        default=0.2,
        metavar="S",
        help="capacity row: how often a client process reads its sockets (0.2 s)",
    )
    ap.add_argument(
        "--publishers",
        default="awaited,pipelined,websocket",
        help="with --compare-publishers: which (comma-separated)",
    )
    ap.add_argument(
        "--compare-publishers",
        type=int,
        default=0,
        metavar="N",
        help="only compare the ways a node can publish, with N subscribers on one worker",
    )
    args = ap.parse_args()
    raise_nofile()
    if args.split_rx and not args.pin:
        ap.error("--split-rx needs --pin")
    if args.pin:
        pin_others()
    netdev_max_backlog()
    with contextlib.ExitStack() as stack:
        where = stack.enter_context(split_rx()) if args.split_rx else Where()
        run(args, where)


def run(args: argparse.Namespace, where: Where) -> None:
    if args.compare_publishers:
        lines = asyncio.run(
            compare_publishers(
                args.compare_publishers,
                args.batch_frames or 2,
                args.capacity_seconds,
                modes=tuple(args.publishers.split(",")),
                nice=args.worker_nice if args.pin else None,
                where=where,
                every=args.read_every,
            )
        )
        print(f"machine: {machine()}")
        print(
            f"{args.compare_publishers:,} subscribers on one nginx worker, a message every "
            f"{(args.batch_frames or 2) * 20} ms, counted over {args.capacity_seconds:g} s"
            + (" (pinned)" if args.pin else "")
            + (" (--split-rx)" if args.split_rx else "")
            + f", net.core.netdev_max_backlog {netdev_max_backlog()}"
        )
        print(
            "| publisher | sent/s | got/s (a parsed subscriber) | kbit/s each | stalled "
            "| worker CPU | worker waited | cpu0 softirq | cpu0 idle | backlog drops |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
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
            with frontrow_edge(
                upstream,
                edge_port,
                workers=args.capacity_workers,
                every_address=where.netns is not None,
            ) as edge:
                if args.pin:
                    for worker in edge.workers:
                        pin_worker(worker, args.worker_nice)
                space, (host,) = stage(c, prefix="cap")
                cap = asyncio.run(
                    capacity(
                        edge_port,
                        node,
                        edge.workers,
                        space,
                        host.token,
                        args.capacity,
                        args.capacity_seconds,
                        args.read_every,
                        where,
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
            f"a parsed subscriber (the node sent {c.posted_per_s:.1f}/s for all its "
            f"spaces, dropped {c.dropped:.0f}); "
            f"stalls (over 1 s without data) {lr.stalls} ({lr.stalled} subscribers), "
            f"longest gap {lr.longest_gap_s:.2f} s, a client process overslept by up to "
            f"{lr.overslept_s:.2f} s; failed connects {lr.failed}, closed by the edge "
            f"{lr.closed}"
        )
        q = c.sched
        pinned = (
            f"pinned: worker on CPU {WORKER_CPU} at nice {args.worker_nice}, the rest on "
            f"CPU {OTHERS_CPU}"
            if args.pin
            else "not pinned"
        ) + (", subscribers' receive path on their own CPU (--split-rx)" if args.split_rx else "")
        print(
            f"  scheduling ({pinned}): the worker ran {q.run_s / c.seconds * 100:.1f} % "
            f"and waited runnable for a CPU {q.wait_s / c.seconds * 100:.1f} % of the "
            f"time; preempted {q.preempted / c.seconds:.1f}/s, slept {q.slept / c.seconds:.1f}"
            f"/s; client processes {c.clients_share * 100:.1f} %, node "
            f"{c.node_share * 100:.1f} % of a core"
        )
        seg_in, seg_out = c.segments_per_s
        print(
            f"  TCP segments of the {'edge' if args.split_rx else 'machine'}'s network "
            f"namespace: {seg_in:,.0f}/s in, {seg_out:,.0f}/s out"
            + (" (in: mostly the subscribers' ACKs)" if args.split_rx else "")
            + f"; dropped at a full input backlog: {c.backlog_drops} packets "
            f"(net.core.netdev_max_backlog {netdev_max_backlog()})"
        )
        edge_side, client_side = c.trouble
        if args.split_rx:
            print(f"  TCP, the edge's namespace: {edge_side}")
            print(f"  TCP, the subscribers' namespace: {client_side}")
        else:
            print(f"  TCP (one namespace): {edge_side}")
        for cpu, t in c.cpus.items():
            print(
                f"  {cpu}: "
                + ", ".join(f"{k} {t[k] * 100:.1f} %" for k in CPU_FIELDS if k != "iowait")
            )


if __name__ == "__main__":
    sys.exit(main())
