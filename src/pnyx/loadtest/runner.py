"""Run a listener fleet in this process or in K spawned worker processes, merge their
per-second snapshots, print progress, and build the final report (see the package
docstring in :mod:`pnyx.loadtest.command` for its keys)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue as queue_mod
import sys
import time
from dataclasses import dataclass, replace
from typing import Any, TextIO

import uvloop

from pnyx.loadtest.listeners import Fleet, FleetConfig
from pnyx.loadtest.stats import Stats, connection_figures, merged
from pnyx.loadtest.target import raise_fd_limit

KINDS = ("join", "heartbeat", "reaction", "playlist", "init", "part", "segment", "state")


@dataclass(frozen=True)
class RunSpec:
    fleet: FleetConfig  # listeners = the total; split across procs
    procs: int
    url: str
    quiet: bool


def split(total: int, procs: int) -> list[int]:
    """``total`` listeners over ``procs`` workers, as evenly as possible."""
    base, extra = divmod(total, procs)
    return [base + (1 if i < extra else 0) for i in range(procs)]


def snapshot(fleet: Fleet, *, final: bool) -> dict[str, Any]:
    return {
        "worker": fleet.cfg.worker,
        "final": final,
        "elapsed_s": fleet.clock() - fleet.started_at,
        "cpu_s": time.process_time(),
        "cpu_sys_s": os.times().system,
        "stats": fleet.stats.to_dict(),
        "gauges": fleet.final if final and fleet.final is not None else fleet.gauges(),
    }


async def _run_fleet(cfg: FleetConfig, send: Any) -> None:
    fleet = Fleet(cfg)
    await fleet.run(lambda: send(snapshot(fleet, final=False)))
    send(snapshot(fleet, final=True))


def worker_main(cfg: FleetConfig, out: Any) -> None:
    """Entry point of a spawned worker: raise the fd limit, run, report on ``out``."""
    raise_fd_limit()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_run_fleet(cfg, out.put))


class Aggregator:
    """Latest snapshot per worker → merged figures, progress lines, the final report."""

    def __init__(self, spec: RunSpec, err: TextIO = sys.stderr) -> None:
        self.spec = spec
        self.err = err
        self.latest: dict[int, dict[str, Any]] = {}
        self.series: list[dict[str, Any]] = []
        self._prev: tuple[float, float, float, float] | None = None  # t, requests, bytes, cpu
        self.t0 = time.monotonic()

    def update(self, snap: dict[str, Any]) -> None:
        self.latest[int(snap["worker"])] = snap

    def merged(self) -> tuple[Stats, dict[str, Any], float, float]:
        stats = merged(Stats.from_dict(s["stats"]) for s in self.latest.values())
        gauges: dict[str, Any] = {}
        best = -2
        for s in self.latest.values():
            g = s["gauges"]
            for k, v in g.items():
                if k.startswith("seen_") or k == "server_latency":
                    continue
                if isinstance(v, int | float):
                    gauges[k] = gauges.get(k, 0) + v
            if g["seen_version"] > best:
                best = g["seen_version"]
                for k in ("seen_version", "seen_count", "seen_state", "server_latency"):
                    gauges[k] = g[k]
        cpu = sum(float(s["cpu_s"]) for s in self.latest.values())
        gauges["cpu_sys_s"] = sum(float(s.get("cpu_sys_s", 0.0)) for s in self.latest.values())
        elapsed = max((float(s["elapsed_s"]) for s in self.latest.values()), default=0.0)
        return stats, gauges, cpu, elapsed

    def progress(self) -> None:
        stats, g, cpu, _ = self.merged()
        now = time.monotonic() - self.t0
        reqs, nbytes = stats.get("requests"), stats.get("bytes")
        req_s = bytes_s = cpu_share = 0.0
        if self._prev is not None:
            dt = max(1e-6, now - self._prev[0])
            req_s = (reqs - self._prev[1]) / dt
            bytes_s = (nbytes - self._prev[2]) / dt
            cpu_share = (cpu - self._prev[3]) / dt
        self._prev = (now, reqs, nbytes, cpu)
        seen, truth = g.get("seen_count"), g.get("truth", 0)
        refusals = stats.get("join.refused") + stats.get("heartbeat.refused")
        self.series.append(
            {
                "t": round(now, 1),
                "active": g.get("active", 0),
                "joined": g.get("joined", 0),
                "truth": truth,
                "seen": seen,
                "req_per_s": round(req_s, 1),
                "bytes_per_s": round(bytes_s),
                "stalls": g.get("stalls", 0),
                "stalled_now": g.get("stalled_now", 0),
                "refusals": refusals,
                "cpu": round(cpu_share, 3),
            }
        )
        if self.spec.quiet:
            return
        err = rel_error(seen, truth)
        count = f"{seen}/{truth}" + (f" ({err:+.1%})" if err is not None else "")
        print(
            f"[{now:6.1f}s] active={g.get('active', 0)} playing={g.get('playing', 0)} "
            f"req/s={req_s:,.0f} MB/s={bytes_s / 1e6:.2f} stalls={g.get('stalls', 0)} "
            f"(now {g.get('stalled_now', 0)}) refusals={refusals:.0f} count={count} "
            f"cpu={cpu_share:.2f}",
            file=self.err,
            flush=True,
        )

    def report(self) -> dict[str, Any]:
        stats, g, cpu, elapsed = self.merged()
        spec = self.spec
        cfg = spec.fleet
        reqs = stats.get("requests")
        seen, truth = g.get("seen_count"), g.get("truth", 0)
        per_kind = {k: stats.hist(k).summary_ms() for k in KINDS}
        for k in KINDS:
            per_kind[k]["errors"] = int(
                stats.get(f"error_by_kind.{k}") + stats.get(f"fail_by_kind.{k}")
            )
        behind = stats.hist("behind_live")
        http_errors = {k: int(v) for k, v in stats.with_prefix("status.").items()}
        http_errors.update({k: int(v) for k, v in stats.with_prefix("fail.").items()})
        return {
            "tool": "listeners",
            "schema": 1,
            "config": {
                "url": spec.url,
                "space": cfg.space,
                "listeners": cfg.listeners,
                "duration_s": cfg.duration_s,
                "ramp_s": cfg.ramp_s,
                "latency": cfg.latency,
                "procs": spec.procs,
                "join_attempts": cfg.join_attempts,
            },
            "elapsed_s": round(elapsed, 2),
            "listeners": {
                "started": g.get("started", 0),
                "joined": g.get("joined", 0),
                "active": g.get("active", 0),
                "heartbeating": truth,
                "playing": g.get("playing", 0),
                "never_joined": g.get("never_joined", 0),
                "ended": g.get("ended", 0),
                "mode_low": g.get("low", 0),
                "mode_standard": g.get("standard", 0),
            },
            "joins": {
                "attempts": int(stats.get("join.attempts")),
                "accepted": int(stats.get("join.accepted")),
                "rejoined": int(stats.get("join.rejoined")),
                "refused": int(stats.get("join.refused")),
                "rejected": int(stats.get("join.rejected")),
                "failed": int(stats.get("join.failed")),
                "given_up": int(stats.get("join.given_up")),
            },
            "heartbeats": {
                "refused": int(stats.get("heartbeat.refused")),
                "expired": int(stats.get("heartbeat.expired")),
                "failed": int(stats.get("heartbeat.failed")),
            },
            "reactions": {
                "sent": int(stats.get("reactions.sent")),
                "refused": int(stats.get("reactions.refused")),
            },
            "requests": per_kind,
            "connections": connection_figures(stats),
            "http_errors": http_errors,
            "stalls": {
                "listeners_stalled": g.get("listeners_stalled", 0),
                "total": g.get("stalls", 0),
                "stalled_s": round(float(g.get("stalled_s", 0.0)), 3),
                "stalled_at_end": g.get("stalled_now", 0),
                "skips": g.get("skips", 0),
                "began_while": {k: int(v) for k, v in stats.with_prefix("stall_while.").items()},
            },
            "behind_live_s": {
                "p50": _s(behind.percentile(0.5)),
                "p95": _s(behind.percentile(0.95)),
                "p99": _s(behind.percentile(0.99)),
                "max": _s(behind.max if behind.count else None),
            },
            "count": {
                "seen": seen,
                "truth": truth,
                "rel_error": _round(rel_error(seen, truth), 4),
                "state_version": g.get("seen_version"),
                "space_state": g.get("seen_state"),
                "server_latency": g.get("server_latency"),
            },
            "rate": {
                "requests": int(reqs),
                "bytes": int(stats.get("bytes")),
                "media_bytes": int(
                    stats.get("media_bytes.part") + stats.get("media_bytes.segment")
                ),
                "requests_per_s": round(reqs / elapsed, 1) if elapsed else 0.0,
                "bytes_per_s": round(stats.get("bytes") / elapsed) if elapsed else 0,
            },
            "cpu": {
                "client_cpu_s": round(cpu, 3),
                "client_cpu_sys_s": round(float(g.get("cpu_sys_s", 0.0)), 3),
                "cpu_per_request_us": round(cpu / reqs * 1e6, 1) if reqs else None,
                "cores_used": round(cpu / elapsed, 3) if elapsed else None,
            },
            "mode_switches": int(stats.get("mode_switches")),
            "playlists_parsed": g.get("playlists_parsed", 0),
            "workers_reported": len(self.latest),
            "series": self.series,
        }


def rel_error(seen: Any, truth: Any) -> float | None:
    if seen is None or not truth:
        return None
    return (float(seen) - float(truth)) / float(truth)


def _s(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _round(v: float | None, n: int) -> float | None:
    return None if v is None else round(v, n)


def run(spec: RunSpec) -> dict[str, Any]:
    agg = Aggregator(spec)
    if spec.procs == 1:
        raise_fd_limit()

        def send(snap: dict[str, Any]) -> None:
            agg.update(snap)
            if not snap["final"]:
                agg.progress()

        uvloop.run(_run_fleet(spec.fleet, send))
        return agg.report()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = []
    for i, n in enumerate(split(spec.fleet.listeners, spec.procs)):
        cfg = replace(spec.fleet, listeners=n, worker=i, seed=spec.fleet.seed * 1000 + i)
        p = ctx.Process(target=worker_main, args=(cfg, out), name=f"loadtest-{i}", daemon=True)
        p.start()
        workers.append(p)
    finals: set[int] = set()
    deadline = time.monotonic() + spec.fleet.duration_s + 60
    next_progress = time.monotonic() + 1.0
    try:
        while len(finals) < len(workers) and time.monotonic() < deadline:
            try:
                snap = out.get(timeout=0.2)
            except queue_mod.Empty:
                if all(not p.is_alive() for p in workers) and out.empty():
                    break
            else:
                agg.update(snap)
                if snap["final"]:
                    finals.add(int(snap["worker"]))
            if time.monotonic() >= next_progress and len(finals) < len(workers):
                if agg.latest:
                    agg.progress()
                next_progress += 1.0
    finally:
        for p in workers:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    report = agg.report()
    report["workers_failed"] = len(workers) - len(finals)
    return report
