"""How many 13-speaker stages one stage node holds: a ramp of 1, 2, 3, … live spaces,
each with a host, two co-hosts and ten speakers publishing over WebRTC, until the mix
clock falls behind (tick lateness p99 over 20 ms, or skipped ticks), a stage stops
working, or the machine runs out of CPU.

    .venv/bin/python bench/stage_scale.py [--max-stages 8] [--seconds 15] [--warmup 5]
                                          [--nodes auto|1|2|both] [--client-procs 1]

**Light publishers.** Each publisher is a real aiortc peer connection (ICE, DTLS, SRTP;
one WHIP-shaped POST through ``tests/support/webrtc.publish``) that sends Opus and gets
its mix-minus back, but it does no codec work while it runs: its tone is encoded once
(one second of packets, looped), sent pre-encoded by the stage node's own
:class:`~pnyx.media.rtp_path.DirectSender` (one call per 20 ms per publisher, paced by
one task per stage), and what it receives takes the stage node's own receive path
(:func:`~pnyx.media.rtp_path.receive_directly`, the jitter buffer handing frames to a
callback instead of a decoder thread) and is only counted. The clients run in separate
processes (``--client-procs``, stages dealt round-robin); their CPU is measured and
reported per publisher.

**A stage that holds works.** The host of each stage keeps the Opus packets of its last
three seconds of mix-minus; after each step they are decoded and the twelve other tones
must all be heard in the last two seconds, and not the host's own
(tests/support/tones.py). Every publisher's mix-minus packets are counted too.

**Per step**, over ``--seconds`` after ``--warmup``: server CPU (user + system, all
threads, % of one core, /proc/<pid>/stat) and per thread (/proc/<pid>/task/<tid>/stat:
the main thread, tid = pid, runs the event loop; the mix clock's thread is taken to be
the busiest other thread; the rest are the AAC encoder threads, one per space, and
libraries' pools); the mix clock's tick lateness p50 / p99 from /metrics
(``pnyx_media_tick_lateness_seconds``, reported as the histogram bucket bound the
percentile falls under), skipped ticks, one space's tick work p99
(``pnyx_media_mix_seconds``); the clients' CPU; the rest of the machine's CPU
(/proc/stat: others share this machine); and the run-queue wait of the event loop's and
the mix clock's threads (/proc/<pid>/task/<tid>/schedstat: time runnable but without a
core, which tells a busy machine from a busy thread). The ramp stops at the first step
that misses (p99 > 20 ms, a skipped tick, a stage whose host does not hear its twelve
tones, a publisher getting under half its mix-minus) or when server + clients pass 190 %
of a core on this 2-core machine, and says which; a step that misses is measured once
more first (``--retries``), since one stall on a shared machine can spoil a window.
``--mix-nice N`` (an experiment) gives the server's mix clock thread nice N.

**Two processes.** ``--nodes auto`` (the default) runs the ramp again on two
``pnyx serve`` processes sharing a Redis and a PostgreSQL (started here), stage nodes
taking spaces by lease, when the single process stopped because of one of its own
threads (the event loop or the mix clock near a full core) rather than the machine.
Which node holds each space is read from its lease.

Server settings: production defaults, except live captions off (``--captions`` keeps
them: a recogniser per space is a cost of its own, measured by bench/captions.py);
``--set KEY=VALUE`` for any other. Bounded: ``--max-stages`` steps of about
``warmup + seconds + 10`` s each, per ramp.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from latency_support import (
    Account,
    cpu_seconds,
    machine,
    pnyx_node,
    poll,
    stage,
    tones,
    webrtc,
)

# isort: split
# (latency_support puts the repository on sys.path for tests.support)
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.postgres_server import running_postgres
from tests.support.redis_server import redis_server

from failover import lease_holder, node_id
from pnyx.media import rtp_path
from pnyx.media.ingest import _take_over_receivers
from pnyx.media.opus import OpusDecoder, OpusEncoder, OpusPacket
from stage_cpu import delta, scrape

RATE = 48_000
FRAME_S = 0.02
FRAME_SAMPLES = 960
PER_STAGE = 13  # host, 2 co-hosts, 10 speakers
FREQS = [300.0 + 97.0 * k for k in range(PER_STAGE)]  # whole Hz: a 1 s loop is seamless
AMPLITUDE = 0.05  # 13 tones summed stay far from clipping
LOOP_FRAMES = 50  # one second of packets per tone, looped
KEEP_FRAMES = 150  # the host keeps its last 3 s of mix-minus packets
CHECK_FRAMES = 100  # and the last 2 s of them are checked
MAX_CATCH_UP = 10  # frames a late pacer still sends at once (the rest are dropped)
LATENESS_GOAL_S = 0.020
MACHINE_LIMIT = 190.0  # % of one core: server + clients on 2 cores
THREAD_LIMIT = 85.0  # % of one core: a thread this busy is the process's limit
LATENESS = "pnyx_media_tick_lateness_seconds"
MIX_TIME = "pnyx_media_mix_seconds"  # one tick's work for every space


# -- the client processes ----------------------------------------------------------------


def tone_packets(freq: float) -> list[bytes]:
    """One second of a tone as 20 ms Opus packets, encoded once; the first second is
    encoded and thrown away so the looped packets come from a settled encoder."""
    encoder = OpusEncoder()
    packets: list[bytes] = []
    try:
        for n in range(2 * LOOP_FRAMES):
            pcm = tones.sine(freq, FRAME_SAMPLES, AMPLITUDE, start=n * FRAME_SAMPLES)
            (packet,) = encoder.encode(np.asarray(pcm, dtype=np.float32), n * FRAME_SAMPLES)
            packets.append(packet.data)
    finally:
        encoder.close()
    return packets[LOOP_FRAMES:]


@dataclass
class LightPublisher:
    """One real peer connection sending pre-encoded packets and counting what comes back."""

    freq: float
    packets: list[bytes]
    speaker: webrtc.Speaker
    sender: rtp_path.DirectSender
    keep: collections.deque[tuple[float, bytes]] | None  # the checker's: (arrival, packet)
    sent: int = 0
    received: int = 0
    received_bytes: int = 0

    def on_frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame, dropped: bool) -> None:
        self.received += 1
        self.received_bytes += len(frame.data)
        if self.keep is not None:
            self.keep.append((time.monotonic(), frame.data))

    def send(self, first: int, end: int) -> None:
        loop = self.packets
        batch = [OpusPacket(loop[n % LOOP_FRAMES], n * FRAME_SAMPLES) for n in range(first, end)]
        self.sent += self.sender.send(batch)

    def heard(self) -> set[float]:
        """The tones in the last two seconds of the kept mix-minus, decoded now; nothing if
        fewer than two seconds of it arrived in the last three (a dropped connection)."""
        assert self.keep is not None
        since = time.monotonic() - KEEP_FRAMES * FRAME_S
        decoder = OpusDecoder()
        try:
            frames = [decoder.decode(data) for at, data in list(self.keep) if at >= since]
        finally:
            decoder.close()
        if len(frames) < CHECK_FRAMES:
            return set()
        return tones.dominant_tones(np.concatenate(frames[-CHECK_FRAMES:]), RATE, FREQS)


async def light_publisher(
    url: str, space: str, token: str, freq: float, packets: list[bytes], checker: bool
) -> LightPublisher:
    # The ToneTrack only gives the offer its sending m-section: the DirectSender replaces
    # the sending task before the connection starts it (the connection starts after
    # ICE, long after publish returns), so no frame of it is ever generated or encoded.
    speaker = await webrtc.publish(url, space, token, webrtc.ToneTrack(freq))
    sender = rtp_path.DirectSender()
    sender.install(speaker.pc)
    keep: collections.deque[tuple[float, bytes]] | None = (
        collections.deque(maxlen=KEEP_FRAMES) if checker else None
    )
    me = LightPublisher(freq, packets, speaker, sender, keep)
    rtp_path.check(speaker.pc)
    rtp_path.receive_directly(speaker.pc)
    _take_over_receivers(speaker.pc, me.on_frame)
    return me


async def pace(publishers: list[LightPublisher], phase: float) -> None:
    """Send every publisher's next packet each 20 ms on an absolute schedule."""
    loop = asyncio.get_running_loop()
    t0 = loop.time() + phase
    sent = 0
    while True:
        due = int((loop.time() - t0) / FRAME_S) + 1
        sent = max(sent, due - MAX_CATCH_UP)
        for p in publishers:
            p.send(sent, due)
        sent = due
        await asyncio.sleep(max(0.0, t0 + due * FRAME_S - loop.time()))


class ClientSide:
    def __init__(self) -> None:
        self.stages: dict[int, list[LightPublisher]] = {}
        self.pacers: list[asyncio.Task[None]] = []
        self.packets = {f: tone_packets(f) for f in FREQS}

    async def add(self, k: int, url: str, space: str, tokens: list[str]) -> dict[str, Any]:
        publishers = await asyncio.gather(
            *(
                light_publisher(url, space, token, f, self.packets[f], checker=i == 0)
                for i, (token, f) in enumerate(zip(tokens, FREQS, strict=True))
            )
        )
        self.stages[k] = list(publishers)
        for p in publishers:
            await p.speaker.connected(within=30)

        def sending() -> bool:
            return all(p.sender._payload_type is not None for p in publishers)

        deadline = time.monotonic() + 10
        while not sending():
            if time.monotonic() > deadline:
                raise RuntimeError("the direct senders did not start")
            await asyncio.sleep(0.02)
        self.pacers.append(asyncio.ensure_future(pace(list(publishers), (k * 0.007) % FRAME_S)))
        return {"stage": k, "publishers": len(publishers)}

    def counters(self) -> dict[str, Any]:
        return {
            str(k): [[p.sent, p.received, p.received_bytes] for p in ps]
            for k, ps in self.stages.items()
        }

    def check(self) -> dict[str, Any]:
        out = {}
        for k, ps in self.stages.items():
            host = ps[0]
            heard = host.heard()
            expected = set(FREQS) - {host.freq}
            out[str(k)] = {
                "ok": heard == expected,
                "heard": len(heard & expected),
                "own": host.freq in heard,
                "not_connected": sum(1 for p in ps if p.speaker.pc.connectionState != "connected"),
            }
        return out

    async def close(self) -> None:
        for t in self.pacers:
            t.cancel()
        await asyncio.gather(*self.pacers, return_exceptions=True)
        for ps in self.stages.values():
            await asyncio.gather(*(p.speaker.close() for p in ps), return_exceptions=True)


async def client_main() -> None:
    side = ClientSide()
    loop = asyncio.get_running_loop()
    print("REPLY " + json.dumps({"ok": True}), flush=True)
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            request = json.loads(line)
            reply: dict[str, Any]
            try:
                if request["cmd"] == "add":
                    added = await side.add(
                        request["stage"], request["url"], request["space"], request["tokens"]
                    )
                    reply = {"ok": True, **added}
                elif request["cmd"] == "counters":
                    reply = {"ok": True, "counters": side.counters()}
                elif request["cmd"] == "check":
                    reply = {"ok": True, "check": side.check()}
                else:
                    reply = {"ok": True}
            except Exception as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
            print("REPLY " + json.dumps(reply), flush=True)
            if request["cmd"] == "stop":
                return
    finally:
        await side.close()


class Client:
    """One client process, driven by JSON lines."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--client"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._buffer = b""
        self._read(60)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def call(self, request: dict[str, Any], within: float = 120) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        reply = self._read(within)
        if not reply.get("ok"):
            raise RuntimeError(f"client process: {reply.get('error')}")
        return reply

    def _read(self, within: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + within
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                if line.startswith(b"REPLY "):
                    reply: dict[str, Any] = json.loads(line[6:])
                    return reply
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the client process did not answer")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"the client process exited ({self.proc.poll()})")
                self._buffer += chunk

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call({"cmd": "stop"}, within=60)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- measuring ---------------------------------------------------------------------------


def machine_busy() -> float:
    """CPU time every core spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def thread_seconds(pid: int) -> dict[int, tuple[float, float]]:
    """Per thread of a process: CPU time (user + system, /proc/…/stat) and the time it
    spent runnable but waiting for a core (the run-queue wait, /proc/…/schedstat)."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            waited = int((task / "schedstat").read_text().split()[1]) / 1e9
            out[int(task.name)] = ((int(fields[11]) + int(fields[12])) / tick, waited)
    return out


@dataclass
class NodeSample:
    metrics: dict[tuple[str, str], float]
    cpu: float
    threads: dict[int, tuple[float, float]]


@dataclass
class Sample:
    t: float
    nodes: list[NodeSample]
    clients_cpu: float
    machine_busy: float
    counters: dict[str, list[list[int]]]


def sample(nodes: list[PnyxProcess], clients: list[Client]) -> Sample:
    counters: dict[str, list[list[int]]] = {}
    for c in clients:
        counters.update(c.call({"cmd": "counters"})["counters"])
    return Sample(
        time.monotonic(),
        [NodeSample(scrape(n.url), cpu_seconds(n.pid), thread_seconds(n.pid)) for n in nodes],
        sum(cpu_seconds(c.pid) for c in clients),
        machine_busy(),
        counters,
    )


def bucket_bound(d: dict[tuple[str, str], float], name: str, q: float) -> float | None:
    """The upper bound of the histogram bucket the q-quantile falls in (inf past the last)."""
    buckets = []
    for (metric, labels), count in d.items():
        le = re.search(r'le="([^"]+)"', labels) if metric == f"{name}_bucket" else None
        if le:
            buckets.append((float(le.group(1)), count))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    for bound, cumulative in buckets:
        if cumulative >= q * total:
            return bound
    return float("inf")


def fmt_bound(bound: float | None, bounds: list[float]) -> str:
    if bound is None:
        return "n/a"
    if bound == float("inf"):
        return f"> {bounds[-1] * 1000:g} ms"
    return f"≤ {bound * 1000:g} ms"


@dataclass
class Step:
    stages: int
    seconds: float
    server: list[float]  # % of one core, per node
    main: list[float]
    mix: list[float]
    main_wait: list[float]  # run-queue wait, ms per second
    mix_wait: list[float]
    rest: list[float]
    threads: list[int]
    p50: float | None
    p99: float | None
    mix_p99: float | None
    skipped: float
    ticks: float
    clients: float
    delivered: float  # the least any publisher got of its expected mix-minus packets, %
    short: int  # publishers that got under half their mix-minus packets
    heard: int  # stages whose host heard the twelve other tones
    others: float = 0.0  # the rest of the machine's CPU in the window, % of one core
    attempt: int = 0  # 1 and on: the step measured again after a miss
    held_by: list[int] = field(default_factory=list)  # spaces per node

    @property
    def server_total(self) -> float:
        return sum(self.server)

    def limits(self) -> list[str]:
        out = []
        if self.p99 is None or self.p99 > LATENESS_GOAL_S:
            out.append("tick lateness p99 > 20 ms")
        if self.skipped > 0:
            out.append(f"{self.skipped:.0f} skipped ticks")
        if self.short:
            out.append(f"{self.short} publisher(s) got under half their mix-minus")
        if self.heard < self.stages:
            out.append(f"{self.stages - self.heard} stage(s) not heard whole")
        if self.server_total + self.clients > MACHINE_LIMIT:
            out.append(f"the machine: server + clients {self.server_total + self.clients:.0f} %")
        return out

    def thread_bound(self) -> bool:
        return max(self.main + self.mix) >= THREAD_LIMIT


def measure(k: int, pids: list[int], before: Sample, after: Sample, check: dict[str, Any]) -> Step:
    span = after.t - before.t
    pct = 100 / span
    server, main, mix, rest, nthreads = [], [], [], [], []
    main_wait: list[float] = []
    mix_wait: list[float] = []
    total: dict[tuple[str, str], float] = {}
    for node_before, node_after, pid in zip(before.nodes, after.nodes, pids, strict=True):
        server.append((node_after.cpu - node_before.cpu) * pct)
        used, waited = {}, {}
        for tid, (cpu, wait) in node_after.threads.items():
            cpu0, wait0 = node_before.threads.get(tid, (0.0, 0.0))
            used[tid] = (cpu - cpu0) * pct
            waited[tid] = (wait - wait0) * 1000 / span  # ms per second
        main.append(used.get(pid, 0.0))
        main_wait.append(waited.get(pid, 0.0))
        others = sorted(((v, tid) for tid, v in used.items() if tid != pid), reverse=True)
        mix.append(others[0][0] if others else 0.0)
        mix_wait.append(waited[others[0][1]] if others else 0.0)
        rest.append(sum(v for v, _ in others[1:]))
        nthreads.append(len(used))
        for key, v in delta(node_after.metrics, node_before.metrics).items():
            total[key] = total.get(key, 0.0) + v
    expected = span / FRAME_S
    delivered = 100.0
    short = 0
    for stage_key, pubs in after.counters.items():
        was = before.counters.get(stage_key)
        if was is None:
            continue
        for now, then in zip(pubs, was, strict=True):
            got = (now[1] - then[1]) / expected * 100
            delivered = min(delivered, got)
            short += got < 50
    clients = (after.clients_cpu - before.clients_cpu) * pct
    busy = (after.machine_busy - before.machine_busy) * pct
    return Step(
        others=max(0.0, busy - sum(server) - clients),
        stages=k,
        seconds=span,
        server=server,
        main=main,
        mix=mix,
        main_wait=main_wait,
        mix_wait=mix_wait,
        rest=rest,
        threads=nthreads,
        p50=bucket_bound(total, LATENESS, 0.5),
        p99=bucket_bound(total, LATENESS, 0.99),
        mix_p99=bucket_bound(total, MIX_TIME, 0.99),
        skipped=total.get(("pnyx_media_ticks_skipped_total", ""), 0.0),
        ticks=total.get(("pnyx_media_ticks_total", ""), 0.0),
        clients=clients,
        delivered=delivered,
        short=short,
        heard=sum(1 for v in check.values() if v["ok"]),
    )


def joined(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.0f} %"
    return f"{sum(values):.0f} % (" + " + ".join(f"{v:.0f}" for v in values) + ")"


def waits(s: Step) -> str:
    return " ; ".join(
        f"{a:.0f} / {b:.0f} ms/s" for a, b in zip(s.main_wait, s.mix_wait, strict=True)
    )


def each(values: list[float]) -> str:
    return " / ".join(f"{v:.0f} %" for v in values)


HEADER = (
    "| stages | publishers | spaces per node | server CPU | main thread (event loop) "
    "| busiest other (mix clock) | other threads | run-queue wait main / mix "
    "| tick lateness p50 | p99 | tick's work p99 | skipped "
    "| ticks | clients CPU | per publisher | server + clients | rest of the machine "
    "| mix-minus delivered (min) | stages heard whole |\n" + "| --- " * 19 + "|"
)


def row(s: Step, bounds: dict[str, list[float]]) -> str:
    publishers = s.stages * PER_STAGE
    return (
        f"| {s.stages}{' (again)' if s.attempt else ''} | {publishers} "
        f"| {' / '.join(map(str, s.held_by)) or '-'} "
        f"| {joined(s.server)} | {each(s.main)} | {each(s.mix)} | {each(s.rest)} "
        f"| {waits(s)} "
        f"| {fmt_bound(s.p50, bounds[LATENESS])} | {fmt_bound(s.p99, bounds[LATENESS])} "
        f"| {fmt_bound(s.mix_p99, bounds[MIX_TIME])} | {s.skipped:.0f} "
        f"| {s.ticks:.0f} | {s.clients:.0f} % | {s.clients / publishers:.2f} % "
        f"| {s.server_total + s.clients:.0f} % | {s.others:.0f} % | {s.delivered:.0f} % "
        f"| {s.heard}/{s.stages} |"
    )


@dataclass
class Ramp:
    label: str
    steps: list[Step]
    stop: list[str]  # why the ramp stopped ([] : --max-stages reached)
    error: str | None = None

    @property
    def held(self) -> Step | None:
        good = [s for s in self.steps if not s.limits()]
        return good[-1] if good else None


def ramp(
    label: str,
    nodes: list[PnyxProcess],
    args: argparse.Namespace,
    redis_url: str | None = None,
) -> Ramp:
    ids = [node_id(n) for n in nodes] if redis_url else []
    print(f"\n## {label}\n", flush=True)
    print(HEADER, flush=True)
    steps: list[Step] = []
    spaces: list[str] = []
    reniced: set[int] = set()
    bounds: dict[str, list[float]] = {}
    clients = [Client() for _ in range(args.client_procs)]
    out = Ramp(label, steps, [])
    try:
        with httpx.Client(base_url=nodes[0].url, timeout=30) as c:
            for k in range(1, args.max_stages + 1):
                if redis_url:
                    space, members = balanced_stage(c, k, redis_url, ids, spaces)
                else:
                    space, members = stage(c, cohosts=2, speakers=PER_STAGE - 3, prefix=f"s{k}")
                spaces.append(space)
                client = clients[(k - 1) % len(clients)]
                client.call(
                    {
                        "cmd": "add",
                        "stage": k,
                        "url": nodes[0].url,
                        "space": space,
                        "tokens": [m.token for m in members],
                    }
                )
                warm = [thread_seconds(n.pid) for n in nodes]
                time.sleep(args.warmup)
                if args.mix_nice is not None:
                    for n, was in zip(nodes, warm, strict=True):
                        renice_busiest(n.pid, was, args.mix_nice, reniced)
                # On a machine others use too, one stall can spoil a window: a step that
                # misses is measured again (--retries) before it counts as the limit.
                for attempt in range(1 + args.retries):
                    before = sample(nodes, clients)
                    time.sleep(args.seconds)
                    after = sample(nodes, clients)
                    check: dict[str, Any] = {}
                    for cl in clients:
                        check.update(cl.call({"cmd": "check"})["check"])
                    if not bounds:
                        bounds = {
                            name: sorted(
                                float(m.group(1))
                                for (metric, labels) in after.nodes[0].metrics
                                if metric == f"{name}_bucket"
                                and (m := re.search(r'le="([^"+]+)"', labels))
                            )
                            for name in (LATENESS, MIX_TIME)
                        }
                    s = measure(k, [n.pid for n in nodes], before, after, check)
                    s.attempt = attempt
                    if redis_url:
                        holders = [lease_holder(redis_url, sp) for sp in spaces]
                        s.held_by = [holders.count(i) for i in ids]
                    steps.append(s)
                    print(row(s, bounds), flush=True)
                    for note in stage_notes(check, before, after):
                        print(f"  {note}", flush=True)
                    if not s.limits():
                        break
                if s.limits():
                    out.stop = s.limits()
                    break
    except Exception as exc:  # report what was measured, and why it ended
        out.error = f"{type(exc).__name__}: {exc}"[:400]
        print(f"(ramp ended: {out.error})", flush=True)
    finally:
        for cl in clients:
            cl.close()
        for i, n in enumerate(nodes):
            for note in warnings(n.output()):
                print(f"  node {i + 1} logged: {note}", flush=True)
    return out


def renice_busiest(
    pid: int, was: dict[int, tuple[float, float]], nice: int, reniced: set[int]
) -> None:
    """Give the busiest thread but the main one since ``was`` (the mix clock's) ``nice``."""
    now = thread_seconds(pid)
    used = {tid: cpu - was.get(tid, (0.0, 0.0))[0] for tid, (cpu, _) in now.items() if tid != pid}
    if not used:
        return
    tid = max(used, key=lambda t: used[t])
    os.setpriority(os.PRIO_PROCESS, tid, nice)
    if tid not in reniced:
        reniced.add(tid)
        print(f"  (thread {tid} of {pid}, the busiest but the main one: nice {nice})", flush=True)


def stage_notes(check: dict[str, Any], before: Sample, after: Sample) -> list[str]:
    """What went wrong with each stage that is not whole."""
    notes = []
    span = after.t - before.t
    for k, v in check.items():
        was = before.counters.get(k)
        short = 0
        if was is not None:
            got = [now[1] - then[1] for now, then in zip(after.counters[k], was, strict=True)]
            short = sum(1 for g in got if g < 0.5 * span / FRAME_S)
        if v["ok"] and not short:
            continue
        notes.append(
            f"stage {k}: its host heard {v['heard']} of the 12 other tones"
            f"{' and its own' if v['own'] else ''}; {v['not_connected']} publisher(s) not "
            f"connected; {short} got under half their mix-minus packets"
        )
    return notes


def warnings(log: str, most: int = 8) -> list[str]:
    """A node's distinct warning lines (numbers and ids masked), with their counts."""
    seen: collections.Counter[str] = collections.Counter()
    for line in log.splitlines():
        if "WARNING" in line or "ERROR" in line:
            seen[re.sub(r"[0-9A-Za-z_-]{10,}|\d+(\.\d+)?", "…", line)[:200]] += 1
    return [f"{n} × {text}" for text, n in seen.most_common(most)]


BALANCE_TRIES = 8


def balanced_stage(
    c: httpx.Client, k: int, redis_url: str, ids: list[str], spaces: list[str]
) -> tuple[str, list[Account]]:
    """A stage on the node holding the fewest of ``spaces``. Nodes take new spaces by
    racing for their leases, which the bench cannot steer: a stage that lands on a busier
    node is ended and another made, up to BALANCE_TRIES times (then kept where it is)."""
    for attempt in range(BALANCE_TRIES):
        space, members = stage(c, cohosts=2, speakers=PER_STAGE - 3, prefix=f"s{k}t{attempt}")

        def taken(space: str = space) -> str | None:
            return lease_holder(redis_url, space)

        holder = poll.wait_until(taken, 15, f"a node to take {space}")
        assert holder is not None
        counts = [sum(1 for sp in spaces if lease_holder(redis_url, sp) == i) for i in ids]
        if counts[ids.index(holder)] == min(counts) or attempt == BALANCE_TRIES - 1:
            return space, members
        c.post(f"/v1/spaces/{space}/end", headers=members[0].auth).raise_for_status()
    raise AssertionError("unreachable")


@contextmanager
def two_nodes(settings: dict[str, str]) -> Iterator[tuple[list[PnyxProcess], str]]:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pnyx-scale-")))
        (tmp / "redis").mkdir()
        redis_url = stack.enter_context(redis_server(tmp / "redis"))
        pg = stack.enter_context(running_postgres())
        nodes = [
            stack.enter_context(
                pnyx_serve(
                    tmp / name,
                    database=pg.url(),
                    redis=redis_url,
                    settings=settings,
                    fast=False,
                    log_level="warning",
                )
            )
            for name in ("a", "b")
        ]
        yield nodes, redis_url


def summary(r: Ramp) -> str:
    held = r.held
    why = "; ".join(r.stop) if r.stop else (r.error or "--max-stages reached")
    if held is None:
        return f"{r.label}: held no stage ({why})"
    per_core = held.stages / (held.server_total / 100) if held.server_total else 0.0
    nxt = f" at {held.stages + 1}" if r.stop else ""
    return (
        f"{r.label}: held {held.stages} stage(s) of {PER_STAGE} publishers "
        f"(server {held.server_total:.0f} % of a core, "
        f"{held.server_total / held.stages:.0f} % per stage, {per_core:.1f} stages per core "
        f"of server CPU); stopped{nxt}: {why}"
    )


def threads_line(r: Ramp) -> str:
    held = r.held
    if held is None:
        return f"{r.label}: no good step"
    parts = []
    for i in range(len(held.server)):
        parts.append(
            f"node {i + 1}: {held.server[i]:.0f} % = main thread {held.main[i]:.0f} % + "
            f"mix clock thread {held.mix[i]:.0f} % + {held.threads[i] - 2} other threads "
            f"{held.rest[i]:.0f} %"
        )
    return f"{r.label}, per thread at {held.stages} stage(s): " + "; ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--max-stages", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=15.0, help="measured per step")
    ap.add_argument("--warmup", type=float, default=5.0, help="after a stage joins")
    ap.add_argument("--nodes", choices=["auto", "1", "2", "both"], default="auto")
    ap.add_argument("--client-procs", type=int, default=1)
    ap.add_argument("--retries", type=int, default=1, help="windows more for a step that misses")
    ap.add_argument("--captions", action="store_true", help="keep live captions on")
    ap.add_argument(
        "--mix-nice",
        type=int,
        help="an experiment: give the server's mix clock thread this nice value (root for < 0)",
    )
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        asyncio.run(client_main())
        return
    if not 1 <= args.max_stages <= 64 or args.seconds <= 0 or args.client_procs < 1:
        ap.error("--max-stages in 1..64, --seconds > 0, --client-procs ≥ 1")
    if not 0 <= args.retries <= 3:
        ap.error("--retries in 0..3")
    settings = {} if args.captions else {"captions_default": "false"}
    settings.update(dict(kv.split("=", 1) for kv in args.set))
    print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.2f}")
    print(
        f"setup: {PER_STAGE} light publishers per stage (host + 2 co-hosts + 10 speakers, "
        f"pre-encoded tones, mix-minus counted; the host's decoded and checked), "
        f"{args.client_procs} client process(es); server settings: "
        f"{settings or 'defaults'}; mix clock thread nice: "
        f"{'unchanged' if args.mix_nice is None else args.mix_nice}; "
        f"per step {args.seconds:g} s measured after "
        f"{args.warmup:g} s warm-up; stop at p99 > 20 ms, skipped ticks, a stage not heard "
        "or short of mix-minus, "
        f"or server + clients > {MACHINE_LIMIT:.0f} % of a core",
        flush=True,
    )
    ramps: list[Ramp] = []
    if args.nodes in ("auto", "1", "both"):
        with pnyx_node(env_settings=settings) as node:
            ramps.append(ramp("one pnyx serve process", [node], args))
    one = ramps[0] if ramps else None
    thread_bound = one is not None and any(s.thread_bound() for s in one.steps[-1:])
    if args.nodes in ("2", "both") or (args.nodes == "auto" and thread_bound):
        with two_nodes(settings) as (nodes, redis_url):
            ramps.append(
                ramp("two pnyx serve processes (Redis + PostgreSQL)", nodes, args, redis_url)
            )
    elif args.nodes == "auto" and one is not None:
        print(
            "\n(two processes not run: the single process's last step had no thread at "
            f"≥ {THREAD_LIMIT:.0f} % of a core, so its own threads were not its limit)"
        )
    print()
    for r in ramps:
        print(summary(r))
        print(threads_line(r))


if __name__ == "__main__":
    main()
