"""A join storm: open-loop join arrivals ramping to J per second while a scripted stage
keeps acting on the same space.

Arrivals do not wait for earlier ones: each is one ``POST …/join`` sent on an idle
keep-alive connection from a pool that grows up to ``max_conns``; an arrival that finds
the pool exhausted is counted as *not sent* (the run is then not a valid measurement of
the offered rate). The stage script, on its own connection, performs one host action
every ``stage_every_s`` — pin a link (alternating values), mute self, unmute self, set
who may ask to speak (alternating) — and times each. At the end it completes the cycle
(uncounted), leaving the host unmuted and hands open to everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from pnyx.loadtest.http import Conn, RequestFailed, encode
from pnyx.loadtest.stats import Stats, connection_figures, note_connection
from pnyx.loadtest.tls import SessionSlot, TlsOptions, client_context

JOIN_TIMEOUT_S = 20.0
STAGE_TIMEOUT_S = 10.0
DRAIN_S = 20.0


@dataclass(frozen=True)
class StormConfig:
    host: str
    port: int
    space: str
    host_handle: str | None
    host_token: str | None
    rate: float
    ramp_s: float
    duration_s: float
    max_conns: int
    stage_every_s: float = 0.2
    tls: TlsOptions | None = None  # https://


def offered_by(t: float, rate: float, ramp_s: float) -> float:
    """Arrivals due by ``t`` seconds: the rate climbs linearly to ``rate`` over
    ``ramp_s``, then holds (the integral of the rate)."""
    if t <= 0:
        return 0.0
    if ramp_s <= 0:
        return rate * t
    if t <= ramp_s:
        return rate * t * t / (2 * ramp_s)
    return rate * ramp_s / 2 + rate * (t - ramp_s)


def stage_actions(space: str, handle: str, host: str, token: str) -> list[tuple[str, bytes]]:
    """The stage script's cycle: (name, encoded request)."""
    auth = {"Authorization": f"Bearer {token}"}
    base = f"/v1/spaces/{space}"

    def req(method: str, path: str, body: Any = None) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        return encode(method, base + path, host, headers=auth, body=data)

    return [
        ("pin", req("PUT", "/pin", {"url": "https://example.org/loadtest/a"})),
        ("mute", req("POST", f"/members/{handle}/mute")),
        ("speak_policy", req("PUT", "/speak-policy", {"who_can_speak": "nobody"})),
        ("unmute", req("POST", f"/members/{handle}/unmute")),
        ("pin", req("PUT", "/pin", {"url": "https://example.org/loadtest/b"})),
        ("speak_policy", req("PUT", "/speak-policy", {"who_can_speak": "everyone"})),
    ]


class Storm:
    def __init__(self, cfg: StormConfig) -> None:
        self.cfg = cfg
        self.stats = Stats()
        self.tls = None if cfg.tls is None else client_context(cfg.tls)
        self.host = f"{cfg.host}:{cfg.port}"
        self.join_req = encode("POST", f"/v1/spaces/{cfg.space}/join", self.host)
        self.idle: deque[Conn] = deque()
        self.conns = 0
        self.peak_busy = 0
        self.busy = 0
        self.per_second: dict[int, dict[str, int]] = {}
        self.stage_errors: dict[str, int] = {}
        self.t0 = 0.0
        self.refusal_no_retry_after = 0
        self._inflight: set[asyncio.Task[None]] = set()

    def _second(self, t: float) -> dict[str, int]:
        sec = int(t - self.t0)
        row = self.per_second.get(sec)
        if row is None:
            row = self.per_second[sec] = {"offered": 0, "accepted": 0, "refused": 0, "errors": 0}
        return row

    def _conn(self) -> Conn:
        """A new client connection (over TLS for https://, with its own session slot)."""
        cfg = self.cfg
        return Conn(
            cfg.host,
            cfg.port,
            tls=self.tls,
            server_hostname=None if cfg.tls is None else cfg.tls.server_hostname,
            slot=None if self.tls is None else SessionSlot(),
            on_connect=self._connected,
        )

    def _connected(self, seconds: float, resumed: bool | None) -> None:
        note_connection(self.stats, seconds, resumed)

    def _take(self) -> Conn | None:
        if self.idle:
            return self.idle.pop()
        if self.conns < self.cfg.max_conns:
            self.conns += 1
            return self._conn()
        return None

    async def _join(self, conn: Conn) -> None:
        stats = self.stats
        t0 = time.monotonic()
        self.busy += 1
        self.peak_busy = max(self.peak_busy, self.busy)
        try:
            r = await conn.request(self.join_req, limit_s=JOIN_TIMEOUT_S)
        except RequestFailed as exc:
            stats.inc(f"fail.{exc.kind}")
            stats.inc("errors")
            self._second(time.monotonic())["errors"] += 1
            return
        finally:
            self.busy -= 1
            self.idle.append(conn)
        now = time.monotonic()
        dt = now - t0
        stats.inc("requests")
        row = self._second(now)
        if r.status == 200:
            stats.inc("accepted")
            stats.observe("join", dt)
            row["accepted"] += 1
        elif r.status in (429, 503):
            stats.inc("refused")
            stats.inc(f"refused_{r.status}")
            stats.observe("refusal", dt)
            row["refused"] += 1
            if r.header(b"retry-after") is None:
                self.refusal_no_retry_after += 1
        else:
            stats.inc(f"status.{r.status}")
            stats.inc("errors")
            row["errors"] += 1

    async def arrivals(self) -> None:
        cfg = self.cfg
        sent = 0
        end = self.t0 + cfg.duration_s
        while True:
            now = time.monotonic()
            if now >= end:
                break
            due = int(offered_by(now - self.t0, cfg.rate, cfg.ramp_s))
            while sent < due:
                sent += 1
                self.stats.inc("offered")
                self._second(now)["offered"] += 1
                conn = self._take()
                if conn is None:
                    self.stats.inc("not_sent")
                    continue
                task = asyncio.create_task(self._join(conn))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            await asyncio.sleep(0.002)

    async def stage(self, stop: asyncio.Event) -> None:
        cfg = self.cfg
        if cfg.host_token is None or cfg.host_handle is None:
            return
        script = stage_actions(cfg.space, cfg.host_handle, self.host, cfg.host_token)
        conn = self._conn()
        i = 0
        next_at = time.monotonic()
        try:
            while not stop.is_set():
                name, data = script[i % len(script)]
                i += 1
                t0 = time.monotonic()
                self.stats.inc("stage.actions")
                try:
                    r = await conn.request(data, limit_s=STAGE_TIMEOUT_S)
                except RequestFailed as exc:
                    self._stage_failed(f"{name}:{exc.kind}")
                else:
                    self.stats.observe("stage", time.monotonic() - t0)
                    if r.status >= 300:
                        detail = r.body[:200].decode("utf-8", "replace")
                        self._stage_failed(f"{name}:{r.status}:{detail}")
                next_at += cfg.stage_every_s
                delay = next_at - time.monotonic()
                if delay < 0:
                    next_at = time.monotonic()
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            # Finish the cycle (uncounted) so the host ends unmuted and open to hands.
            while i % len(script):
                with contextlib.suppress(RequestFailed):
                    await conn.request(script[i % len(script)][1], limit_s=STAGE_TIMEOUT_S)
                i += 1
        finally:
            conn.close()

    def _stage_failed(self, what: str) -> None:
        self.stats.inc("stage.failures")
        self.stage_errors[what] = self.stage_errors.get(what, 0) + 1

    async def run(self, progress: Any) -> None:
        self.t0 = time.monotonic()
        stop = asyncio.Event()
        stage = asyncio.create_task(self.stage(stop))
        ticker = asyncio.create_task(self._tick(progress))
        try:
            await self.arrivals()
            if self._inflight:
                await asyncio.wait(set(self._inflight), timeout=DRAIN_S)
            stop.set()
            await stage
        finally:
            ticker.cancel()
            stage.cancel()
            left = list(self._inflight)
            for t in left:
                t.cancel()
            await asyncio.gather(stage, ticker, *left, return_exceptions=True)
            self.stats.inc("unanswered", len(left))
            for c in self.idle:
                c.close()

    async def _tick(self, progress: Any) -> None:
        while True:
            await asyncio.sleep(1.0)
            progress(self)

    def report(self, elapsed: float, cpu_s: float) -> dict[str, Any]:
        s = self.stats
        refusal = s.hist("refusal")
        series = [{"t": sec, **self.per_second[sec]} for sec in sorted(self.per_second) if sec >= 0]
        stage: dict[str, Any] = {
            **s.hist("stage").summary_ms(),
            "actions": int(s.get("stage.actions")),
            "failures": int(s.get("stage.failures")),
            "errors": dict(self.stage_errors),
        }
        return {
            "tool": "joinstorm",
            "schema": 1,
            "config": {
                "space": self.cfg.space,
                "rate": self.cfg.rate,
                "ramp_s": self.cfg.ramp_s,
                "duration_s": self.cfg.duration_s,
                "max_conns": self.cfg.max_conns,
                "stage_every_s": self.cfg.stage_every_s,
                "stage": self.cfg.host_token is not None,
            },
            "elapsed_s": round(elapsed, 2),
            "offered": int(s.get("offered")),
            "not_sent": int(s.get("not_sent")),
            "sent": int(s.get("offered") - s.get("not_sent")),
            "accepted": int(s.get("accepted")),
            "refused": int(s.get("refused")),
            "refused_by_status": {
                "429": int(s.get("refused_429")),
                "503": int(s.get("refused_503")),
            },
            "refusals_without_retry_after": self.refusal_no_retry_after,
            "all_refusals_had_retry_after": self.refusal_no_retry_after == 0,
            "refusal_ms": refusal.summary_ms(),
            "errors": int(s.get("errors")),
            "timeouts": int(s.get("fail.timeout")),
            "unanswered": int(s.get("unanswered")),
            "http_errors": {k: int(v) for k, v in s.with_prefix("status.").items()}
            | {k: int(v) for k, v in s.with_prefix("fail.").items()},
            "join_ms": s.hist("join").summary_ms(),
            "accepted_per_s": series,
            "peak_accepted_per_s": max((r["accepted"] for r in series), default=0),
            "connections": {
                "opened": self.conns,
                "peak_busy": self.peak_busy,
                **connection_figures(s),
            },
            "stage": stage,
            "cpu": {
                "client_cpu_s": round(cpu_s, 3),
                "cpu_per_request_us": round(cpu_s / s.get("requests") * 1e6, 1)
                if s.get("requests")
                else None,
            },
        }
