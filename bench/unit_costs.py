"""Per-request costs the capacity model needs and the crowd benches cannot isolate
(issue #5): what one origin read costs the origin and Redis, how many bytes each kind of
read is, how many Redis commands a join is, how many uncached requests one nginx core
passes upstream, and how many of Pnyx's Redis commands one Redis core executes.

One deployment (``scale_support``: Redis, one origin, one nginx edge from
``pnyx edge-config``, a host publishing a tone). Each phase drives one kind of request
with ``wrk`` (C, one thread, 32 connections) for ``--seconds``, ``--rounds`` times; the
meters (origin and nginx CPU from /proc, Redis ``INFO``, the origin's request counters)
are read around each round, the same meters with no load give the idle cost that is
subtracted, and the median round is reported.

- ``read:playlist``, ``read:segment``, ``read:part``, ``read:state``: straight to the
  origin (the edge would answer them from its cache): origin CPU and Redis commands per
  request, and bytes per response (headers included).
- ``join``: ``POST /join`` straight to the origin: Redis commands per admitted join.
- ``heartbeat``: ``POST /heartbeat`` straight to the origin, each request with the token
  of one of ``HEARTBEAT_LISTENERS`` joined listeners in turn: origin CPU and Redis
  commands per heartbeat (presence batched as in production). Anonymous listeners by
  default; ``--signed-in N``: listeners of N accounts (each joined
  ``HEARTBEAT_LISTENERS / N`` times), whose heartbeats also keep them in the host's list.
- ``proxied``: ``POST /join`` through the edge to an origin that refuses nearly every
  join (``admit_join_rate`` 1/s, so the origin's answer is cheap): requests per second of
  nginx CPU.

Then it prints the figures for ``src/pnyx/plan/figures.toml``; the reads' mix (requests
per edge per space for each kind) is the one ``bench/edge_origin.py`` measured.

    .venv/bin/python bench/unit_costs.py [--seconds 10] [--rounds 3] [--only heartbeat]
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from join_throughput import WRK_SCRIPT, run_wrk
from pnyx.loadtest.stats import percentile
from scale_support import Deployment, Window, between, deployment, header, read

CONNECTIONS = 32
HEARTBEAT_LISTENERS = 1000  # distinct tokens the heartbeat phase cycles through
# Origin reads per edge per space, by kind (bench/edge_origin.py, 2026-11-25): standard
# latency with reactions every ~30 s, and low latency without.
MIX = {
    "standard": {"playlist": 0.50, "segment": 0.52, "state": 0.20},
    "low": {"playlist": 3.13, "part": 3.13, "state": 0.13},
}


@dataclass(frozen=True)
class Round:
    requests_per_s: float
    non_2xx_per_s: float
    window: Window


def rounds(
    d: Deployment, url: str, args: argparse.Namespace, script: Path | None = None
) -> list[Round]:
    run_wrk(url, 2, CONNECTIONS, script)  # warm-up
    out = []
    for _ in range(args.rounds):
        before = read(d)
        run = run_wrk(url, args.seconds, CONNECTIONS, script)
        w = between(before, read(d))
        if run.socket_errors:
            raise RuntimeError(f"wrk saw {run.socket_errors} socket errors against {url}")
        out.append(Round(run.requests / w.seconds, run.non_2xx / w.seconds, w))
    return out


def idle(d: Deployment, seconds: float) -> Window:
    before = read(d)
    time.sleep(seconds)
    return between(before, read(d))


def per_request(rs: list[Round], base: Window, what: str, *, admitted: bool = False) -> float:
    """Median over rounds of (meter - idle) per request (per 2xx answer if ``admitted``);
    ``what`` is a CPU key or "redis"."""

    def one(r: Round) -> float:
        if what == "redis":
            extra = r.window.redis_commands_per_s - base.redis_commands_per_s
        else:
            extra = r.window.cpu[what] - base.cpu[what]
        n = r.requests_per_s - (r.non_2xx_per_s if admitted else 0.0)
        return max(extra, 0.0) / max(n, 1e-9)

    return percentile((one(r) for r in rs), 0.5)


def response_bytes(url: str) -> int:
    """Bytes of one answer on the wire: status line, headers and body."""
    r = httpx.get(url, timeout=10)
    r.raise_for_status()
    head = len(b"HTTP/1.1 200 OK\r\n") + sum(len(k) + len(v) + 4 for k, v in r.headers.raw) + 2
    return head + len(r.content)


def read_url(origin: str, space: str, kind: str) -> str:
    """The URL of one read of ``kind``; for media, the newest finished segment or part."""
    if kind == "state":
        return f"{origin}/v1/spaces/{space}/state"
    playlist = f"{origin}/media/{space}/live.m3u8"
    if kind == "playlist":
        return playlist
    text = httpx.get(playlist, timeout=10).text
    if kind == "segment":
        found = [ln for ln in text.splitlines() if ln.startswith("seg/")]
    else:
        found = re.findall(r'#EXT-X-PART:[^\n]*URI="([^"]+)"', text)
    if not found:
        raise RuntimeError(f"no finished {kind} yet:\n{text}")
    return f"{origin}/media/{space}/{found[-1]}"


def heartbeat_script(
    origin: str, space: str, path: Path, rate: float = 0.0, accounts: int = 0
) -> Path:
    """A wrk script that sends heartbeats of ``HEARTBEAT_LISTENERS`` listeners in turn; at
    about ``rate`` per second over all connections when given (each connection waits
    ``CONNECTIONS / rate`` between requests), else as fast as the origin answers.
    ``accounts``: the listeners joined signed in, as that many accounts in turn."""
    tokens = []
    with httpx.Client(base_url=origin, timeout=20) as c:
        auth: list[dict[str, str]] = []
        for i in range(accounts):
            who = {"handle": f"beat_{i}_{int(time.time())}", "password": "correct horse"}
            c.post("/v1/accounts", json=who).raise_for_status()
            token = c.post("/v1/sessions", json=who).json()["token"]
            auth.append({"Authorization": f"Bearer {token}"})
        for i in range(HEARTBEAT_LISTENERS):
            r = c.post(f"/v1/spaces/{space}/join", headers=auth[i % len(auth)] if auth else {})
            r.raise_for_status()
            tokens.append(str(r.json()["token"]))
    table = ",\n".join(f'"{t}"' for t in tokens)
    path.write_text(
        f"local tokens = {{\n{table}\n}}\nlocal i = 0\n"
        "request = function()\n"
        "  i = i % #tokens + 1\n"
        '  return wrk.format("POST", nil, '
        '{["Authorization"] = "Bearer " .. tokens[i], ["Content-Length"] = "0"})\n'
        "end\n"
        + (f"delay = function() return {1000 * CONNECTIONS / rate:.3f} end\n" if rate else "")
    )
    return path


def heartbeats(d: Deployment, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    script = heartbeat_script(
        d.origin.url, d.space, tmp / "heartbeat.lua", args.heartbeat_rate, args.signed_in
    )
    base = idle(d, args.seconds)
    rs = rounds(d, f"{d.origin.url}/v1/spaces/{d.space}/heartbeat", args, script)
    if any(r.non_2xx_per_s > 0.01 * r.requests_per_s for r in rs):
        raise RuntimeError("heartbeat: more than 1% of the answers were not 2xx")
    return {
        "requests_per_s": percentile((r.requests_per_s for r in rs), 0.5),
        "origin_ms": per_request(rs, base, "origin") * 1000,
        "redis_ops": per_request(rs, base, "redis"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of one round")
    ap.add_argument("--rounds", type=int, default=3, help="report the median round")
    ap.add_argument("--only", choices=["heartbeat", "join"], help="measure only this request")
    ap.add_argument(
        "--join-rate",
        type=float,
        default=0.0,
        help="with --only join: joins/s to offer (0: as fast as the origin answers)",
    )
    ap.add_argument(
        "--heartbeat-rate",
        type=float,
        default=0.0,
        help="heartbeats/s to offer (0: as fast as the origin answers; a rate below that"
        " measures the cost at a process's planned load, with less batching per wake-up)",
    )
    ap.add_argument(
        "--signed-in",
        type=int,
        default=0,
        help="with --only heartbeat: the listeners are signed in, as this many accounts",
    )
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make bench-join` installs it via apt")
    header("per-request costs: origin reads, joins, proxied requests, Redis")
    tmp = Path(tempfile.mkdtemp(prefix="pnyx-unit-costs-"))
    post = tmp / "post.lua"
    post.write_text(WRK_SCRIPT)

    if args.only == "heartbeat":
        with deployment({"admit_join_rate": "0"}) as d:
            beat = heartbeats(d, args, tmp)
        print_heartbeat(beat, args.signed_in)
        return
    if args.only == "join":
        script = tmp / "join.lua"
        delay = 1000 * CONNECTIONS / args.join_rate if args.join_rate else 0.0
        script.write_text(
            WRK_SCRIPT + (f"delay = function() return {delay:.3f} end\n" if delay else "")
        )
        with deployment({"admit_join_rate": "0"}) as d:
            base = idle(d, args.seconds)
            rs = rounds(d, f"{d.origin.url}/v1/spaces/{d.space}/join", args, script)
        rate = percentile((r.requests_per_s for r in rs), 0.5)
        print(f"\n| join (anonymous, admitted) | {rate:,.0f} "
              f"| {per_request(rs, base, 'origin', admitted=True) * 1000:.3f} "
              f"| {per_request(rs, base, 'redis', admitted=True):.2f} | |")  # fmt: skip
        return

    cost: dict[str, dict[str, float]] = {}
    with deployment({"admit_join_rate": "0"}) as d:
        origin, space = d.origin.url, d.space
        time.sleep(3)  # a few segments
        base = idle(d, args.seconds)
        print(f"idle: origin {base.cpu['origin']:.3f} cores, "
              f"Redis {base.redis_commands_per_s:.0f} commands/s")  # fmt: skip
        for kind in ("playlist", "segment", "part", "state"):
            # Parts are kept for a few seconds only: find a fresh one for its rounds.
            url = read_url(origin, space, kind)
            size = float(response_bytes(url))
            rs = rounds(d, url, args)
            if any(r.non_2xx_per_s > 0.01 * r.requests_per_s for r in rs):
                raise RuntimeError(f"{kind}: more than 1% of the answers were not 2xx ({url})")
            cost[kind] = {
                "requests_per_s": percentile((r.requests_per_s for r in rs), 0.5),
                "origin_ms": per_request(rs, base, "origin") * 1000,
                "redis_ops": per_request(rs, base, "redis"),
                "bytes": size,
            }
        rs = rounds(d, f"{origin}/v1/spaces/{space}/join", args, post)
        joins = {
            "requests_per_s": percentile((r.requests_per_s for r in rs), 0.5),
            "origin_ms": per_request(rs, base, "origin", admitted=True) * 1000,
            "redis_ops": per_request(rs, base, "redis", admitted=True),
        }
        redis_ops_per_core = percentile(
            (
                (r.window.redis_commands_per_s - base.redis_commands_per_s)
                / max(r.window.cpu["redis"] - base.cpu["redis"], 1e-9)
                for r in rs
            ),
            0.5,
        )
        refused_join = percentile((r.non_2xx_per_s for r in rs), 0.5)
        beat = heartbeats(d, args, tmp)

    with deployment({"admit_join_rate": "1"}) as d:
        base = idle(d, args.seconds)
        rs = rounds(d, f"{d.edge.url}/v1/spaces/{d.space}/join", args, post)
        proxied = {
            "requests_per_s": percentile((r.requests_per_s for r in rs), 0.5),
            "edge_ms": per_request(rs, base, "edge") * 1000,
            "origin_ms": per_request(rs, base, "origin") * 1000,
            "refused_share": percentile((r.non_2xx_per_s / r.requests_per_s for r in rs), 0.5),
        }

    print("\n| request | requests/s | origin CPU ms | Redis commands | bytes |")
    print("| --- | --- | --- | --- | --- |")
    for kind, c in cost.items():
        print(f"| read: {kind} | {c['requests_per_s']:,.0f} | {c['origin_ms']:.3f} "
              f"| {c['redis_ops']:.2f} | {c['bytes']:,.0f} |")  # fmt: skip
    print(f"| join (admitted; {refused_join:.0f}/s refused) | {joins['requests_per_s']:,.0f} "
          f"| {joins['origin_ms']:.3f} | {joins['redis_ops']:.2f} | |")  # fmt: skip
    print(f"| join through the edge, refused ({proxied['refused_share']:.0%}) "
          f"| {proxied['requests_per_s']:,.0f} | {proxied['origin_ms']:.3f} | | |")  # fmt: skip
    print(f"nginx CPU per proxied request: {proxied['edge_ms']:.4f} ms")
    print_heartbeat(beat)

    print("\nfigures (src/pnyx/plan/figures.toml):")
    core_ms, ops = {}, {}
    for mode, mix in MIX.items():
        reads = sum(mix.values())
        core_ms[mode] = sum(n * cost[k]["origin_ms"] for k, n in mix.items()) / reads
        ops[mode] = sum(n * cost[k]["redis_ops"] for k, n in mix.items()) / reads
        size = sum(n * cost[k]["bytes"] for k, n in mix.items())
        print(f"  origin.bytes_per_edge_per_space_s.{mode} = {size:,.0f}")
    mixes = ", ".join(f"{m} {core_ms[m]:.3f}" for m in MIX)
    print(f"  origin.core_ms.read = {max(core_ms.values()):.3f} (the dearer mix of: {mixes})")
    mixes = ", ".join(f"{m} {ops[m]:.2f}" for m in MIX)
    print(f"  redis.ops_per_origin_read = {max(ops.values()):.2f} (the larger mix of: {mixes})")
    print(f"  redis.ops_per_join = {joins['redis_ops']:.2f}")
    print(f"  redis.ops_per_core_s = {redis_ops_per_core:,.0f} (Pnyx's join mix)")
    print(f"  edge.proxied_per_core_s = {1000 / proxied['edge_ms']:,.0f}")


def print_heartbeat(beat: dict[str, float], accounts: int = 0) -> None:
    who = f", signed in as {accounts} accounts" if accounts else ""
    print(f"\n| heartbeat ({HEARTBEAT_LISTENERS:,} listeners in turn{who}) "
          f"| {beat['requests_per_s']:,.0f} | {beat['origin_ms']:.3f} "
          f"| {beat['redis_ops']:.3f} | |")  # fmt: skip
    print(f"  origin.core_ms.heartbeat = {beat['origin_ms']:.3f}")
    print(f"  redis.ops_per_heartbeat = {beat['redis_ops']:.3f}")


if __name__ == "__main__":
    main()
