"""The largest rehearsal this machine holds (issue #5): ``--listeners`` simulated
listeners (10,000 by default) through one nginx edge for ``--steady-s`` (120 s) after
their ramp, on one origin with Redis and a host publishing a tone, with the server's
latency policy for a big audience: ``--latency standard`` (the default) has the space
past its low-latency threshold before anyone joins, as a 10,000-listener space is; with
``--latency auto`` the first 2,000 listeners start (and stay) at low latency.

It checks 0 stalls over the steady window (stalls during the ramp are reported too) and
the listener count within 2% of the truth, and that ``pnyx plan``
predicts the steady window's figures within 20%: edge requests/s, origin requests/s,
heartbeats/s, Redis commands/s, origin CPU and edge egress (origin CPU and Redis
commands net of the idle space's, measured before anyone joins: the plan counts the stage's
own work apart). Exit status 1 when a check
fails.

With ``--frontrow K`` the edge has the front row (nchan) and the origin posts the
space's program to it; K WebSocket subscribers of ``/frontrow/{space}`` (bench/
frontrow.py's ``Load``: client processes that read every 200 ms) join the N simulated
LL-HLS listeners: K of the listeners also hold a front-row subscriber, the rest (N - K)
only LL-HLS. (The simulated listeners all still fetch LL-HLS and heartbeat, so the count
and the plan's checks are as without it; the subscribers are extra edge load.) They
connect just before the steady window and are counted over it; the run's checks then
also want all of them connected and none closed by the edge, 0 stalls (a subscriber that
got nothing for over a second) and every message (a parsed subscriber gets 95% of what
the node sends or more); the node's own posts over the window (posted, failed, dropped)
are reported beside them.

    .venv/bin/python bench/rehearsal.py [--listeners 10000] [--steady-s 120] [--frontrow K]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import frontrow as push
from scale_support import Deployment, between, deployment, finish, header, loadtest, plan, read

HEARTBEAT = "/v1/spaces/{space_id}/heartbeat"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listeners", type=int, default=10_000)
    ap.add_argument("--ramp-s", type=float, default=60.0)
    ap.add_argument("--steady-s", type=float, default=120.0)
    ap.add_argument("--settle-s", type=float, default=50.0, help="presence window + margin")
    ap.add_argument("--procs", type=int, default=2, help="load generator processes")
    ap.add_argument("--baseline-s", type=float, default=20.0, help="measure the idle space")
    ap.add_argument(
        "--latency",
        choices=["standard", "auto"],
        default="standard",
        help="standard: the space is past the low-latency threshold before anyone joins",
    )
    ap.add_argument(
        "--frontrow",
        type=int,
        default=0,
        metavar="K",
        help="K of the listeners also hold a front-row WebSocket subscriber (0: no front row)",
    )
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    n = args.listeners
    if not 0 <= args.frontrow <= n:
        ap.error("--frontrow: 0 to --listeners")
    push.raise_nofile()
    settings = {"low_latency_max_listeners": "0"} if args.latency == "standard" else {}
    header(f"rehearsal: {n} listeners through one edge, {args.steady_s:.0f} s steady")
    out = Path(tempfile.mkdtemp(prefix="pnyx-rehearsal-")) / "report.json"
    total = args.ramp_s + args.settle_s + args.steady_s + 5
    front: push.LoadResult | None = None
    posts: dict[str, float] = {}
    with deployment(settings, frontrow=args.frontrow > 0) as d:
        time.sleep(5)
        idle = read(d)
        time.sleep(args.baseline_s)
        baseline = between(idle, read(d))  # the space with its speaker, nobody listening
        proc = loadtest(
            "listeners",
            [
                "--url", d.edge.url, "--space", d.space, "--listeners", str(n),
                "--ramp-s", str(args.ramp_s), "--duration-s", str(total),
                "--procs", str(args.procs), "--json", str(out),
            ],
        )  # fmt: skip
        steady_at = time.monotonic() + args.ramp_s + args.settle_s
        load: push.Load | None = None
        try:
            if args.frontrow:
                # connect the subscribers just before the steady window (lead: ~500/s)
                time.sleep(max(0.0, steady_at - time.monotonic() - 10 - args.frontrow / 500))
                load = push.Load(d.edge_port, f"/frontrow/{d.space}", args.frontrow, args.steady_s)
                connected = load.ready(timeout=120 + args.frontrow / 50)
                print(f"front-row subscribers connected: {connected} of {args.frontrow}")
            time.sleep(max(0.0, steady_at - time.monotonic()))
            if load is not None:
                load.start()
            before = read(d)
            posts0 = node_posts(d) if load is not None else {}
            time.sleep(args.steady_s)
            w = between(before, read(d))
            if load is not None:
                posts = {k: (v - posts0[k]) / w.seconds for k, v in node_posts(d).items()}
                front = load.result(timeout=60)
        finally:
            if load is not None:
                load.close()
        report = finish(proc, out, timeout=total + 180)
    measured = {
        "origin.requests_per_s": sum(w.origin_by_route.values()),
        "origin.reads_per_s": w.origin_reads_per_s,
        "heartbeats_per_s": w.route("POST", HEARTBEAT),
        "origin.cores": w.cpu["origin"] - baseline.cpu["origin"],
        "origin.cores.total": w.cpu["origin"],
        "edge.cores": w.cpu["edge"],
        "redis.ops_per_s": w.redis_commands_per_s - baseline.redis_commands_per_s,
        "redis.ops_per_s.total": w.redis_commands_per_s,
        "redis.cores": w.cpu["redis"],
    }
    start = args.ramp_s + args.settle_s
    measured.update(edge_figures(report, start, start + args.steady_s))
    predicted = plan(n, 0, "--latency", args.latency, "--edges", "1", "--no-tls")  # plain HTTP
    print(json.dumps({"measured": measured, "baseline": baseline.cpu}, indent=1))
    checks = compare(measured, predicted)
    window_stalls = stalls_between(report, start, start + args.steady_s)
    print(f"stalls in the {args.steady_s:.0f} s steady window: {window_stalls} (LL-HLS)")
    ok = report_checks(report, n) and window_stalls == 0 and all(c["ok"] for c in checks)
    if args.frontrow:
        batch = int(settings.get("frontrow_batch_frames", "3"))
        print(
            "the node's front-row messages over the steady window, per second: "
            + ", ".join(f"{k} {v:.1f}" for k, v in posts.items())
        )
        ok = frontrow_checks(front, args.frontrow, batch) and ok
    if args.json:
        doc = {"measured": measured, "predicted": predicted, "checks": checks, "report": report}
        if front is not None:
            doc["frontrow"] = dataclasses.asdict(front) | {"node_posts_per_s": posts}
        Path(args.json).write_text(json.dumps(doc, indent=2))
    sys.exit(0 if ok else 1)


def node_posts(d: Deployment) -> dict[str, float]:
    """The origin's front-row messages so far, by outcome (posted: the edge answered;
    failed; dropped: its queue to the edge was full)."""
    return {o: push.posted_messages(d.origin.url, o) for o in ("posted", "failed", "dropped")}


def edge_figures(report: dict[str, Any], start_s: float, end_s: float) -> dict[str, float]:
    """Edge requests/s and egress over the steady window, from the load generator's
    per-second series (what the simulated listeners received through the edge)."""
    rows = [r for r in report["series"] if start_s <= r["t"] <= end_s]
    return {
        "edge.requests_per_s": sum(r["req_per_s"] for r in rows) / len(rows),
        "edge.egress_bytes_per_s": sum(r["bytes_per_s"] for r in rows) / len(rows),
    }


# measured key → the plan's prediction key
COMPARED = {
    "edge.requests_per_s": "edge.requests_per_s",
    "edge.egress_bytes_per_s": "edge.egress_bytes_per_s",
    "origin.requests_per_s": "origin.requests_per_s",
    "heartbeats_per_s": "heartbeats_per_s",
    "origin.cores": "origin.cores",
    "redis.ops_per_s.total": "redis.ops_per_s",  # the plan counts the space's own work
}


def compare(measured: dict[str, float], predicted: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    print("\n| figure | measured | pnyx plan | plan / measured |")
    print("| --- | --- | --- | --- |")
    for mine, theirs in COMPARED.items():
        got, want = measured[mine], float(predicted["predictions"][theirs])
        ratio = want / got if got else float("inf")
        ok = 0.8 <= ratio <= 1.2
        rows.append({"figure": mine, "measured": got, "predicted": want, "ok": ok})
        print(f"| {mine} | {got:,.2f} | {want:,.2f} | {ratio:.2f}{'' if ok else ' ✗'} |")
    return rows


def stalls_between(report: dict[str, Any], start_s: float, end_s: float) -> int:
    """Stalls that began within [start_s, end_s] of the load generator's run."""
    rows = report["series"]
    before = max((r["stalls"] for r in rows if r["t"] < start_s), default=0)
    upto = max((r["stalls"] for r in rows if r["t"] <= end_s), default=0)
    return int(upto - before)


def frontrow_checks(front: push.LoadResult | None, k: int, batch_frames: int) -> bool:
    """The front-row subscribers over the steady window: all connected, 0 stalls, and
    every message (a subscriber that gets some data each second but misses messages is
    not counted as stalled: the parsed subscriber must get 95% of the node's rate)."""
    if front is None:
        print("front row: no result")
        return False
    sent = 1 / (batch_frames * push.FRAME_SAMPLES / push.RATE)  # messages a second
    print(
        f"front row over the steady window: {front.connected} of {k} subscribers connected "
        f"({front.failed} failed, {front.closed} closed by the edge); "
        f"stalls {front.stalls} ({front.stalled} subscribers), "
        f"longest gap {front.longest_gap_s:.2f} s; {front.messages_per_s:.1f} messages/s "
        f"to a parsed subscriber (the node sends {sent:.0f}), "
        f"{front.bytes_per_s / max(front.connected, 1) * 8 / 1e3:.1f} kbit/s each "
        f"(least {front.least_bytes_per_s * 8 / 1e3:.1f}); a client process overslept by up "
        f"to {front.overslept_s:.2f} s"
    )
    return (
        front.connected == k
        and front.closed == 0
        and front.stalls == 0
        and front.messages_per_s >= 0.95 * sent
    )


def report_checks(report: dict[str, Any], n: int) -> bool:
    stalls = report["stalls"]
    count = report["count"]
    joined = report["listeners"]["heartbeating"]
    print(
        f"\nlisteners heartbeating at the end: {joined} of {n}; stalls: {stalls['total']} "
        f"({stalls['listeners_stalled']} listeners, {stalls['stalled_s']:.1f} s); "
        f"count {count['seen']} vs truth {count['truth']} ({count['rel_error']:+.2%}); "
        f"behind live p50 {report['behind_live_s']['p50']} s; "
        f"load generator {report['cpu']['cores_used']:.2f} cores; errors {report['http_errors']}"
    )
    # Stalls during the ramp are reported (above) but judged by the steady window.
    return abs(count["rel_error"]) <= 0.02 and joined == n


if __name__ == "__main__":
    main()
