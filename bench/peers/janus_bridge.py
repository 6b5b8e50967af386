"""The stage node against Janus's AudioBridge, side by side in one run, on this machine,
with the same aiortc clients (as root; Janus from apt: ``apt-get install -y janus``).

    .venv/bin/python bench/peers/janus_bridge.py [--quick] [--rounds 3] [--onsets 20]
                                                 [--loss 2] [--jitter-ms 20]
                                                 [--stock-receiver]

Both servers do the same job for the speakers: receive Opus from every participant over
WebRTC, decode, mix, and send each an Opus mix-minus. Pnyx also encodes the program once
to AAC and packages it as LL-HLS (its listeners' path), which Janus does not; the idle
row shows what a live space costs Pnyx with nobody on it.

Both run in one network namespace the bench builds (``peers/netns.py``: a veth pair in a
private /30; Janus gathers no ICE candidates on the loopback), Janus with a config folder
the bench writes (``peers/janus.py``), Pnyx as ``pnyx serve`` with its production
defaults (only the account rate limits lifted, ``host_grace_s`` raised, so the host's
absence between rounds does not end the space, and live captions off, as Janus has
none). The clients stay in the main namespace and reach both over the veth.

1. **Idle**: both servers up, a room (Janus) and a live space (Pnyx) open, nobody in it:
   each one's CPU over the same window.
2. **CPU**: 13 publishers (each a tone, aiortc, in a separate client process, as
   ``bench/stage_cpu.py`` does), in rounds alternating between the servers (ABBA order);
   per round the server process's CPU time (utime + stime of all its threads, from
   /proc) over a fixed window after a warm-up, as a % of one core. Each round also
   checks that the first speaker's mix-minus holds the other 12 tones and not its own.
3. **Latency**: speaker A switches a 1 kHz tone on; when speaker B hears it in its
   mix-minus (``bench/latency_stage.py``'s measurement, reused). Janus with
   ``default_prebuffering`` 1 and with its default (6); Pnyx; and a direct aiortc →
   aiortc call with no server over the same veth, the floor. B, the measuring receiver,
   skips gaps in every row (``peers/speaker_latency.py`` says why; ``--stock-receiver``:
   aiortc's own jitter buffer).
4. **Loss**: the latency again, for Janus (prebuffer 1) and Pnyx, with 2 % of the UDP
   packets dropped at random each way on the veth (nftables ``numgen random`` inside the
   namespace; this kernel has no ``sch_netem``).
5. **Loss + jitter**: the loss run again with each surviving UDP packet also delayed by
   a time uniform in 0 to 2 x ``--jitter-ms`` (mean N ms, netem's ``delay Nms Nms``),
   independently each way, so the link reorders (``Netns.jitter``: NFQUEUE to a program
   that accepts each packet late, ``tests/support/jitter.py``). A server's clients cross
   the veth twice (A to the server, the server to B), the direct call once.

Prints a table: per server the median CPU, latency p50/p95, with loss p50/p95, with loss
and jitter p50/p95; the ratio Pnyx/Janus of CPU and Pnyx p95 - Janus p95. Every wait is
bounded; a default run takes about 6 minutes, ``--quick`` about 2. Namespaces and
processes are removed on exit, and leftovers of a killed run at the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == BENCH / "peers":
    sys.path.pop(0)  # run as a script: its folder's modules go by peers.*
if str(BENCH) not in sys.path:  # latency_support & co. live in bench/
    sys.path.insert(0, str(BENCH))
if str(BENCH.parent) not in sys.path:  # the harness: tests/support
    sys.path.insert(1, str(BENCH.parent))

import httpx  # noqa: E402
from tests.support.jitter import JitterUnavailable, Stats  # noqa: E402
from tests.support.pnyx_server import ACCOUNTS_UNLIMITED, SECRET, PnyxProcess  # noqa: E402
from tests.support.procs import stop  # noqa: E402

from latency_support import (  # noqa: E402
    Account,
    cpu_seconds,
    machine,
    poll,
    stage,
    tones,
    webrtc,
)
from peers import janus  # noqa: E402
from peers.netns import Netns, NetnsUnavailable, netns  # noqa: E402
from peers.speaker_latency import Join, a_to_b, direct_over_veth  # noqa: E402
from pnyx.loadtest.stats import percentile  # noqa: E402
from stage_cpu import FREQS  # noqa: E402

ROOT = BENCH.parent
PNYX_PORT = 8000
ROOM_PB1 = 1  # default_prebuffering 1: the CPU rounds and the latency runs
ROOM_DEFAULT = 2  # Janus's default prebuffering (6)
PUBLISHERS = 13
AMPLITUDE = 0.05  # 13 tones sum to at most 0.65: no clipping in either mixer
# What the bench changes from Pnyx's defaults: nothing on the media path.
# Janus captions nothing: neither does Pnyx here (captions_default is on in production).
# Janus is measured at prebuffer 1 (a participant's packets wait until one is queued,
# then the mixer takes one a tick) and at its default; Pnyx at its defaults (its playout
# delay follows the jitter each speaker's packets show, no floor: jitter_min_frames 0).
# --set changes any of them.
PNYX_SETTINGS = {
    **ACCOUNTS_UNLIMITED,
    "host_grace_s": "3600",
    "captions_default": "false",
}


@dataclass(frozen=True)
class Plan:
    rounds: int
    warmup_s: float
    window_s: float
    idle_s: float
    onsets: int
    baseline_onsets: int
    loss_pct: int
    jitter_ms: int
    stock_receiver: bool

    @staticmethod
    def of(args: argparse.Namespace) -> Plan:
        quick = args.quick
        return Plan(
            rounds=args.rounds or (1 if quick else 3),
            warmup_s=3.0 if quick else 5.0,
            window_s=args.window or (5.0 if quick else 15.0),
            idle_s=3.0 if quick else 10.0,
            onsets=args.onsets or (5 if quick else 20),
            baseline_onsets=5 if quick else 15,
            loss_pct=args.loss,
            jitter_ms=args.jitter_ms,
            stock_receiver=args.stock_receiver,
        )


# -- the client process (13 publishers) -----------------------------------------------------


async def publishers(spec: dict[str, Any]) -> dict[str, Any]:
    """Publish one tone per seat to Janus or Pnyx; report once stdin says stop."""
    speakers: list[webrtc.Speaker] = []
    try:
        for i, freq in enumerate(FREQS[: spec["count"]]):
            track = webrtc.ToneTrack(freq, AMPLITUDE)
            if spec["kind"] == "janus":
                speakers.append(await janus.join(spec["url"], spec["room"], track))
            else:
                token = spec["tokens"][i]
                speakers.append(await webrtc.publish(spec["url"], spec["space"], token, track))
        for s in speakers:
            await s.connected(within=30)
        await speakers[0].hearing(2.0, within=30)
        loop = asyncio.get_running_loop()
        cpu0, t0, since = cpu_seconds(os.getpid()), time.monotonic(), time.time()
        print("READY", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        cpu = (cpu_seconds(os.getpid()) - cpu0) / (time.monotonic() - t0) * 100
        # The first speaker's last 2 s: the others' tones, at their level, and not its own.
        # (The tones are 97 Hz apart, so a codec's intermodulation products land on the
        # others' frequencies: its own may show, far below the others' level.)
        first = speakers[0].received.samples(since=time.time() - 2.0)
        levels = tones.tone_levels(first, FREQS[: spec["count"]])
        others = [levels[f] for f in FREQS[1 : spec["count"]]]
        own = levels[FREQS[0]]
        return {
            "client_cpu": cpu,
            "others_heard": sum(bool(lv.present()) for lv in others),
            "others_dbfs": float(statistics.median(lv.dbfs for lv in others)),
            "own_dbfs": float(own.dbfs) if own.present() else None,
            "longest_gap_s": max(s.received.gaps(since=since) for s in speakers),
        }
    finally:
        for s in speakers:
            await s.close()


def client_main(spec: str) -> None:
    result = asyncio.run(publishers(json.loads(spec)))
    print("RESULT " + json.dumps(result), flush=True)


# -- the servers ----------------------------------------------------------------------------


@contextmanager
def pnyx_in(ns: Netns, folder: Path) -> Iterator[PnyxProcess]:
    """``pnyx serve`` (this checkout's code) in ``ns`` on ADDR:8000; healthy when this
    yields."""
    url = f"http://{ns.addr}:{PNYX_PORT}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNYX_")}
    env.update({f"PNYX_{k.upper()}": v for k, v in PNYX_SETTINGS.items()})
    env["PNYX_SECRET"] = SECRET
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "pnyx.cli", "serve", "--host", ns.addr]
    argv += ["--port", str(PNYX_PORT), "--public-url", url, "--data-dir", str(folder)]
    argv += ["--log-level", "warning"]
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "pnyx.log"
    with log.open("wb") as out:
        proc = ns.spawn(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    node = PnyxProcess(proc, url, log)
    try:
        poll.wait_until(node.healthy, 40, "pnyx serve to be healthy", ignoring=(OSError,))
        yield node
    finally:
        stop(proc, within=15)
        if "Traceback" in node.output():
            print(f"pnyx serve logged a traceback:\n{node.output()[-3000:]}", file=sys.stderr)


@dataclass
class Servers:
    ns: Netns
    janus: janus.JanusProcess
    pnyx: PnyxProcess
    space: str
    seats: list[Account]  # host first

    def pid(self, kind: str) -> int:
        return self.janus.pid if kind == "janus" else self.pnyx.pid

    def spec(self, kind: str, count: int) -> dict[str, Any]:
        if kind == "janus":
            return {"kind": kind, "url": self.janus.url, "room": ROOM_PB1, "count": count}
        tokens = [a.token for a in self.seats]
        return {"kind": kind, "url": self.pnyx.url, "space": self.space, "tokens": tokens}


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Round:
    kind: str
    server_cpu: float
    client_cpu: float
    result: dict[str, Any]


def _line(proc: subprocess.Popen[str], prefix: str, within: float) -> str:
    """The next stdout line of ``proc`` starting with ``prefix``, within ``within`` s."""
    assert proc.stdout is not None
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the clients exited ({proc.wait()}) before {prefix}")
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise RuntimeError(f"the clients did not say {prefix} within {within:.0f} s")


def cpu_round(s: Servers, kind: str, plan: Plan) -> Round:
    spec = s.spec(kind, PUBLISHERS)
    spec["count"] = PUBLISHERS
    proc = subprocess.Popen(
        [sys.executable, __file__, "--clients", json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    try:
        _line(proc, "READY", 90)
        time.sleep(plan.warmup_s)
        pid = s.pid(kind)
        cpu0, client0, t0 = cpu_seconds(pid), cpu_seconds(proc.pid), time.monotonic()
        time.sleep(plan.window_s)
        cpu1, client1, t1 = cpu_seconds(pid), cpu_seconds(proc.pid), time.monotonic()
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        result = json.loads(_line(proc, "RESULT", 60))
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    server = (cpu1 - cpu0) / (t1 - t0) * 100
    client = (client1 - client0) / (t1 - t0) * 100
    r = Round(kind, server, client, result)
    own = "not" if result["own_dbfs"] is None else f"at {result['own_dbfs']:.0f} dBFS"
    print(
        f"  {kind:5} round: server {server:.1f}% of one core, clients {client:.0f}%, "
        f"first speaker hears {result['others_heard']}/{PUBLISHERS - 1} others "
        f"(median {result['others_dbfs']:.0f} dBFS), itself {own}, "
        f"longest mix-minus gap {result['longest_gap_s'] * 1000:.0f} ms",
        flush=True,
    )
    return r


def idle(s: Servers, seconds: float) -> dict[str, float]:
    pids = {kind: s.pid(kind) for kind in ("janus", "pnyx")}
    before, t0 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    return {k: (cpu_seconds(p) - before[k]) / elapsed * 100 for k, p in pids.items()}


def janus_room(url: str, room: int) -> Join:
    return lambda track: janus.join(url, room, track)


def pnyx_seats(url: str, space: str, seats: list[Account]) -> Join:
    """Publish as the next of ``seats`` on each call (A: the host, B: a co-host)."""
    tokens = iter([a.token for a in seats])
    return lambda track: webrtc.publish(url, space, next(tokens), track)


def latencies(s: Servers, plan: Plan, impaired: str = "") -> dict[str, list[float]]:
    """The rows; ``impaired`` (the impairment, e.g. "loss"): only Janus at prebuffer 1."""
    n, gapless = plan.onsets, not plan.stock_receiver
    tag, loss = f" ({impaired})" if impaired else "", bool(impaired)
    out = {}
    out["direct"] = asyncio.run(
        direct_over_veth(s.ns, plan.baseline_onsets, "direct" + tag, gapless=gapless)
    )
    out["janus_pb1"] = asyncio.run(
        a_to_b(janus_room(s.janus.url, ROOM_PB1), n, "janus pb1" + tag, gapless=gapless)
    )
    if not loss:
        join = janus_room(s.janus.url, ROOM_DEFAULT)
        out["janus_default"] = asyncio.run(a_to_b(join, n, "janus default", gapless=gapless))
    join = pnyx_seats(s.pnyx.url, s.space, s.seats[:2])
    out["pnyx"] = asyncio.run(a_to_b(join, n, "pnyx" + tag, gapless=gapless))
    return out


# -- the report -------------------------------------------------------------------------


def ms(xs: list[float], q: float) -> str:
    return f"{percentile(xs, q) * 1000:.0f}" if xs else "-"


def spread(xs: list[float]) -> str:
    if not xs:
        return "-"
    return f"{statistics.median(xs):.1f} ({min(xs):.1f}-{max(xs):.1f})"


@dataclass
class Report:
    plan: Plan
    janus_version: str
    idle: dict[str, float] = field(default_factory=dict)
    rounds: list[Round] = field(default_factory=list)
    lat: dict[str, list[float]] = field(default_factory=dict)
    lossy: dict[str, list[float]] = field(default_factory=dict)
    loss_seen: dict[str, int] = field(default_factory=dict)
    jittery: dict[str, list[float]] = field(default_factory=dict)
    jitter_seen: dict[str, int] = field(default_factory=dict)
    jitter_stats: Stats | None = None

    def jitter_label(self) -> str:
        p = self.plan
        loss = f"{p.loss_pct} % loss + " if p.loss_pct > 0 else ""
        return f"{loss}{p.jitter_ms} ms jitter"

    def cpu(self, kind: str) -> list[float]:
        return [r.server_cpu for r in self.rounds if r.kind == kind]

    def problems(self) -> list[str]:
        """What makes the figures meaningless: a mix that did not carry the other
        speakers (or carried a speaker's own voice back at their level), an empty row."""
        out = []
        for r in self.rounds:
            res = r.result
            if res["others_heard"] < PUBLISHERS - 1:
                out.append(f"a {r.kind} round's first speaker heard {res['others_heard']} others")
            own = res["own_dbfs"]
            if own is not None and own > res["others_dbfs"] - 20:
                out.append(f"a {r.kind} round's first speaker heard itself at {own:.0f} dBFS")
        for name, xs in (*self.lat.items(), *self.lossy.items(), *self.jittery.items()):
            if not xs:
                out.append(f"no onset was heard in the {name} row")
        return out

    def print(self) -> None:
        p = self.plan
        print()
        print(f"machine: {machine()}; nproc {os.cpu_count()}")
        print(
            f"janus {self.janus_version} (AudioBridge, 48 kHz rooms); pnyx serve from this "
            f"checkout; both in one network namespace, clients over a veth"
        )
        media = {k: v for k, v in PNYX_SETTINGS.items() if k not in ACCOUNTS_UNLIMITED}
        print(f"pnyx settings (PNYX_*) besides the account limits lifted: {media}")
        print(
            f"CPU: {PUBLISHERS} aiortc publishers in a separate process, {p.rounds} round(s) "
            f"per server alternating, {p.window_s:.0f} s window after {p.warmup_s:.0f} s "
            f"warm-up; idle over {p.idle_s:.0f} s. Latency: {p.onsets} onsets per row "
            f"(direct: {p.baseline_onsets}); loss run: {p.loss_pct} % of UDP dropped each "
            "way on the veth; "
            + (
                f"jitter run: that loss, then each UDP packet delayed uniform "
                f"0-{2 * p.jitter_ms} ms each way (netem delay {p.jitter_ms}ms "
                f"{p.jitter_ms}ms: reorders), NFQUEUE to a userspace program (no sch_netem)."
                if p.jitter_ms > 0
                else "no jitter run."
            )
        )
        if self.loss_seen:
            print(f"loss rule counters (packets): {self.loss_seen}")
        if self.jitter_stats is not None:
            js = self.jitter_stats
            print(
                f"jitter run: rule counters {self.jitter_seen}; the program delayed "
                f"{js.packets} packets by {js.mean_delay_ms:.1f} ms on average (max "
                f"{js.delay_max_s * 1000:.0f}), {js.overruns} overruns, its CPU "
                f"{js.cpu_s / max(js.wall_s, 1e-9) * 100:.1f} % of one core "
                f"({js.cpu_per_kpps():.1f} % per 1,000 packets/s)"
            )
        print()
        print(
            "| server | CPU % of one core, median (min-max) | idle CPU % | p50 ms | p95 ms "
            f"| {p.loss_pct} % loss p50 | p95 | {self.jitter_label()} p50 | p95 |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        jl, pl = self.lossy.get("janus_pb1", []), self.lossy.get("pnyx", [])
        jj, pj = self.jittery.get("janus_pb1", []), self.jittery.get("pnyx", [])
        j, d, x = (
            self.lat.get("janus_pb1", []),
            self.lat.get("janus_default", []),
            self.lat.get("pnyx", []),
        )
        print(
            f"| Janus AudioBridge, prebuffer 1 | {spread(self.cpu('janus'))} "
            f"| {self.idle.get('janus', 0):.1f} | {ms(j, 0.5)} | {ms(j, 0.95)} "
            f"| {ms(jl, 0.5)} | {ms(jl, 0.95)} | {ms(jj, 0.5)} | {ms(jj, 0.95)} |"
        )
        print(
            f"| Janus AudioBridge, default prebuffer (6) | (same) | (same) | {ms(d, 0.5)} "
            f"| {ms(d, 0.95)} | - | - | - | - |"
        )
        print(
            f"| Pnyx stage node | {spread(self.cpu('pnyx'))} | {self.idle.get('pnyx', 0):.1f} "
            f"| {ms(x, 0.5)} | {ms(x, 0.95)} | {ms(pl, 0.5)} | {ms(pl, 0.95)} "
            f"| {ms(pj, 0.5)} | {ms(pj, 0.95)} |"
        )
        b, bl = self.lat.get("direct", []), self.lossy.get("direct", [])
        bj = self.jittery.get("direct", [])
        print(
            f"| direct aiortc → aiortc over the veth (no server) | - | - | {ms(b, 0.5)} "
            f"| {ms(b, 0.95)} | {ms(bl, 0.5)} | {ms(bl, 0.95)} | {ms(bj, 0.5)} "
            f"| {ms(bj, 0.95)} |"
        )
        print()
        jc, pc = self.cpu("janus"), self.cpu("pnyx")
        if jc and pc:
            jm, pm = statistics.median(jc), statistics.median(pc)
            ji, pi = self.idle.get("janus", 0.0), self.idle.get("pnyx", 0.0)
            net = (pm - pi) / max(jm - ji, 1e-9)
            print(f"CPU Pnyx/Janus: {pm / jm:.2f}x (each minus its idle: {net:.2f}x)")
        for what, pn, ja in (
            ("prebuffer 1", x, j),
            ("default prebuffer", x, d),
            (f"prebuffer 1, {p.loss_pct} % loss", pl, jl),
            (f"prebuffer 1, {self.jitter_label()}", pj, jj),
        ):
            if pn and ja:
                diff = (percentile(pn, 0.95) - percentile(ja, 0.95)) * 1000
                print(f"p95 Pnyx - Janus ({what}): {diff:+.0f} ms")
        clients = [r.client_cpu for r in self.rounds]
        if clients:
            mid = statistics.median(clients)
            print(f"the client process during the rounds: median {mid:.0f}% of one core")
        receiver = "aiortc's stock" if p.stock_receiver else "a gap-skipping"
        print(f"B (the measuring receiver) used {receiver} jitter buffer")


def run(plan: Plan) -> Report:
    janus.janus_lib()  # fails early, saying how to install it
    report = Report(plan, janus.janus_version())
    with (
        tempfile.TemporaryDirectory(prefix="pnyx-janus-") as tmp,
        netns() as ns,
        janus.janus_server(ns, Path(tmp) / "janus") as jp,
        pnyx_in(ns, Path(tmp) / "pnyx") as px,
        httpx.Client(base_url=px.url, timeout=20) as c,
    ):
        janus.create_room(jp.url, ROOM_PB1, 1)
        janus.create_room(jp.url, ROOM_DEFAULT, None)
        space, seats = stage(c, cohosts=2, speakers=PUBLISHERS - 3)
        s = Servers(ns, jp, px, space, seats)
        if plan.jitter_ms > 0:
            with ns.jitter(1, 0):  # fails now, saying why, rather than after the rest
                pass
        print(f"servers up in {ns.name}: janus {jp.url}, pnyx {px.url}", flush=True)
        report.idle = idle(s, plan.idle_s)
        print(f"idle: {report.idle}", flush=True)
        order = [
            k for i in range(plan.rounds) for k in (("janus", "pnyx"), ("pnyx", "janus"))[i % 2]
        ]
        print(f"CPU rounds: {order}", flush=True)
        for kind in order:
            report.rounds.append(cpu_round(s, kind, plan))
        print("latency", flush=True)
        report.lat.update(latencies(s, plan))
        if plan.loss_pct > 0:
            print(f"latency with {plan.loss_pct} % UDP loss each way", flush=True)
            ns.loss(plan.loss_pct)
            try:
                report.lossy = latencies(s, plan, "loss")
                report.loss_seen = ns.loss_counters()
            finally:
                ns.loss(0)
        if plan.jitter_ms > 0:
            label = report.jitter_label()
            print(f"latency with {label} each way", flush=True)
            with ns.impaired(plan.loss_pct, plan.jitter_ms, seed=1) as delayed:
                assert delayed is not None
                report.jittery = latencies(s, plan, label)
                report.jitter_seen = {**ns.loss_counters(), **delayed.counters()}
            report.jitter_stats = delayed.stats
    return report


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a short check (about 1.5 minutes)")
    ap.add_argument("--rounds", type=int, default=0, help="CPU rounds per server (default 3)")
    ap.add_argument("--window", type=float, default=0, help="CPU window, s (default 15)")
    ap.add_argument("--onsets", type=int, default=0, help="onsets per latency row (default 20)")
    ap.add_argument("--loss", type=int, default=2, help="UDP loss %% for the loss run (0: skip)")
    ap.add_argument(
        "--jitter-ms",
        type=int,
        default=20,
        help="a run with --loss and each UDP packet delayed 0 to 2N ms (mean N; 0: skip)",
    )
    ap.add_argument(
        "--stock-receiver",
        action="store_true",
        help="B keeps aiortc's own jitter buffer (adds delay after a loss; see speaker_latency)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Pnyx setting (PNYX_KEY) over the bench's, e.g. jitter_min_frames=2",
    )
    ap.add_argument("--clients", help=argparse.SUPPRESS)  # internal: the publishers' process
    args = ap.parse_args()
    PNYX_SETTINGS.update(kv.split("=", 1) for kv in args.set)
    if args.clients:
        client_main(args.clients)
        return
    try:
        report = run(Plan.of(args))
    except (janus.JanusMissing, NetnsUnavailable, JitterUnavailable) as exc:
        raise SystemExit(str(exc)) from None
    report.print()
    if problems := report.problems():
        raise SystemExit("the figures are not to be trusted: " + "; ".join(problems))


if __name__ == "__main__":
    main()
