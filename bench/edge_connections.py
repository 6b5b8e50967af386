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

A connection is a held request here, the costlier state of the two a listener's
connections are in (the other, between playlist or segment requests, is an idle
keep-alive socket). Capped by the client processes' open-file limit and by the edge's
``worker_connections`` (which counts upstream connections too).

    .venv/bin/python bench/edge_connections.py [--connections 56000] [--procs 4] [--step 14000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from scale_support import Deployment, deployment, family, header

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
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
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
    ap.add_argument("--connections", type=int, default=56_000)
    ap.add_argument("--procs", type=int, default=4, help="client processes")
    ap.add_argument("--step", type=int, default=14_000)
    ap.add_argument("--hold-s", type=float, default=20.0, help="measure CPU this long per step")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
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
                print(
                    f"{step.connections:,} connections (per worker {step.per_worker}): nginx "
                    f"Pss +{step.pss_bytes / 2**20:,.1f} MiB ({step.pss_bytes / step.connections:,.0f} "
                    f"B/conn), kernel TCP +{step.tcp_mem_bytes / 2**20:,.1f} MiB, nginx "
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
    print(
        "\n| connections | per worker | nginx Pss | per connection | kernel TCP | nginx cores | failed |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for s in steps:
        print(f"| {s.connections:,} | {' / '.join(f'{n:,}' for n in s.per_worker)} "
              f"| {s.pss_bytes / 2**20:,.1f} MiB | {s.pss_bytes / s.connections:,.0f} B "
              f"| {s.tcp_mem_bytes / 2**20:,.1f} MiB | {s.edge_cores:.3f} | {s.failed} |")  # fmt: skip
    most = max(max(s.per_worker) for s in steps)
    print(f"\nheld: {top.connections:,} connections on {n_workers} workers, the busiest "
          f"{most:,}; {per_conn:,.0f} B of nginx memory per connection")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps([s.__dict__ for s in steps], indent=1))


if __name__ == "__main__":
    main()
