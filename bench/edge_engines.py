"""Which engine wakes a crowd of LL-HLS waiters fastest, side by side in one run (issue 17).

One deployment (Redis, one ``pnyx serve`` with production clocks, a host publishing a
tone). In front of the one origin, each on its own port:

* ``nginx``: the edge ``pnyx edge-config`` generated before issue 17 (nginx alone, its
  cache lock on every listener read);
* ``nginx, no lock``: the same with ``proxy_cache_lock off`` — nginx tuned as far as it
  goes for latency: a waiter on a locked entry re-checks it on a fixed 500 ms timer
  (``ngx_http_file_cache_lock_wait``, no directive changes it), so the only way to
  be faster is not to wait, and then every waiter is an origin request;
* ``Varnish``: varnishd alone with the edge's VCL, its backend the origin;
* ``nginx + Varnish``: the edge ``pnyx edge-config`` generates now (nginx in front,
  live blocking reads collapsed by Varnish behind it).

For each and N waiters (1, 100, 1,000 by default), ``--rounds`` rounds of: read the live
playlist's preload hint (part I of segment M, not made yet), then N clients on open
keep-alive connections ask at once for that part (``part/M.I.m4s``, which the origin
holds until it exists) or for the blocking playlist reload that waits for it
(``live.m3u8?_HLS_msn=M&_HLS_part=I``); one more client asks the origin itself. Printed:
each waiter's delay after that direct client got its answer (p50/p95/max), the spread
after the first waiter's receipt, origin requests per object, and the edge's CPU per
request.

    .venv/bin/python bench/edge_engines.py
    .venv/bin/python bench/edge_engines.py --waiters 1 100 1000 --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from latency_support import cpu_seconds
from pnyx.edge import EdgeSpec
from pnyx.edge_varnish import Collapse
from scale_support import ROOT, deployment, descendants, header, origin_requests

assert str(ROOT) in sys.path  # scale_support put the harness (tests/support) there

from tests.support import crowd  # noqa: E402
from tests.support.nginx import nginx_edge, varnish_running  # noqa: E402
from tests.support.poll import wait_until  # noqa: E402
from tests.support.procs import free_port  # noqa: E402

HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/(\d+)\.(\d+)\.m4s"')
ROUTES = {
    "part": ("GET", "/media/{space_id}/part/{msn}.{part}.m4s"),
    "playlist": ("GET", "/media/{space_id}/live.m3u8"),
}


@dataclass
class Engine:
    name: str
    port: int
    pids: Callable[[], list[int]]
    key_header: bool = False  # Varnish alone: the client sends the key nginx would


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _request(path: str, key: bool) -> bytes:
    return crowd.request(path, {"X-Pnyx-Key": path} if key else None)


async def _round(
    engine: Engine,
    conns: list[crowd.Conn],
    direct: crowd.Conn,
    origin_url: str,
    space: str,
    kind: str,
) -> dict[str, Any] | None:
    async with httpx.AsyncClient(base_url=origin_url, timeout=10) as c:
        text = (await c.get(f"/media/{space}/live.m3u8")).text
    m = HINT.search(text)
    if m is None:
        return None
    msn, index = m.group(1), m.group(2)
    if kind == "part":
        path = f"/media/{space}/part/{msn}.{index}.m4s"
    else:
        path = f"/media/{space}/live.m3u8?_HLS_msn={msn}&_HLS_part={index}"
    req = _request(path, engine.key_header)
    sent = time.monotonic()
    results = await asyncio.gather(
        crowd.get(direct, _request(path, False)), *(crowd.get(c, req) for c in conns)
    )
    (origin_t, origin_status, _), waiters = results[0], [(t, s) for t, s, _ in results[1:]]
    if origin_status != 200 or any(s != 200 for _, s in waiters):
        return {"errors": sum(s != 200 for _, s in waiters) + (origin_status != 200)}
    first = min(t for t, _ in waiters)
    return {
        "errors": 0,
        "held_s": origin_t - sent,
        "after_origin": [t - origin_t for t, _ in waiters],
        "after_first": [t - first for t, _ in waiters],
    }


def measure(
    engine: Engine, origin_url: str, space: str, kind: str, n: int, rounds: int
) -> dict[str, Any]:
    origin_port = int(origin_url.rsplit(":", 1)[1])
    method, route = ROUTES[kind]

    async def run() -> dict[str, Any]:
        conns = await crowd.connect(engine.port, n)
        (direct,) = await crowd.connect(origin_port, 1)
        before = origin_requests(origin_url).get((method, route), 0.0)
        cpu0 = sum(cpu_seconds(q) for top in engine.pids() for q in descendants(top))
        after_origin: list[float] = []
        after_first: list[float] = []
        held: list[float] = []
        per_round: list[float] = []
        errors = done = 0
        for _ in range(rounds):
            r = await _round(engine, conns, direct, origin_url, space, kind)
            if r is None:
                continue
            errors += r["errors"]
            if not r["errors"]:
                done += 1
                after_origin += r["after_origin"]
                after_first += r["after_first"]
                held.append(r["held_s"])
                per_round.append(round(p(r["after_origin"], 0.95) * 1000, 1))
        cpu1 = sum(cpu_seconds(q) for top in engine.pids() for q in descendants(top))
        after = origin_requests(origin_url).get((method, route), 0.0)
        crowd.close([*conns, direct])
        objects = max(1, rounds)
        own = 2 if kind == "playlist" else 1
        return {
            "engine": engine.name,
            "kind": kind,
            "waiters": n,
            "rounds": rounds,
            "rounds_ok": done,
            "errors": errors,
            "held_at_origin_p50_s": p(held, 0.5),
            "after_origin_p50_s": p(after_origin, 0.5),
            "after_origin_p95_s": p(after_origin, 0.95),
            "after_origin_max_s": max(after_origin, default=float("nan")),
            "after_first_p95_s": p(after_first, 0.95),
            "per_round_p95_ms": per_round,
            # minus the direct client's own request (and, for playlists, the read of
            # the hint), per object
            "origin_requests_per_object": (after - before - objects * own) / objects,
            "edge_cpu_us_per_request": (cpu1 - cpu0) / max(1, n * rounds) * 1e6,
        }

    return asyncio.run(run())


@contextmanager
def engines(origin_url: str, deployed_edge: Any) -> Iterator[list[Engine]]:
    upstream = origin_url.removeprefix("http://")
    with ExitStack() as stack:
        plain = stack.enter_context(nginx_edge([upstream], varnish=False))
        nolock = stack.enter_context(nginx_edge([upstream], varnish=False))
        nolock.conf.write_text(
            nolock.conf.read_text().replace("proxy_cache_lock on;", "proxy_cache_lock off;")
        )
        before = set(descendants(nolock.proc.pid)) - {nolock.proc.pid}
        assert nolock.signal("reload").returncode == 0
        wait_until(
            lambda: set(descendants(nolock.proc.pid)) - {nolock.proc.pid} - before,
            20,
            "nginx workers without the lock",
        )
        root = Path(stack.enter_context(_tmpdir()))
        alone = EdgeSpec(
            "127.0.0.1:1",
            (upstream,),
            varnish=Collapse(f"127.0.0.1:{free_port()}", upstream, workdir=root / "varnish"),
        )
        varnish = stack.enter_context(varnish_running(alone, root))
        assert alone.varnish is not None
        yield [
            Engine("nginx", _port(plain.http_url), lambda: [plain.proc.pid]),
            Engine("nginx, no lock", _port(nolock.http_url), lambda: [nolock.proc.pid]),
            Engine(
                "Varnish",
                _port(alone.varnish.listen),
                lambda: [varnish.pid],
                key_header=True,
            ),
            Engine("nginx + Varnish", _port(deployed_edge.http_url), lambda: deployed_edge.pids),
        ]


@contextmanager
def _tmpdir() -> Iterator[str]:
    import shutil
    import tempfile

    d = tempfile.mkdtemp(prefix="pnyx-engines-")
    Path(d).chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--waiters", type=int, nargs="+", default=[1, 100, 1000])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--kinds", nargs="+", default=["part", "playlist"], choices=list(ROUTES))
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    if max(args.waiters) > 5000:
        ap.error("at most 5,000 waiters (open files)")
    header("edge engines side by side: waiters on the next LL-HLS part")
    rows = []
    with (
        deployment({"low_latency_max_listeners": "1000000"}) as d,
        engines(d.origin.url, d.edge) as found,
    ):
        for kind in args.kinds:
            for n in args.waiters:
                for engine in found:
                    row = measure(engine, d.origin.url, d.space, kind, n, args.rounds)
                    rows.append(row)
                    show(row)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def show(r: dict[str, Any]) -> None:
    ms = 1000
    print(
        f"{r['kind']:8} {r['waiters']:>5} waiters  {r['engine']:16} "
        f"after origin p50 {r['after_origin_p50_s'] * ms:6.1f} ms  p95 "
        f"{r['after_origin_p95_s'] * ms:6.1f} ms  max {r['after_origin_max_s'] * ms:6.1f} ms  "
        f"spread p95 {r['after_first_p95_s'] * ms:6.1f} ms  "
        f"origin req/object {r['origin_requests_per_object']:6.2f}  "
        f"edge CPU {r['edge_cpu_us_per_request']:6.0f} µs/req  "
        f"errors {r['errors']}  (held at origin p50 {r['held_at_origin_p50_s'] * ms:.0f} ms)"
        f"  per round p95 ms {r['per_round_p95_ms']}",
        flush=True,
    )


if __name__ == "__main__":
    main()
