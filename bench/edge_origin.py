"""Origin load is flat in the number of listeners behind an edge (issue #5).

One deployment (Redis, one origin, one nginx edge from ``pnyx edge-config``, a host
publishing a tone). On the same space, one phase after the other: ``--small`` simulated
listeners, then ``--large`` (``pnyx loadtest listeners`` through the edge), each measured
over the same steady window after its ramp. Printed per phase: the origin's requests/s by
route (from its /metrics), the edge's requests/s and egress (from the load generator),
CPU of origin, edge and Redis, Redis commands/s — and the ratios large/small.

Listeners react now and then (``--react-every-s``), as in a lively space: its state then
changes at the pace the server allows, for any audience. The claim is about the
cacheable path (media and state reads): origin reads/s at
``--large`` at most 1.1 times that at ``--small``. Heartbeats are per listener by design
(one uncached POST every ``heartbeat_s``); they are reported apart, with their per-unit
cost, which the capacity model (``pnyx plan``) uses; so are reactions.

Latency: ``--latency standard`` (the default here) has the server tell every player to use
standard latency (``low_latency_max_listeners = 0``), as it does for any big audience;
``--latency low`` keeps low latency (LL-HLS parts) for every size.

    .venv/bin/python bench/edge_origin.py                     # 100 vs 5,000, standard
    .venv/bin/python bench/edge_origin.py --latency low --large 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scale_support import Deployment, between, deployment, finish, header, loadtest, read

HEARTBEAT = "/v1/spaces/{space_id}/heartbeat"


def measure_phase(
    d: Deployment,
    listeners: int,
    *,
    ramp_s: float,
    settle_s: float,
    window_s: float,
    procs: int,
    react_every_s: float,
) -> dict[str, Any]:
    """Run ``listeners`` for ramp + settle + window (+ a tail), measuring the window."""
    out = Path(tempfile.mkdtemp(prefix="pnyx-edge-origin-")) / "report.json"
    total = ramp_s + settle_s + window_s + 5
    proc = loadtest(
        "listeners",
        [
            "--url", d.edge.url, "--space", d.space,
            "--listeners", str(listeners), "--ramp-s", str(ramp_s),
            "--duration-s", str(total), "--procs", str(procs), "--json", str(out),
            "--react-every-s", str(react_every_s),
        ],
    )  # fmt: skip
    time.sleep(ramp_s + settle_s)
    before = read(d)
    time.sleep(window_s)
    w = between(before, read(d))
    report = finish(proc, out, timeout=total + 120)
    edge = window_series(report, ramp_s + settle_s, ramp_s + settle_s + window_s)
    return {
        "edge": edge,
        "listeners": listeners,
        "window_s": w.seconds,
        "origin_by_route": w.origin_by_route,
        "origin_reads_per_s": w.origin_reads_per_s,
        "origin_heartbeats_per_s": w.route("POST", HEARTBEAT),
        "cpu_per_s": w.cpu,
        "redis_commands_per_s": w.redis_commands_per_s,
        "loadtest": report,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--large", type=int, default=5000)
    ap.add_argument("--latency", choices=["standard", "low"], default="standard")
    ap.add_argument("--window-s", type=float, default=60.0)
    ap.add_argument("--settle-s", type=float, default=20.0)
    ap.add_argument("--procs", type=int, default=1, help="load generator processes")
    ap.add_argument(
        "--react-every-s",
        type=float,
        default=30.0,
        help="each listener reacts about this often: a lively space, whose state changes",
    )
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    header(f"origin load behind one edge: {args.small} vs {args.large} listeners ({args.latency})")
    settings = {"low_latency_max_listeners": "0" if args.latency == "standard" else "1000000"}
    phases = []
    with deployment(settings) as d:
        for n in (args.small, args.large):
            ramp = max(5.0, n / 200)  # 200 joins/s, well inside the join rate
            phase = measure_phase(
                d,
                n,
                ramp_s=ramp,
                settle_s=args.settle_s,
                window_s=args.window_s,
                procs=args.procs,
                react_every_s=args.react_every_s,
            )
            phases.append(phase)
            show(phase)
    small, large = phases
    ratio = large["origin_reads_per_s"] / small["origin_reads_per_s"]
    print(
        f"\norigin reads/s: {small['origin_reads_per_s']:.2f} at {args.small} listeners, "
        f"{large['origin_reads_per_s']:.2f} at {args.large}: ratio {ratio:.3f} (goal ≤ 1.1)"
    )
    units = unit_figures(small, large)
    print("\nper-unit figures:")
    for k, v in units.items():
        print(f"  {k}: {v:.6g}")
    stalls = sum(p["loadtest"]["stalls"]["total"] for p in phases)
    print(f"stalls: {stalls}")
    if args.json:
        doc = {"phases": phases, "ratio": ratio, "units": units}
        Path(args.json).write_text(json.dumps(doc, indent=2))
    sys.exit(0 if ratio <= 1.1 and stalls == 0 else 1)


def show(p: dict[str, Any]) -> None:
    lt = p["loadtest"]
    print(f"\n## {p['listeners']} listeners (window {p['window_s']:.0f} s)")
    for route, v in sorted(p["origin_by_route"].items()):
        print(f"  origin {route}: {v:.2f}/s")
    reads, beats = p["origin_reads_per_s"], p["origin_heartbeats_per_s"]
    print(f"  origin reads: {reads:.2f}/s; heartbeats {beats:.1f}/s")
    print("  CPU (cores): " + ", ".join(f"{k} {v:.3f}" for k, v in p["cpu_per_s"].items()))
    print(f"  Redis commands: {p['redis_commands_per_s']:.0f}/s")
    e = p["edge"]
    print(f"  edge (load generator): {e['requests_per_s']:.0f} requests/s, "
          f"{e['bytes_per_s'] / 1e6:.2f} MB/s")  # fmt: skip
    print("  load generator: " + json.dumps(summary(lt)))


def window_series(lt: dict[str, Any], start_s: float, end_s: float) -> dict[str, float]:
    """The load generator's mean request and byte rates over [start_s, end_s] of its run."""
    rows = [r for r in lt.get("series", []) if start_s <= r["t"] <= end_s]
    if not rows:
        return {"requests_per_s": float("nan"), "bytes_per_s": float("nan")}
    return {
        "requests_per_s": sum(r["req_per_s"] for r in rows) / len(rows),
        "bytes_per_s": sum(r["bytes_per_s"] for r in rows) / len(rows),
    }


def summary(lt: dict[str, Any]) -> dict[str, Any]:
    """The load generator's figures the benches quote."""
    return {
        "stalls": lt["stalls"]["total"],
        "listeners_stalled": lt["stalls"]["listeners_stalled"],
        "count_seen": lt["count"]["seen"],
        "count_truth": lt["count"]["truth"],
        "count_rel_error": lt["count"]["rel_error"],
        "behind_live_p50_s": lt["behind_live_s"]["p50"],
        "client_cores": lt["cpu"]["cores_used"],
        "join_refused": lt["joins"]["refused"],
        "http_errors": lt["http_errors"],
    }


def unit_figures(small: dict[str, Any], large: dict[str, Any]) -> dict[str, float]:
    """Per-unit figures for the capacity model (plan/figures.toml)."""
    n = large["listeners"]
    dn = n - small["listeners"]
    edge = large["edge"]
    beats = large["origin_heartbeats_per_s"]
    dhb = beats - small["origin_heartbeats_per_s"]
    d_origin = large["cpu_per_s"]["origin"] - small["cpu_per_s"]["origin"]
    d_redis = large["redis_commands_per_s"] - small["redis_commands_per_s"]
    out = {
        "listener.reads_per_s": (edge["requests_per_s"] - beats) / n,
        "listener.overhead_bytes_per_s": edge["bytes_per_s"] / n - 64_000 / 8,
        "edge.requests_per_core_s": edge["requests_per_s"] / large["cpu_per_s"]["edge"],
        "origin.reads_per_edge_per_space_s": large["origin_reads_per_s"],
        "origin.core_ms.heartbeat": d_origin / dhb * 1000 if dhb > 0 else float("nan"),
        "redis.ops_per_heartbeat": d_redis / dhb if dhb > 0 else float("nan"),
        "redis.ops_per_space_s": small["redis_commands_per_s"],
        "edge.cores_per_listener": (large["cpu_per_s"]["edge"] - small["cpu_per_s"]["edge"]) / dn,
    }
    return out


if __name__ == "__main__":
    main()
