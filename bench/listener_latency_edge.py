"""Mouth-to-ear latency through the edge, tier by tier, side by side with Icecast (issue 17).

One run, one machine. A deployment as an operator runs it (bench/scale_support.py's
``deployment``: Redis, one ``pnyx serve`` with production clocks, the edge ``pnyx
edge-config --frontrow`` generates — nginx with nchan and the Varnish behind it — in
front, the origin posting the space's program to the edge's front row); its host
publishes a 1 kHz tone over WebRTC and switches it on at known capture instants.

The load, per audience size N (``--listeners``, default 100 and 2,000): N simulated
low-latency listeners through the edge for the whole of that size's phase, under every
tier's rows. ``--audience loadtest`` (the default): ``pnyx loadtest listeners`` (Python:
joins, heartbeats, the state long poll and a player each; it counts stalls, but cannot
generate 2,000 low-latency listeners on a 2-core machine); ``--audience wrk``: ``wrk``
with bench/wrk/llhls.lua (bench/wrk_audience.py: one connection per listener, the
blocking reload and the part per part, nothing else). Over each size's measured window
the edge's CPU (nginx + Varnish), the origin's and its reads/s are read too. Each tier
then measures its own listener(s) through the same edge, one tier after the other:

* ``LL-HLS``: a player-like listener (tests/support/hls.py) follows ``live.m3u8`` with
  blocking reloads through the edge and decodes every part; per onset, **on arrival** =
  arrival of the part holding the onset + the onset's offset in it - the capture instant,
  and **at PART-HOLD-BACK** = that + PART-HOLD-BACK - the part's duration: when a player
  that keeps its playhead the advertised hold-back behind the newest part plays it (the
  goal: p95 ≤ 0.8 s). Load: the N simulated LL-HLS listeners (+ this one).
* ``front row``: N subscribers of the space's WebSocket on the edge
  (``/frontrow/{space}``): bench/frontrow.py's four probes, which decode the Opus, and
  N - 4 load subscribers in client processes (bench/frontrow.py's ``Load``: they read
  every 200 ms and count stalls). **On arrival** = arrival of the message carrying the
  onset + the onset's offset in it - the capture instant; **player** = that + the web
  player's starting buffer (60 ms). Goal: player p95 ≤ 0.35 s and ≤ Icecast's at the
  front row's bitrate (``frontrow_bitrate``, 64 kbit/s). Load: the N simulated LL-HLS
  listeners AND the N front-row subscribers, at once.
* more tiers plug in through :data:`TIERS` (a function of the :class:`Deployment` and the
  onsets wanted that returns mouth-to-ear samples by row).

Icecast (Debian's icecast2, started here on a free port with burst-on-connect off and a
burst size of 0) is fed the same kind of tone by ffmpeg (MP3, CBR, at ``--icecast-kbps``:
32 and the front row's 64 by default), written in real time in 20 ms blocks whose
capture instant is known; ONE listener and no other load (after the Pnyx phases, the
deployment stopped) decodes the stream as it arrives (PyAV), and the latency is the
arrival of the decoded frame holding the onset + the onset's offset in it - the capture
instant (a player with no buffer at all: Icecast's floor).

The table puts the rows side by side, a column per audience size, with each goal and
whether the p95 meets it (✓/✗); under it, what load each size had and how it fared.

    .venv/bin/python bench/listener_latency_edge.py
    .venv/bin/python bench/listener_latency_edge.py --listeners 100 --onsets 12 \
        --tiers "front row" --set hls_part_frames=15
    .venv/bin/python bench/listener_latency_edge.py --audience wrk --listeners 100 2000 \
        --tiers LL-HLS
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

import frontrow as push
import scale_support
import wrk_audience
from latency_support import hls, machine, tones, webrtc
from pnyx.loadtest.stats import percentile
from scale_support import PNYX, Edge, Window, between, read, wait_for_media

TONE_HZ = 1000.0
GOAL_P95_S = 0.8  # LL-HLS at PART-HOLD-BACK
FRONT_ROW_GOAL_P95_S = push.GOAL_P95_S  # the front row's player; and ≤ Icecast's at its bitrate
RATE = 48_000


@dataclass
class Deployment:
    """What a tier measures through: the edge in front of the origin, the space, and the
    host's tone (switch it on with ``await track.switch(True)``: the capture instant)."""

    origin_url: str
    edge: Edge
    space: str
    track: webrtc.ToneTrack
    listeners: int  # the simulated audience at the moment
    origin_pid: int = 0
    edge_port: int = 0  # the edge's plain-HTTP port (the front row's WebSockets)
    notes: dict[str, Any] = field(default_factory=dict)


# A tier: the deployment and how many onsets to measure → mouth-to-ear samples (seconds),
# by row name (a tier may report more than one row, e.g. on arrival and at a hold-back).
Tier = Callable[[Deployment, int], Awaitable[dict[str, list[float]]]]


async def _onsets(
    d: Deployment, onsets: int, heard: Callable[[float], Awaitable[float | None]], part_s: float
) -> list[float]:
    out = []
    for _ in range(onsets):
        await asyncio.sleep(random.uniform(0, part_s))  # land anywhere in a part
        t_on = await d.track.switch(True)
        latency = await heard(t_on)
        await d.track.switch(False)
        if latency is not None:
            out.append(latency)
        await asyncio.sleep(1.0)  # off long enough to be clearly off
    return out


async def ll_hls(d: Deployment, onsets: int) -> dict[str, list[float]]:
    listener = hls.HlsListener(d.edge.url, d.space)
    follow: asyncio.Task[None] | None = None
    try:
        await listener.start()
        follow = asyncio.ensure_future(listener.follow())
        await asyncio.sleep(3.0)
        pl = listener.playlists[-1]
        phb, part_s = pl.part_hold_back, pl.part_target
        assert phb is not None and part_s is not None, "a playlist without LL-HLS tags"

        async def heard(t_on: float) -> float | None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                await asyncio.sleep(0.03)
                if listener.failed is not None:
                    raise listener.failed
                decoded = listener.decode(since=t_on - 1.0)
                at = 2048
                while (found := tones.onset(decoded.samples, TONE_HZ, start=at)) is not None:
                    latency = listener.arrival_of(decoded.start + found) - t_on
                    if latency > 0:
                        return latency
                    at = found + RATE // 2  # an earlier onset that came late: not this one
            return None

        arrival = await _onsets(d, onsets, heard, part_s)
        gap, problems = listener.continuity()
        d.notes["ll_hls"] = {
            "part_s": part_s,
            "part_hold_back_s": phb,
            "parts": len(listener.parts),
            "longest_gap_s": gap,
            "problems": problems[:3],
            "reload_p50_s": percentile([b - a for a, b in listener.reloads], 0.5)
            if listener.reloads
            else None,
        }
        return {
            "LL-HLS, on arrival": arrival,
            f"LL-HLS at PART-HOLD-BACK ({phb:g} s)": [x + phb - part_s for x in arrival],
        }
    finally:
        listener.stop()
        if follow is not None:
            await asyncio.gather(follow, return_exceptions=True)
        await listener.aclose()


async def front_row(d: Deployment, onsets: int) -> dict[str, list[float]]:
    """The front row at ``d.listeners`` subscribers of the space's WebSocket on the edge:
    bench/frontrow.py's four decoding probes and ``d.listeners - 4`` load subscribers
    (client processes), on top of the simulated LL-HLS audience."""
    nginx_pids = push.nginx_workers(d.edge.proc.pid)
    row = await push.measure(
        d.edge_port, d.space, d.track.switch, nginx_pids, d.origin_pid,
        subscribers=d.listeners, onsets=onsets,
    )  # fmt: skip
    load = row.load
    d.notes["front_row"] = {
        "subscribers": d.listeners,
        "load_connected": load.connected if load else 0,
        "load_failed": load.failed if load else 0,
        "load_closed": load.closed if load else 0,
        "stalls": load.stalls if load else 0,
        "stalled_subscribers": load.stalled if load else 0,
        "longest_gap_s": load.longest_gap_s if load else None,
        "messages_per_s": load.messages_per_s if load else None,
        "nginx_worker_cores": row.nginx_cpu_s / row.seconds,
        "origin_cores": row.node_cpu_s / row.seconds,
    }
    buffer_ms = push.PLAYER_BUFFER_S * 1000
    return {
        FRONT_ROW_ARRIVAL: row.arrival,
        f"{FRONT_ROW_PLAYER} (+{buffer_ms:.0f} ms buffer)": row.player,
    }


FRONT_ROW_ARRIVAL = "front row, on arrival"
FRONT_ROW_PLAYER = "front row, player"

# Tiers measured through the edge at each audience size: an async function of
# (Deployment, onsets) returning mouth-to-ear samples by row.
TIERS: dict[str, Tier] = {"LL-HLS": ll_hls, "front row": front_row}


# -- Icecast ------------------------------------------------------------------------------

ICECAST_XML = """<icecast>
  <limits><clients>100</clients><sources>2</sources><queue-size>524288</queue-size>
    <burst-on-connect>0</burst-on-connect><burst-size>0</burst-size>
    <source-timeout>10</source-timeout><header-timeout>15</header-timeout></limits>
  <authentication><source-password>{password}</source-password>
    <admin-user>admin</admin-user><admin-password>{password}</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>0</fileserve>
  <paths><logdir>{root}</logdir><webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot><pidfile>{root}/icecast.pid</pidfile></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog>
    <loglevel>2</loglevel></logging>
  <security><chroot>0</chroot>
    <changeowner><user>nobody</user><group>nogroup</group></changeowner></security>
</icecast>
"""


@contextmanager
def icecast() -> Iterator[tuple[int, str]]:
    from tests.support.poll import wait_until
    from tests.support.procs import free_port, port_open, require_binary, stop

    binary = require_binary("icecast2", "/usr/bin")
    with tempfile.TemporaryDirectory(prefix="pnyx-icecast-") as tmp:
        root = Path(tmp)
        root.chmod(0o777)
        port, password = free_port(), "bench-source-pass"
        conf = root / "icecast.xml"
        conf.write_text(ICECAST_XML.format(port=port, password=password, root=root))
        conf.chmod(0o644)
        log = (root / "stdout.log").open("wb")
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        try:

            def up() -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"icecast2 exited: {(root / 'stdout.log').read_text()}")
                return port_open(port)

            wait_until(up, 15, "icecast2 to listen", ignoring=(OSError,))
            yield port, password
        finally:
            stop(proc)
            log.close()


class ToneSource:
    """ffmpeg encoding a 1 kHz tone (off until switched on) to MP3 and sending it to
    Icecast; the PCM is written in real time, 20 ms blocks, from a thread of its own."""

    BLOCK = RATE // 50

    def __init__(self, port: int, password: str, kbps: int) -> None:
        url = f"icecast://source:{password}@127.0.0.1:{port}/live.mp3"
        self.proc = subprocess.Popen(
            [
                "ffmpeg", "-hide_banner", "-loglevel", "error", "-fflags", "+nobuffer",
                "-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", "pipe:0",
                "-c:a", "libmp3lame", "-b:a", f"{kbps}k", "-flush_packets", "1",
                "-content_type", "audio/mpeg", "-f", "mp3", url,
            ],
            stdin=subprocess.PIPE,
        )  # fmt: skip
        self._on = False
        self._pending: list[tuple[bool, threading.Event, list[float]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.proc.stdin is not None
        t0 = time.time()
        n = 0
        while not self._stop.is_set():
            time.sleep(max(0.0, t0 + (n + 1) * 0.02 - time.time()))
            captured = t0 + n * 0.02
            with self._lock:
                for on, done, out in self._pending:
                    self._on = on
                    out.append(captured)
                    done.set()
                self._pending.clear()
                amp = 0.2 if self._on else 0.0
            pcm = tones.sine(TONE_HZ, self.BLOCK, amp, start=n * self.BLOCK)
            try:
                self.proc.stdin.write(np.round(pcm * 32767).astype("<i2").tobytes())
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                return
            n += 1

    async def switch(self, on: bool) -> float:
        done, out = threading.Event(), []
        with self._lock:
            self._pending.append((on, done, out))
        await asyncio.get_running_loop().run_in_executor(None, done.wait, 5)
        return out[0]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class StreamListener:
    """Reads an Icecast mount and decodes it as it arrives: samples and, per decoded frame,
    the arrival of the bytes that completed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[np.ndarray] = []
        self.frames: list[tuple[int, int, float]] = []  # (first sample, count, arrival)
        self.total = 0
        self.failed: BaseException | None = None

    async def run(self, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(b"GET /live.mp3 HTTP/1.0\r\nHost: bench\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        codec = av.CodecContext.create("mp3", "r")
        try:
            while not stop.is_set():
                chunk = await reader.read(4096)
                if not chunk:
                    raise RuntimeError("Icecast closed the stream")
                now = time.time()
                for packet in codec.parse(chunk):
                    try:
                        frames = codec.decode(packet)
                    except av.error.InvalidDataError:
                        continue  # a partial frame where the stream was joined
                    for frame in frames:
                        pcm = frame.to_ndarray().astype(np.float32)
                        mono = pcm.reshape(len(frame.layout.channels), -1)[0]
                        if pcm.dtype.kind == "i":
                            mono = mono / 32768
                        self.frames.append((self.total, len(mono), now))
                        self.samples.append(mono)
                        self.total += len(mono)
        finally:
            writer.close()

    def arrival_of(self, index: int) -> float:
        for start, count, arrived in self.frames:
            if start <= index < start + count:
                return arrived + (index - start) / RATE
        raise KeyError(index)

    def since(self, t: float) -> tuple[int, np.ndarray]:
        first = next((i for i, (_, _, a) in enumerate(self.frames) if a >= t), len(self.frames))
        if first == len(self.frames):
            return self.total, np.zeros(0, dtype=np.float32)
        return self.frames[first][0], np.concatenate(self.samples[first:])


async def icecast_tier(kbps: int, onsets: int) -> list[float]:
    with icecast() as (port, password):
        source = ToneSource(port, password, kbps)
        try:
            await _wait_mount(port)
            listener = StreamListener(port)
            stop = asyncio.Event()
            task = asyncio.ensure_future(listener.run(stop))
            await asyncio.sleep(3.0)
            out = []
            for _ in range(onsets):
                await asyncio.sleep(random.uniform(0, 0.02))
                t_on = await source.switch(True)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.03)
                    if task.done():
                        task.result()
                    start, samples = listener.since(t_on - 1.0)
                    at, latency = 2048, None
                    while (found := tones.onset(samples, TONE_HZ, start=at)) is not None:
                        if (latency := listener.arrival_of(start + found) - t_on) > 0:
                            break
                        at, latency = found + RATE // 2, None
                    if latency is not None:
                        out.append(latency)
                        break
                await source.switch(False)
                await asyncio.sleep(1.0)
            stop.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return out
        finally:
            source.close()


async def _wait_mount(port: int) -> None:
    deadline = time.monotonic() + 15
    async with httpx.AsyncClient(timeout=2) as c:
        while time.monotonic() < deadline:
            try:
                r = await c.get(f"http://127.0.0.1:{port}/status-json.xsl")
                if "live.mp3" in r.text:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the Icecast mount never came up")


# -- the run ------------------------------------------------------------------------------


class Audience:
    """The simulated audience of one phase: started at once, :meth:`finish` waits for its
    end and returns what it reports (the ``audience`` row's fields)."""

    ramp_s: float = 0.0

    def running(self) -> bool:
        raise NotImplementedError

    def finish(self) -> dict[str, Any]:
        raise NotImplementedError


class LoadtestAudience(Audience):
    """``pnyx loadtest listeners``, low latency, ramped in at 200 a second (at least 5 s)."""

    def __init__(self, edge_url: str, space: str, n: int, seconds: float, procs: int) -> None:
        self.ramp_s, self.seconds = max(5.0, n / 200), seconds
        self.out = Path(tempfile.mkdtemp(prefix="pnyx-lle-")) / "report.json"
        self.proc = subprocess.Popen(
            [
                PNYX, "loadtest", "listeners", "--quiet", "--url", edge_url, "--space", space,
                "--listeners", str(n), "--ramp-s", str(self.ramp_s), "--latency", "low",
                "--duration-s", str(seconds), "--procs", str(procs), "--json", str(self.out),
            ]
        )  # fmt: skip

    def running(self) -> bool:
        return self.proc.poll() is None

    def finish(self) -> dict[str, Any]:
        code = self.proc.wait(self.seconds + 120)
        load = json.loads(self.out.read_text()) if code == 0 else {}
        return {
            "audience": "loadtest",
            "loadtest_exit": code,
            "stalls": load.get("stalls", {}).get("total"),
            "listeners_stalled": load.get("stalls", {}).get("listeners_stalled"),
            "behind_live_p50_s": load.get("behind_live_s", {}).get("p50"),
            "http_errors": load.get("http_errors"),
            "requests_per_s": requests_per_s(load),
            "client_cores": load.get("cpu", {}).get("cores_used"),
        }


class WrkAudience(Audience):
    """``wrk`` with bench/wrk/llhls.lua: all connections at once (no ramp); stopped as
    soon as the phase's rows are measured."""

    def __init__(self, edge_url: str, space: str, n: int, seconds: float, threads: int) -> None:
        url = f"{edge_url}/media/{space}/live.m3u8"
        self.run = wrk_audience.start(url, n, int(seconds + 1), threads=threads)

    def running(self) -> bool:
        return self.run.running()

    def finish(self) -> dict[str, Any]:
        try:
            r = self.run.stop()
        except RuntimeError as exc:
            return {"audience": "wrk", "failed": str(exc)}
        return {
            "audience": "wrk",
            "requests_per_s": r.requests_per_s,
            "wanted_per_s": r.wanted_per_s,
            "per_listener_per_s": r.per_listener_per_s,
            "http_errors": r.errors,
            "http_4xx": r.http_4xx,
            "http_5xx": r.http_5xx,
            "socket_errors": r.socket_errors,
            "latency_ms": r.latency_ms,
            "client_cores": r.cpu_cores,
            "threads": r.threads,
            # every request takes gzip, as a browser's: the edge sends playlists as zipped
            "playlists_gzipped": r.gzipped / r.playlists if r.playlists else 0.0,
            # parts each wrk thread followed vs the parts published meanwhile: below 1, the
            # audience fell behind live and skipped to the newest part
            "parts_followed": r.parts_followed,
            "parts_published": r.seconds / r.part_s,
        }


AUDIENCES = ("loadtest", "wrk")


def audience(kind: str, edge_url: str, space: str, n: int, seconds: float, procs: int) -> Audience:
    if kind == "wrk":
        return WrkAudience(edge_url, space, n, seconds, procs)
    return LoadtestAudience(edge_url, space, n, seconds, procs)


def window_notes(w: Window, listeners: int) -> dict[str, Any]:
    """The edge, the origin and Redis over a phase's measured window."""
    return {
        "seconds": w.seconds,
        "edge_cores": w.cpu["edge"],
        "origin_cores": w.cpu["origin"],
        "redis_cores": w.cpu["redis"],
        "origin_reads_per_s": w.origin_reads_per_s,
        "origin_heartbeats_per_s": w.route("POST", "/v1/spaces/{space_id}/heartbeat"),
    }


async def measure_tiers(d: Deployment, tiers: Sequence[str], onsets: int) -> dict[str, list[float]]:
    """Each tier in turn; one that fails is reported (in ``d.notes``) and the rest still run."""
    rows: dict[str, list[float]] = {}
    for name in tiers:
        try:
            rows.update(await TIERS[name](d, onsets))
        except Exception as exc:  # a bench reports a failed tier and goes on
            d.notes.setdefault("failed", {})[name] = repr(exc)
            print(f"{name} at {d.listeners} listeners FAILED: {exc!r}", flush=True)
    return rows


def summary(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"n": 0}
    return {
        "n": len(xs),
        "p50_s": percentile(xs, 0.5),
        "p95_s": percentile(xs, 0.95),
        "max_s": max(xs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listeners", type=int, nargs="+", default=[100, 2000])
    ap.add_argument("--onsets", type=int, default=20)
    ap.add_argument("--tiers", nargs="+", default=list(TIERS), help="of: " + ", ".join(TIERS))
    ap.add_argument("--icecast-kbps", type=int, nargs="*", default=[32, 64])
    ap.add_argument(
        "--audience", choices=AUDIENCES, default="loadtest",
        help="the simulated audience: pnyx loadtest listeners, or wrk (bench/wrk/llhls.lua)",
    )  # fmt: skip
    ap.add_argument("--procs", type=int, default=2, help="load generator processes (wrk: threads)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    if max(args.listeners, default=0) > 10_000:
        ap.error("at most 10,000 simulated listeners here")
    if unknown := set(args.tiers) - set(TIERS):
        ap.error(f"no such tier: {', '.join(sorted(unknown))} (of: {', '.join(TIERS)})")
    push.raise_nofile()  # the front row's probes and this process's sockets
    settings = {"low_latency_max_listeners": "1000000", **dict(kv.split("=", 1) for kv in args.set)}
    with_front_row = "front row" in args.tiers
    print("# mouth-to-ear through the edge, side by side with Icecast", flush=True)
    print(f"machine: {machine()}; {os.cpu_count()} cores; settings {settings}", flush=True)
    print(f"audience: {args.audience}", flush=True)
    results: list[dict[str, Any]] = []

    with scale_support.deployment(settings, frontrow=with_front_row, tone_hz=None) as dep:
        edge, space, origin = dep.edge, dep.space, dep.origin

        async def run() -> None:
            track = webrtc.ToneTrack(TONE_HZ, on=False)
            speaker = await webrtc.publish(origin.url, space, dep.host.token, track)
            try:
                await speaker.connected()
                await asyncio.get_running_loop().run_in_executor(
                    None, wait_for_media, edge.url, space
                )
                loop = asyncio.get_running_loop()
                for n in args.listeners:
                    ramp = max(5.0, n / 200) if args.audience == "loadtest" else 0.0
                    seconds = ramp + 15 + sum(budget_s(t, n, args.onsets) for t in args.tiers) + 20
                    aud = audience(args.audience, edge.url, space, n, seconds, args.procs)
                    try:
                        await asyncio.sleep(ramp + 10)
                        d = Deployment(origin.url, edge, space, track, n, origin.pid, dep.edge_port)
                        before = await loop.run_in_executor(None, read, dep)
                        load_avg = [os.getloadavg()[0]]
                        rows = await measure_tiers(d, args.tiers, args.onsets)
                        after = await loop.run_in_executor(None, read, dep)
                        load_avg.append(os.getloadavg()[0])
                        d.notes["window"] = window_notes(between(before, after), n)
                        d.notes["load_average_1min"] = load_avg
                        # the load was there until the last row was measured (or not)
                        d.notes["audience_ran_throughout"] = aud.running()
                    finally:
                        load = await loop.run_in_executor(None, aud.finish)
                    for name, xs in rows.items():
                        results.append({"row": name, "listeners": n, **summary(xs)})
                        show(results[-1])
                    results.append({"row": "audience", "listeners": n, "notes": d.notes, **load})
                    print(f"  audience of {n}: {json.dumps(results[-1])}", flush=True)
            finally:
                await speaker.close()

        asyncio.run(run())

    for kbps in args.icecast_kbps:
        xs = asyncio.run(icecast_tier(kbps, args.onsets))
        results.append({"row": icecast_row(kbps), "listeners": 1, "kbps": kbps, **summary(xs)})
        show(results[-1])

    print()
    print("\n".join(table(results, args.listeners, int(settings.get("frontrow_bitrate", 64_000)))))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def budget_s(tier: str, listeners: int, onsets: int) -> float:
    """How long a tier's measurement may take at an audience size (the simulated audience
    runs that long): LL-HLS ~2.5 s an onset, more when late; the front row 1.55 s an
    onset plus connecting its subscribers."""
    if tier == "front row":
        return 10 + listeners / 250 + onsets * 1.6
    return 5 + onsets * 3.5


def requests_per_s(load: dict[str, Any]) -> float | None:
    series = load.get("series") or []
    busy = [r["req_per_s"] for r in series if r.get("req_per_s")]
    return sum(busy) / len(busy) if busy else None


def icecast_row(kbps: int) -> str:
    return f"Icecast {kbps} kbit/s MP3, on arrival (1 listener, no load)"


def goal(row: str, icecast: dict[int, float], kbps: int) -> tuple[str, float | None]:
    """The goal a row is judged by, as text, and its p95 bound in seconds (None: none)."""
    if row.startswith("LL-HLS at PART-HOLD-BACK"):
        return f"p95 ≤ {GOAL_P95_S * 1000:.0f}", GOAL_P95_S
    if row.startswith(FRONT_ROW_PLAYER):
        if kbps in icecast:
            bound = min(FRONT_ROW_GOAL_P95_S, icecast[kbps])
            return (
                f"p95 ≤ {FRONT_ROW_GOAL_P95_S * 1000:.0f} and ≤ Icecast {kbps} kbit/s "
                f"({icecast[kbps] * 1000:.0f})",
                bound,
            )
        return f"p95 ≤ {FRONT_ROW_GOAL_P95_S * 1000:.0f}", FRONT_ROW_GOAL_P95_S
    return "", None


def table(results: list[dict[str, Any]], sizes: list[int], frontrow_bps: int) -> list[str]:
    """The tiers side by side: a line per row, a column per audience size (p50 / p95 / max
    ms and, where the row has a goal, whether its p95 meets it; n: the samples, one per
    onset heard, four per onset for the front row's four probes). Icecast: one listener
    with no load, in the first column."""
    kbps = frontrow_bps // 1000
    icecast = {r["kbps"]: r["p95_s"] for r in results if "kbps" in r and r.get("n")}
    by = {(r["row"], r["listeners"]): r for r in results if r["row"] != "audience"}
    rows = list(dict.fromkeys(r["row"] for r in results if r["row"] != "audience"))
    head = " | ".join(f"{n:,} listeners: p50 / p95 / max ms (samples)" for n in sizes)
    out = [f"| tier | goal (ms) | {head} |", "| --- | --- |" + " --- |" * len(sizes)]
    for row in rows:
        text, bound = goal(row, icecast, kbps)
        cells = []
        for i, n in enumerate(sizes):
            r = by.get((row, n)) or (by.get((row, 1)) if i == 0 else None)
            if r is None or not r.get("n"):
                cells.append("—" if r is None else "nothing heard")
                continue
            verdict = ""
            if bound is not None:
                verdict = " ✓" if r["p95_s"] <= bound else " ✗"
            cells.append(
                f"{r['p50_s'] * 1000:.0f} / **{r['p95_s'] * 1000:.0f}**{verdict} / "
                f"{r['max_s'] * 1000:.0f} (n {r['n']})"
            )
        out.append(f"| {row} | {text or '—'} | {' | '.join(cells)} |")
    out.append("")
    for r in results:
        if r["row"] != "audience":
            continue
        fr = r["notes"].get("front_row")
        line = f"load at {r['listeners']:,}: " + audience_line(r)
        if fr:
            line += (
                f"; during the front-row rows also {fr['subscribers']:,} front-row "
                f"subscribers (4 probes + {fr['load_connected']:,} load, "
                f"{fr['load_failed']} failed to connect; stalls {fr['stalls']} in "
                f"{fr['stalled_subscribers']} subscribers, longest gap "
                f"{fr['longest_gap_s'] or 0:.2f} s; nginx workers "
                f"{fr['nginx_worker_cores']:.2f} cores, origin {fr['origin_cores']:.2f} cores)"
            )
        if failed := r["notes"].get("failed"):
            line += "; FAILED: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
        out.append(line)
    return out


def audience_line(r: dict[str, Any]) -> str:
    """What the simulated audience of a phase did, and the edge and origin under it."""
    n, notes = r["listeners"], r["notes"]
    ended = "" if notes.get("audience_ran_throughout") else "; it ENDED early"
    if r.get("audience") == "wrk":
        if "failed" in r:
            text = f"{n:,} wrk listeners: wrk FAILED ({r['failed'][:200]})"
        else:
            lat, errs = r["latency_ms"], r["socket_errors"]
            text = (
                f"{n:,} wrk listeners throughout ({r['threads']} threads; "
                f"{r['requests_per_s']:,.0f} of {r['wanted_per_s']:,.0f} requests/s wanted, "
                f"{r['per_listener_per_s']:.2f} per listener; parts followed "
                f"{r['parts_followed']:.0f} of {r['parts_published']:.0f} published; 4xx "
                f"{r['http_4xx']}, 5xx {r['http_5xx']}, timeouts {errs['timeout']}, socket "
                f"errors {errs['connect'] + errs['read'] + errs['write']}; answer p50 / p99 "
                f"{lat['p50']:.0f} / {lat['p99']:.0f} ms; wrk {r['client_cores']:.2f} cores{ended})"
            )
    else:
        text = (
            f"{n:,} simulated LL-HLS listeners "
            f"throughout (stalls {r['stalls']} in {r['listeners_stalled']} listeners, behind "
            f"live p50 {r['behind_live_p50_s']} s, "
            f"{(r['requests_per_s'] or 0):,.0f} requests/s, errors {r['http_errors']}, "
            f"loadtest exit {r['loadtest_exit']}{ended})"
        )
    if w := notes.get("window"):
        text += (
            f"; over the measured {w['seconds']:.0f} s: edge {w['edge_cores']:.2f} cores "
            f"(nginx + Varnish"
        )
        if r.get("requests_per_s") and w["edge_cores"]:
            text += f", {r['requests_per_s'] / w['edge_cores']:,.0f} requests per core-second"
        text += (
            f"), origin {w['origin_cores']:.2f} cores, origin reads "
            f"{w['origin_reads_per_s']:.2f}/s, heartbeats {w['origin_heartbeats_per_s']:.1f}/s"
        )
    if la := notes.get("load_average_1min"):
        text += f"; load average {la[0]:.1f} → {la[-1]:.1f}"
    return text


def show(r: dict[str, Any]) -> None:
    if not r.get("n"):
        print(f"{r['row']} at {r['listeners']}: nothing heard", flush=True)
        return
    print(
        f"{r['row']} at {r['listeners']} listeners: p50 {r['p50_s'] * 1000:.0f} ms, "
        f"p95 {r['p95_s'] * 1000:.0f} ms, max {r['max_s'] * 1000:.0f} ms ({r['n']} onsets)",
        flush=True,
    )


if __name__ == "__main__":
    main()
