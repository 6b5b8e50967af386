"""A join storm at 10x a node's join capacity (issue #5).

One deployment (Redis, one origin with ``admit_join_rate = --capacity`` joins/s, one nginx
edge, a host publishing a tone). ``--playing`` simulated listeners join first and keep
playing through the edge; then ``pnyx loadtest joinstorm`` offers ``--times`` x capacity
new joins per second through the edge for ``--storm-s`` seconds while its scripted host
keeps acting on stage (pin, mute, unmute, speak policy: one action every ~200 ms).

It checks: 0 failed stage actions and stage p99 at most 100 ms; 0 stalls for the
listeners already playing; every refused join answered within 1 s with Retry-After; the
accepted-joins rate staying at capacity (the median of the storm's per-second accepted
counts within 10% of capacity, and no second below half of it after the first).
Exit status 1 when a check fails.

    .venv/bin/python bench/joinstorm.py [--capacity 300] [--times 10] [--playing 500]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pnyx.loadtest.stats import percentile
from scale_support import between, deployment, finish, header, loadtest, read


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--capacity", type=int, default=300, help="the node's admit_join_rate")
    ap.add_argument("--times", type=float, default=10.0)
    ap.add_argument("--playing", type=int, default=500)
    ap.add_argument("--storm-s", type=float, default=60.0)
    ap.add_argument("--ramp-s", type=float, default=10.0)
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    offered = int(args.capacity * args.times)
    header(
        f"join storm: {offered} joins/s offered ({args.times:g}x a capacity of "
        f"{args.capacity}/s) while {args.playing} listeners play"
    )
    tmp = Path(tempfile.mkdtemp(prefix="pnyx-joinstorm-"))
    settings = {"admit_join_rate": str(args.capacity)}
    with deployment(settings) as d:
        play_s = 20 + args.ramp_s + args.storm_s + 20
        players = loadtest(
            "listeners",
            [
                "--url", d.edge.url, "--space", d.space, "--listeners", str(args.playing),
                "--ramp-s", "10", "--duration-s", str(play_s), "--json", str(tmp / "play.json"),
            ],
        )  # fmt: skip
        time.sleep(20)  # everyone playing
        before = read(d)
        storm = loadtest(
            "joinstorm",
            [
                "--url", d.edge.url, "--space", d.space,
                "--host-handle", d.host.handle, "--host-password", "benchmark passphrase",
                "--rate", str(offered), "--ramp-s", str(args.ramp_s),
                "--duration-s", str(args.ramp_s + args.storm_s), "--json", str(tmp / "storm.json"),
            ],
        )  # fmt: skip
        storm_report = finish(storm, tmp / "storm.json", timeout=args.ramp_s + args.storm_s + 120)
        w = between(before, read(d))
        play_report = finish(players, tmp / "play.json", timeout=play_s + 120)
    figures = {"cpu": w.cpu, "origin_by_route": w.origin_by_route}
    print(
        f"offered {storm_report['offered']}, accepted {storm_report['accepted']}, "
        f"refused {storm_report['refused']}; joins {storm_report['join_ms']}; "
        f"refusals {storm_report['refusal_ms']}; stage {storm_report['stage']}; "
        f"load generator CPU {storm_report['cpu']}"
    )
    per_s = " ".join(str(r["accepted"]) for r in storm_report["accepted_per_s"])
    print(f"accepted per second: {per_s}")
    checks = check(storm_report, play_report, args.capacity)
    print(json.dumps({"figures": figures, "checks": checks}, indent=1))
    if args.json:
        doc = {"storm": storm_report, "players": play_report, "window": figures, "checks": checks}
        Path(args.json).write_text(json.dumps(doc, indent=2))
    sys.exit(0 if all(c["ok"] for c in checks) else 1)


def check(storm: dict[str, Any], players: dict[str, Any], capacity: int) -> list[dict[str, Any]]:
    stage = storm["stage"]
    refusal = storm["refusal_ms"]
    # the per-second accepted joins once the storm is past its first second
    per_s = [r["accepted"] for r in storm["accepted_per_s"] if r["offered"] > 2 * capacity]
    steady = per_s[1:-1] or per_s
    median = percentile(steady, 0.5) if steady else 0.0
    rows = [
        ("stage actions failed", stage["failures"], stage["failures"] == 0),
        ("stage actions", stage["actions"], stage["actions"] > 0),
        ("stage p99 ms", stage["p99_ms"], stage["p99_ms"] is not None and stage["p99_ms"] <= 100),
        ("stalls of listeners playing", players["stalls"]["total"],
         players["stalls"]["total"] == 0),
        ("refused joins", storm["refused"], storm["refused"] > 0),
        ("refusals without Retry-After", storm["refusals_without_retry_after"],
         storm["refusals_without_retry_after"] == 0),
        ("slowest refusal ms", refusal["max_ms"], (refusal["max_ms"] or 0) <= 1000),
        ("arrivals not sent (load generator short)", storm["not_sent"], storm["not_sent"] == 0),
        ("unanswered joins", storm["unanswered"] + storm["timeouts"],
         storm["unanswered"] + storm["timeouts"] == 0),
        ("accepted joins/s, median of the storm", median, abs(median - capacity) <= 0.1 * capacity),
        ("accepted joins/s, lowest second", min(steady, default=0),
         min(steady, default=0) >= 0.5 * capacity),
    ]  # fmt: skip
    print("\n| check | value | ok |")
    print("| --- | --- | --- |")
    for name, value, ok in rows:
        print(f"| {name} | {value} | {'yes' if ok else 'NO'} |")
    return [{"check": n, "value": v, "ok": ok} for n, v, ok in rows]


if __name__ == "__main__":
    main()
