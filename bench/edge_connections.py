"""How many listener connections one nginx edge holds, and what each costs (issue #17).

One deployment (``scale_support``: Redis, one origin, the nginx edge from
``pnyx edge-config`` with its own ``worker_processes auto`` / ``worker_connections`` /
``worker_rlimit_nofile``, a host publishing a tone). ``--procs`` client processes
(each under this machine's open-file limit, each from its own loopback source address so
the local port range is not the bound) open connections in steps of ``--step`` up to
``--connections``. Every connection does what a listener's held connection does: a
state long-poll (``GET …/state?after=V``, held at the edge until the next version, one
upstream request per version for all of them), and the next one at once with the new
version. At each step, once every connection holds a request, it reads:

- connections per nginx worker (its open sockets, from /proc), and whether any
  connection failed or was closed;
- nginx memory: the workers' proportional set size (Pss, /proc/PID/smaps_rollup) over
  the empty edge's, per connection; the kernel's TCP buffer memory (/proc/net/sockstat,
  both ends of loopback: an upper bound for the server's side);
- nginx CPU while the connections are held (answers to every new version included), per
  connection.

Then, with ``--tier-listeners`` simulated listeners (``pnyx loadtest listeners``, what the
web client does) through the edge in each latency tier (standard and low), each on a
deployment of its own: edge requests/s, nginx CPU and open client connections per
listener, over a steady window after the ramp.

A connection is a held request here, the costlier state of the two a listener's
connections are in (the other, between playlist or segment requests, is an idle
keep-alive socket). Capped by the client processes' open-file limit and by the edge's
``worker_connections`` (which counts upstream connections too).

    .venv/bin/python bench/edge_connections.py [--connections 60000] [--procs 4] [--step 15000]
        [--tier-listeners 1000] [--only connections|tiers]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from scale_support import Deployment, deployment, family, finish, header, loadtest

OPEN_PER_S = 4000  # per client process: connections opened per second, at most


# -- the client processes -----------------------------------------------------------


@dataclass
class Counts:
    open: int = 0
    holding: int = 0  # connections with a request sent and not yet answered
    answers: int = 0
    failed: int = 0


async def _listen(
    host: str, port: int, source: str, space: str, counts: Counts, stop: asyncio.Event
) -> None:
    """One connection: state long-polls, one after the other, until ``stop``."""
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    counts.open += 1
    version = -1
    try:
        while not stop.is_set():
            after = f"?after={version}" if version >= 0 else ""
            writer.write(
                f"GET /v1/spaces/{space}/state{after} HTTP/1.1\r\nHost: edge\r\n\r\n".encode()
            )
            counts.holding += 1
            head = await reader.readuntil(b"\r\n\r\n")
            counts.holding -= 1
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"x-pnyx-version":
                    version = int(value)
            await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"status {status}")
            counts.answers += 1
    finally:
        counts.open -= 1
        writer.close()


def client(pipe: Connection, host: str, port: int, source: str, space: str, limit: int) -> None:
    """A client process: on each ``("open", n)`` from the parent, grow to ``n``
    connections; answer ``"counts"`` with its counts; ``"stop"`` ends it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, limit + 100), hard))

    async def main() -> None:
        counts = Counts()
        stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()

        def done(t: asyncio.Task[None]) -> None:
            tasks.discard(t)
            if not t.cancelled() and t.exception() is not None and not stop.is_set():
                counts.failed += 1

        while True:
            cmd = await loop.run_in_executor(None, pipe.recv)
            if cmd[0] == "open":
                while len(tasks) < cmd[1]:
                    for _ in range(min(OPEN_PER_S // 20, cmd[1] - len(tasks))):
                        t = asyncio.create_task(_listen(host, port, source, space, counts, stop))
                        t.add_done_callback(done)
                        tasks.add(t)
                    await asyncio.sleep(0.05)
                pipe.send("ok")
            elif cmd[0] == "counts":
                pipe.send(counts.__dict__.copy())
            else:
                stop.set()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                pipe.send("stopped")
                return

    asyncio.run(main())


# -- the meters ------------------------------------------------------------------------


def workers(d: Deployment) -> list[int]:
    """nginx's worker processes (not its master nor the cache manager and loader)."""
    return [
        p
        for p in family(d.edge.proc.pid)
        if b"worker process" in Path(f"/proc/{p}/cmdline").read_bytes()
    ]


def sockets(pid: int) -> int:
    n = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if fd.readlink().name.startswith("socket:"):
                n += 1
        except OSError:
            continue
    return n


def pss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no Pss for {pid}")


def tcp_mem_bytes() -> int:
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("mem") + 1]) * resource.getpagesize()
    raise RuntimeError("no TCP line in /proc/net/sockstat")


def edge_cpu(d: Deployment) -> float:
    return float(d.cpu()["edge"])


@dataclass
class Step:
    connections: int
    per_worker: list[int]
    pss_bytes: int
    tcp_mem_bytes: int
    edge_cores: float
    answers_per_s: float
    failed: int


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=60_000)
    ap.add_argument("--procs", type=int, default=4, help="client processes")
    ap.add_argument("--step", type=int, default=15_000)
    ap.add_argument("--tier-listeners", type=int, default=1000)
    ap.add_argument("--tier-ramp-s", type=float, default=20.0)
    ap.add_argument("--tier-window-s", type=float, default=30.0)
    ap.add_argument("--browser-s", type=float, default=30.0, help="watch Chromium this long")
    ap.add_argument("--browser-settle-s", type=float, default=70.0, help="after it plays")
    ap.add_argument("--browser-tls", action="store_true", help="also over HTTPS (HTTP/2)")
    ap.add_argument("--only", choices=["connections", "tiers", "browser"])
    ap.add_argument("--hold-s", type=float, default=20.0, help="measure CPU this long per step")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    if args.only in (None, "connections"):
        connections(args)
    if args.only in (None, "tiers"):
        tiers(args)
    if args.only in (None, "browser"):
        browser(args)


def connections(args: argparse.Namespace) -> None:
    per_proc = -(-args.connections // args.procs)
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if per_proc + 100 > limit:
        raise SystemExit(f"{per_proc} connections per process is over the limit {limit}")
    header(f"edge connections: up to {args.connections:,} held state long-polls")
    steps: list[Step] = []
    with deployment({"low_latency_max_listeners": "0"}) as d:
        host, port = "127.0.0.1", int(d.edge.url.rsplit(":", 1)[1])
        httpx.get(f"{d.edge.url}/v1/spaces/{d.space}/state", timeout=10).raise_for_status()
        ws = workers(d)
        conf = d.edge.conf.read_text()
        limits = [ln.split("#")[0].strip() for ln in conf.splitlines()
                  if ln.strip().startswith(("worker_connections", "worker_rlimit"))]  # fmt: skip
        print(f"nginx workers: {len(ws)}; {' '.join(limits)}")
        time.sleep(2)
        base_pss = sum(pss_bytes(p) for p in ws)
        base_tcp = tcp_mem_bytes()
        base_sockets = [sockets(p) for p in ws]
        ctx = mp.get_context("spawn")
        pipes, procs = [], []
        for i in range(args.procs):
            ours, theirs = ctx.Pipe()
            source = f"127.0.0.{10 + i}"
            p = ctx.Process(
                target=client, args=(theirs, host, port, source, d.space, per_proc), daemon=True
            )
            p.start()
            pipes.append(ours)
            procs.append(p)
        try:
            target = 0
            while target < args.connections:
                target = min(args.connections, target + args.step)
                share = [target // args.procs + (1 if i < target % args.procs else 0)
                         for i in range(args.procs)]  # fmt: skip
                for pipe, n in zip(pipes, share, strict=True):
                    pipe.send(("open", n))
                for pipe in pipes:
                    if not pipe.poll(600) or pipe.recv() != "ok":
                        raise RuntimeError("a client process did not open its connections")
                counts = wait_held(pipes, target)
                cpu0, t0 = edge_cpu(d), time.monotonic()
                answers0 = sum(c["answers"] for c in counts)
                time.sleep(args.hold_s)
                counts = gather(pipes)
                seconds = time.monotonic() - t0
                cores = (edge_cpu(d) - cpu0) / seconds
                held = [s - b for s, b in zip((sockets(p) for p in ws), base_sockets, strict=True)]
                step = Step(
                    connections=sum(c["open"] for c in counts),
                    per_worker=held,
                    pss_bytes=sum(pss_bytes(p) for p in ws) - base_pss,
                    tcp_mem_bytes=tcp_mem_bytes() - base_tcp,
                    edge_cores=cores,
                    answers_per_s=(sum(c["answers"] for c in counts) - answers0) / seconds,
                    failed=sum(c["failed"] for c in counts),
                )
                steps.append(step)
                per_conn = step.pss_bytes / max(step.connections, 1)
                print(
                    f"{step.connections:,} connections (per worker {step.per_worker}): nginx "
                    f"Pss +{step.pss_bytes / 2**20:,.1f} MiB ({per_conn:,.0f} B/conn), "
                    f"kernel TCP +{step.tcp_mem_bytes / 2**20:,.1f} MiB, nginx "
                    f"{step.edge_cores:.3f} cores, {step.answers_per_s:,.0f} answers/s, "
                    f"failed {step.failed}",
                    flush=True,
                )  # fmt: skip
                if step.failed:
                    break
        finally:
            for pipe in pipes:
                pipe.send(("stop",))
            for p in procs:
                p.join(30)
                if p.is_alive():
                    p.kill()
    report(steps, len(ws), args)


def gather(pipes: list[Connection]) -> list[dict[str, Any]]:
    out = []
    for pipe in pipes:
        pipe.send(("counts",))
        out.append(pipe.recv())
    return out


def wait_held(pipes: list[Connection], target: int, timeout: float = 120.0) -> list[dict[str, Any]]:
    """Until every connection is open and holds a request (or fail, saying how many)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = gather(pipes)
        open_ = sum(c["open"] for c in counts)
        failed = sum(c["failed"] for c in counts)
        if open_ >= target or failed:
            return counts
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {open_} of {target} connections open")
        time.sleep(0.5)


def report(steps: list[Step], n_workers: int, args: argparse.Namespace) -> None:
    if not steps:
        return
    top = steps[-1]
    per_conn = top.pss_bytes / top.connections
    cols = ("connections", "per worker", "nginx Pss", "per connection", "kernel TCP", "nginx cores")
    print("\n| " + " | ".join(cols) + " | failed |\n" + "| --- " * (len(cols) + 1) + "|")
    for s in steps:
        workers_ = " / ".join(f"{n:,}" for n in s.per_worker)
        print(f"| {s.connections:,} | {workers_} | {s.pss_bytes / 2**20:,.1f} MiB "
              f"| {s.pss_bytes / s.connections:,.0f} B | {s.tcp_mem_bytes / 2**20:,.1f} MiB "
              f"| {s.edge_cores:.3f} | {s.failed} |")  # fmt: skip
    most = max(max(s.per_worker) for s in steps)
    print(f"\nheld: {top.connections:,} connections on {n_workers} workers, the busiest "
          f"{most:,}; {per_conn:,.0f} B of nginx memory per connection")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps([s.__dict__ for s in steps], indent=1))


def tiers(args: argparse.Namespace) -> None:
    n = args.tier_listeners
    header(f"edge cost per listener: {n:,} simulated listeners in each latency tier")
    rows = []
    for tier in ("standard", "low"):
        # standard: the space is past its low-latency threshold; low: never past it
        limit = "0" if tier == "standard" else str(10 * n)
        with deployment({"low_latency_max_listeners": limit}) as d:
            ws = workers(d)
            base = [sockets(p) for p in ws]
            out = Path(tempfile.mkdtemp(prefix="pnyx-edge-tier-")) / "report.json"
            settle = 10.0
            total = args.tier_ramp_s + settle + args.tier_window_s + 5
            proc = loadtest(
                "listeners",
                [
                    "--url", d.edge.url, "--space", d.space, "--listeners", str(n),
                    "--ramp-s", str(args.tier_ramp_s), "--duration-s", str(total),
                    "--latency", tier, "--procs", "1", "--json", str(out),
                ],
            )  # fmt: skip
            time.sleep(args.tier_ramp_s + settle)
            cpu0, t0 = edge_cpu(d), time.monotonic()
            held = []
            while time.monotonic() - t0 < args.tier_window_s:
                held.append(sum(sockets(p) for p in ws) - sum(base))
                time.sleep(2)
            cores = (edge_cpu(d) - cpu0) / (time.monotonic() - t0)
            report = finish(proc, out, timeout=total + 120)
        start = args.tier_ramp_s + settle
        window = [r for r in report["series"] if start <= r["t"] <= start + args.tier_window_s]
        req_s = sum(r["req_per_s"] for r in window) / len(window)
        conns = sorted(held)[len(held) // 2]
        rows.append((tier, req_s / n, cores / n, conns / n, req_s / max(cores, 1e-9), report))
    cols = ("tier", "requests/s per listener", "nginx core-µs/s per listener",
            "client connections per listener", "requests per nginx core-s", "stalls")  # fmt: skip
    print("\n| " + " | ".join(cols) + " |\n" + "| --- " * len(cols) + "|")
    for tier, req, cores, conns, per_core, report in rows:
        print(f"| {tier} | {req:.2f} | {cores * 1e6:.1f} | {conns:.2f} | {per_core:,.0f} "
              f"| {report['stalls']['total']} |")  # fmt: skip


def established(port: int) -> int:
    """Open TCP connections to ``port`` on loopback, counted from the clients' side."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( dport = :{port} )"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return len(out.splitlines())


def browser(args: argparse.Namespace) -> None:
    """Chromium playing the space through the edge (HTTP/1.1), in each latency tier:
    the connections it keeps open to the edge while it plays (held requests and idle
    keep-alive ones: both hold a socket of the edge's)."""
    from playwright.sync_api import expect
    from tests.support.browser import chromiums, require_browser, tone_wav
    from tests.support.tls import self_signed

    require_browser()
    header("edge connections of one Chromium listener, per latency tier")
    tmp = Path(tempfile.mkdtemp(prefix="pnyx-edge-browser-"))
    rows = []
    quiet = tone_wav(tmp / "quiet.wav", 300.0, amplitude=0.0)
    runs = [("standard", None), ("low", None)]
    if args.browser_tls:
        runs.append(("low", self_signed(tmp / "tls")))
    for tier, cert in runs:
        limit = "0" if tier == "standard" else "2000"
        with deployment({"low_latency_max_listeners": limit}, tls=cert) as d:
            port = int(d.edge.url.rsplit(":", 1)[1])
            flags = ["--ignore-certificate-errors"] if cert else []
            with chromiums(d.edge.url, quiet, args=flags) as bs:
                page, _ = bs[0].page("listener")
                page.goto(f"/s/{d.space}")
                page.get_by_role("button", name="Play the space").click()
                expect(page.locator("#player-status")).to_have_text("Playing live.", timeout=30_000)
                # past the page's own loads and the edge's keepalive_timeout (65 s), which
                # closes the sockets the page loaded with and the player does not reuse
                time.sleep(args.browser_settle_s)
                seen = []
                t0 = time.monotonic()
                while time.monotonic() - t0 < args.browser_s:
                    seen.append(established(port))
                    time.sleep(0.5)
                engine = page.evaluate("pnyx.space.playerEngine")
        seen.sort()
        how = "HTTPS, HTTP/2" if cert else "HTTP/1.1"
        rows.append((tier, how, seen[len(seen) // 2], seen[-1], seen[0], engine))
    print("\n| tier | edge | connections to the edge, median | max | min | player |")
    print("| --- | --- | --- | --- | --- | --- |")
    for tier, how, median, most, least, engine in rows:
        print(f"| {tier} | {how} | {median} | {most} | {least} | {engine} |")


if __name__ == "__main__":
    main()
