"""Simulated listeners: one process's fleet (a :class:`Fleet` of :class:`SimListener`).

Each listener mirrors the web client on two keep-alive connections, as a browser would:

* media connection — join (retrying refusals after ``Retry-After`` x (1 + random x
  ``Pnyx-Retry-Jitter``), bounded attempts), heartbeats every ``heartbeat_s`` x (0.9..1)
  adopting the interval the server returns, the init segment once, then the player:
  low latency (blocking reload ``live.m3u8?_HLS_msn=M&_HLS_part=P`` on the preload hint,
  every new part, start PART-HOLD-BACK behind the edge) or standard (plain ``live.m3u8``
  every target duration, half that when unchanged, whole segments, start three target
  durations behind the edge);
* a player takes the space's latency mode (``--latency auto``) when it starts, and keeps
  it while it plays, as the web client does;
* state connection — the ``state?after=V`` long poll, sleeping ~1 s after an unchanged
  answer that came back in under a second.

Every listener builds every URL the same way, so an edge collapses them all. Playlists
and state bodies are parsed once per distinct body per process (they are the same bytes
for everyone).

Over ``https://`` a listener's two connections share one TLS session slot, as a
browser's connections to one site share its tickets: its first connections make full
handshakes, its reconnections resume. Every connection made is timed (TCP connect plus
TLS handshake) and counted, resumed or not.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pnyx.loadtest.http import Conn, RequestFailed, Response, encode, get_bytes
from pnyx.loadtest.playhead import Playhead
from pnyx.loadtest.playlist import ParseCache, Playlist, Unit
from pnyx.loadtest.stats import Stats, note_connection
from pnyx.loadtest.tls import SessionSlot, TlsOptions, client_context

REFUSED = (429, 503)
STATE_TIMEOUT_S = 45.0
MEDIA_TIMEOUT_S = 15.0
CONTROL_TIMEOUT_S = 15.0
MIN_REPEAT_S = 1.0


@dataclass(frozen=True)
class FleetConfig:
    host: str
    port: int
    space: str
    listeners: int
    duration_s: float
    ramp_s: float
    latency: str  # "auto" | "low" | "standard"
    join_attempts: int = 20
    react_every_s: float = 0.0  # 0: no reactions
    seed: int = 0
    worker: int = 0
    tls: TlsOptions | None = None  # https://


def retry_delay(resp: Response, rng: random.Random, default: float = 1.0) -> float:
    """Retry-After x (1 + random x jitter), as the web client waits."""
    try:
        after = float(resp.header(b"retry-after") or default)
    except ValueError:
        after = default
    try:
        jitter = float(resp.header(b"pnyx-retry-jitter") or 0.0)
    except ValueError:
        jitter = 0.0
    return after * (1.0 + rng.random() * max(0.0, jitter))


class Fleet:
    """All the listeners of one process, their shared caches and their stats."""

    def __init__(self, cfg: FleetConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.clock = clock
        self.rng = random.Random(cfg.seed)
        self.stats = Stats()
        self.tls = None if cfg.tls is None else client_context(cfg.tls)
        host = f"{cfg.host}:{cfg.port}".encode()
        self.host = host
        base = f"/media/{cfg.space}/".encode()
        self.playlist_path = base + b"live.m3u8"
        self.playlists = ParseCache(base)
        self.state_path = f"/v1/spaces/{cfg.space}/state".encode()
        self.join_req = encode("POST", f"/v1/spaces/{cfg.space}/join", host.decode())
        self.heartbeat_path = f"/v1/spaces/{cfg.space}/heartbeat"
        self.reaction_path = f"/v1/spaces/{cfg.space}/reactions"
        self.plain_playlist_req = get_bytes(self.playlist_path, host)
        self._states: dict[bytes, dict[str, Any]] = {}
        self.seen_version = -1
        self.seen_count: int | None = None
        self.seen_state: str | None = None
        self.server_latency: str | None = None
        self.listeners: list[SimListener] = []
        self.started_at = 0.0
        self.end_at = 0.0
        self.final: dict[str, Any] | None = None

    def state_of(self, body: bytes) -> dict[str, Any]:
        found = self._states.get(body)
        if found is None:
            found = json.loads(body)
            if len(self._states) >= 16:
                self._states.pop(next(iter(self._states)))
            self._states[body] = found
            version = int(found.get("version", -1))
            if version >= self.seen_version:
                self.seen_version = version
                self.seen_count = found.get("listeners")
                self.seen_state = found.get("state")
                self.server_latency = found.get("latency") or "low"
        return found

    def conn(self, slot: SessionSlot | None) -> Conn:
        """A connection to the target, over TLS for https:// (sharing ``slot``)."""
        cfg = self.cfg
        return Conn(
            cfg.host,
            cfg.port,
            tls=self.tls,
            server_hostname=None if cfg.tls is None else cfg.tls.server_hostname,
            slot=slot,
            on_connect=self.connected,
        )

    def connected(self, seconds: float, resumed: bool | None) -> None:
        """A connection was made: time it, and count TLS handshakes by kind."""
        note_connection(self.stats, seconds, resumed)

    async def request(
        self, conn: Conn, kind: str, data: bytes, *, keep_body: bool = True, limit_s: float
    ) -> Response | None:
        """One request, counted: latency per kind, bytes, HTTP errors, failures."""
        stats = self.stats
        t0 = self.clock()
        try:
            r = await conn.request(data, limit_s=limit_s, keep_body=keep_body)
        except RequestFailed as exc:
            stats.inc(f"fail.{exc.kind}")
            stats.inc(f"fail_by_kind.{kind}")
            return None
        stats.observe(kind, self.clock() - t0)
        stats.inc("requests")
        stats.inc("bytes", r.nbytes)
        if r.status >= 400:
            stats.inc(f"status.{r.status}")
            stats.inc(f"error_by_kind.{kind}")
        return r

    async def run(self, tick: Callable[[], None]) -> None:
        """Start listeners over the ramp, run until the end, call ``tick()`` each second."""
        cfg = self.cfg
        self.started_at = self.clock()
        self.end_at = self.started_at + cfg.duration_s
        tasks: list[asyncio.Task[None]] = []
        next_tick = self.started_at + 1.0
        started = 0
        try:
            while True:
                now = self.clock()
                if now >= self.end_at:
                    break
                elapsed = now - self.started_at
                due = (
                    cfg.listeners
                    if cfg.ramp_s <= 0
                    else min(cfg.listeners, int(cfg.listeners * elapsed / cfg.ramp_s) + 1)
                )
                while started < due:
                    lst = SimListener(self, started)
                    self.listeners.append(lst)
                    tasks.append(asyncio.create_task(lst.media_loop()))
                    tasks.append(asyncio.create_task(lst.state_loop()))
                    started += 1
                if now >= next_tick:
                    tick()
                    next_tick += 1.0
                wake = min(next_tick, self.end_at)
                if started < cfg.listeners:
                    wake = min(wake, now + 0.01)
                await asyncio.sleep(max(0.0, wake - self.clock()))
            self.final = self.gauges()  # as of the end, before the teardown
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for lst in self.listeners:
                lst.close()

    def gauges(self) -> dict[str, Any]:
        """Per-listener figures as of now (advances every playhead)."""
        now = self.clock()
        g: dict[str, Any] = {
            "started": len(self.listeners),
            "active": 0,
            "joined": 0,
            "truth": 0,
            "playing": 0,
            "stalled_now": 0,
            "listeners_stalled": 0,
            "stalls": 0,
            "stalled_s": 0.0,
            "skips": 0,
            "low": 0,
            "standard": 0,
            "never_joined": 0,
            "ended": 0,
        }
        behind = self.stats.hist("behind_live")
        for lst in self.listeners:
            if lst.ended:
                g["ended"] += 1
            else:
                g["active"] += 1
            if lst.ever_joined:
                g["joined"] += 1
            elif lst.join_given_up:
                g["never_joined"] += 1
            if lst.heartbeating(now):
                g["truth"] += 1
            g["low" if lst.low else "standard"] += 1
            ph = lst.playhead
            ph.advance(now)
            lst.note_stalls()
            if ph.playing:
                g["playing"] += 1
                if ph.stalled:
                    g["stalled_now"] += 1
                edge = lst.live_edge(now)
                if edge is not None and ph.position is not None and not lst.ended:
                    behind.add(max(0.0, edge - ph.position))
            if ph.stalls:
                g["listeners_stalled"] += 1
                g["stalls"] += ph.stalls
            g["stalled_s"] += ph.stalled_total(now)
            g["skips"] += ph.skips
        g["seen_version"] = self.seen_version
        g["seen_count"] = self.seen_count
        g["seen_state"] = self.seen_state
        g["server_latency"] = self.server_latency
        g["playlists_parsed"] = self.playlists.parsed
        return g


class SimListener:
    def __init__(self, fleet: Fleet, index: int) -> None:
        self.fleet = fleet
        self.index = index
        slot = None if fleet.tls is None else SessionSlot()
        self.media = fleet.conn(slot)
        self.state_conn = fleet.conn(slot)
        self.token: str | None = None
        self.heartbeat_req: bytes | None = None
        self.reaction_req: bytes | None = None
        self.beat_due = 0.0
        self.react_due = float("inf")
        self.heartbeat_s = 15.0
        self.last_heard: float | None = None  # last accepted join/heartbeat
        self.control_due = 0.0
        self.join_tries = 0
        self.join_given_up = False
        self.ever_joined = False
        pinned = fleet.cfg.latency
        self.auto = pinned == "auto"
        self.low = pinned != "standard"
        self.playhead = Playhead()
        self.playlist: Playlist | None = None
        self.playlist_at = 0.0
        self.playlist_changed = True
        self.init_done = False
        self.ended = False
        self.media_doing = "idle"
        self.stalls_seen = 0

    # -- figures -------------------------------------------------------------------------
    def heartbeating(self, now: float) -> bool:
        return (
            self.token is not None
            and self.last_heard is not None
            and now - self.last_heard <= 2 * self.heartbeat_s
        )

    def live_edge(self, now: float) -> float | None:
        if self.playlist is None:
            return None
        return self.playlist.edge + (now - self.playlist_at)

    async def _media_request(
        self, kind: str, data: bytes, *, keep_body: bool = True, limit_s: float
    ) -> Response | None:
        """A request on the media connection, remembering what it is busy with."""
        self.media_doing = kind
        try:
            return await self.fleet.request(
                self.media, kind, data, keep_body=keep_body, limit_s=limit_s
            )
        finally:
            self.media_doing = "idle"

    def note_stalls(self) -> None:
        """Count new stalls by what the media connection was doing when they began."""
        stalls = self.playhead.stalls
        if stalls > self.stalls_seen:
            self.fleet.stats.inc(f"stall_while.{self.media_doing}", stalls - self.stalls_seen)
            self.stalls_seen = stalls

    def close(self) -> None:
        self.media.close()
        self.state_conn.close()

    def _set_latency(self, value: Any) -> None:
        """Follow the space's latency mode (``--latency auto``) as the web client does:
        a player takes the mode the space has when it starts and keeps it while it plays
        (moving a playing listener from parts to whole segments would mean a rebuffer to
        fall a segment further behind)."""
        if self.auto and not self.init_done:
            low = value != "standard"
            if low != self.low:
                self.fleet.stats.inc("mode_switches")
                self.low = low

    # -- control: join and heartbeats ----------------------------------------------------
    async def control(self) -> None:
        """Join, heartbeats and (with ``react_every_s``) reactions, on the media connection."""
        fleet = self.fleet
        every = fleet.cfg.react_every_s
        now = fleet.clock()
        if self.reaction_req is not None and self.react_due <= now < self.beat_due:
            r = await self._media_request("reaction", self.reaction_req, limit_s=CONTROL_TIMEOUT_S)
            sent = r is not None and r.status < 300
            fleet.stats.inc("reactions.sent" if sent else "reactions.refused")
            self.react_due = fleet.clock() + every * fleet.rng.uniform(0.5, 1.5)
        else:
            await self._join_or_beat()
            self.beat_due = self.control_due
            if self.token is None:
                self.reaction_req = None
            elif every > 0 and self.reaction_req is None:
                self.reaction_req = encode(
                    "POST",
                    fleet.reaction_path,
                    fleet.host.decode(),
                    headers={"Authorization": f"Bearer {self.token}"},
                    body='{"emoji": "👏"}'.encode(),
                )
                self.react_due = now + every * fleet.rng.uniform(0.0, 1.0)
        self.control_due = min(self.beat_due, self.react_due)

    async def _join_or_beat(self) -> None:
        fleet = self.fleet
        stats = fleet.stats
        now = fleet.clock()
        if self.token is None:
            self.join_tries += 1
            stats.inc("join.attempts")
            r = await self._media_request("join", fleet.join_req, limit_s=CONTROL_TIMEOUT_S)
            now = fleet.clock()
            if r is not None and r.status == 200:
                body = r.json()
                self.token = str(body["token"])
                self.heartbeat_req = encode(
                    "POST",
                    fleet.heartbeat_path,
                    fleet.host.decode(),
                    headers={"Authorization": f"Bearer {self.token}"},
                )
                self.heartbeat_s = float(body.get("heartbeat_s") or self.heartbeat_s)
                self.last_heard = now
                self._set_latency(body.get("latency", "low"))
                if not self.ever_joined:
                    stats.inc("join.accepted")
                else:
                    stats.inc("join.rejoined")
                self.ever_joined = True
                self.join_tries = 0
                self.control_due = now + self.heartbeat_s * fleet.rng.uniform(0.9, 1.0)
                return
            if r is not None and r.status in REFUSED:
                stats.inc("join.refused")
                stats.inc(f"join.refused_{r.status}")
                delay = retry_delay(r, fleet.rng)
            elif r is not None and 400 <= r.status < 500:
                stats.inc("join.rejected")
                self.join_given_up = True
                self.control_due = float("inf")
                return
            else:
                stats.inc("join.failed")
                delay = min(10.0, 0.5 * 2 ** min(self.join_tries, 5)) * fleet.rng.uniform(1, 1.5)
            if self.join_tries >= fleet.cfg.join_attempts:
                stats.inc("join.given_up")
                self.join_given_up = True
                self.control_due = float("inf")
                return
            self.control_due = now + delay
            return
        assert self.heartbeat_req is not None
        r = await self._media_request("heartbeat", self.heartbeat_req, limit_s=CONTROL_TIMEOUT_S)
        now = fleet.clock()
        if r is not None and r.status == 200:
            self.heartbeat_s = float(r.json().get("heartbeat_s") or self.heartbeat_s)
            self.last_heard = now
            self.control_due = now + self.heartbeat_s * fleet.rng.uniform(0.9, 1.0)
        elif r is not None and r.status == 401:
            stats.inc("heartbeat.expired")
            self.token = None  # join again
            self.control_due = now
        elif r is not None and r.status in REFUSED:
            stats.inc("heartbeat.refused")
            self.control_due = now + retry_delay(r, fleet.rng)
        elif r is not None and 400 <= r.status < 500:
            stats.inc("heartbeat.rejected")
            self.token = None
            self.join_given_up = True
            self.control_due = float("inf")
        else:
            stats.inc("heartbeat.failed")
            self.control_due = now + 1.0

    # -- the player ------------------------------------------------------------------------
    async def _reload(self, blocking: tuple[int, int] | None) -> bool:
        fleet = self.fleet
        if blocking is None:
            data = fleet.plain_playlist_req
        else:
            path = b"%s?_HLS_msn=%d&_HLS_part=%d" % (fleet.playlist_path, *blocking)
            data = get_bytes(path, fleet.host)
        started = fleet.clock()
        r = await self._media_request("playlist", data, limit_s=MEDIA_TIMEOUT_S)
        if r is None or r.status != 200:
            return False
        try:
            pl = fleet.playlists.get(r.body)
        except ValueError:
            fleet.stats.inc("playlist.unreadable")
            return False
        self.playlist_changed = self.playlist is None or pl is not self.playlist
        self.playlist = pl
        self.playlist_at = started if blocking is None else fleet.clock()
        return True

    async def _fetch(self, unit: Unit) -> bool:
        fleet = self.fleet
        kind = "part" if unit.is_part else "segment"
        r = await self._media_request(
            kind,
            get_bytes(unit.path, fleet.host),
            keep_body=False,
            limit_s=MEDIA_TIMEOUT_S,
        )
        if r is None or r.status != 200:
            return False
        fleet.stats.inc(f"media_bytes.{kind}", r.nbytes)
        self.playhead.add(unit.start, unit.end, fleet.clock())
        return True

    async def _sleep_until(self, t: float) -> None:
        fleet = self.fleet
        wake = min(t, self.control_due, fleet.end_at)
        delay = wake - fleet.clock()
        if delay > 0:
            await asyncio.sleep(delay)

    async def media_loop(self) -> None:
        fleet = self.fleet
        failures = 0
        while not self.ended:
            now = fleet.clock()
            if now >= fleet.end_at:
                return
            if now >= self.control_due:
                await self.control()
                continue
            pl = self.playlist
            ok = True
            if pl is None:
                ok = await self._reload(None)
            elif not self.init_done and pl.init_path is not None:
                r = await self._media_request(
                    "init",
                    get_bytes(pl.init_path, fleet.host),
                    keep_body=False,
                    limit_s=MEDIA_TIMEOUT_S,
                )
                ok = r is not None and r.status == 200
                self.init_done = ok
            elif self.playhead.position is None and not pl.can_start(self.low):
                # A young stream: less than the hold-back of media behind the live edge so
                # far. A player must not start closer to the edge than that (RFC 8216bis,
                # HOLD-BACK / PART-HOLD-BACK): it waits for the playlist to grow.
                wait = (pl.part_target if self.low else None) or pl.target_duration or 2.0
                await self._sleep_until(self.playlist_at + wait)
                if fleet.clock() >= self.playlist_at + wait:
                    ok = await self._reload(None)
            else:
                ph = self.playhead
                if ph.position is None:
                    ph.start_at(pl.start_position(self.low))
                ph.advance(now)
                self.note_stalls()
                frontier = ph.buffered_end()
                unit = pl.next_after(frontier, self.low) if frontier is not None else None
                if unit is not None:
                    ok = await self._fetch(unit)
                elif pl.ended:
                    self.ended = True
                    return
                elif self.low and pl.hint is not None:
                    ok = await self._reload(pl.hint)
                else:
                    target = pl.target_duration or 2.0
                    if self.low:
                        target = pl.part_target or target
                    wait = target if self.playlist_changed else target / 2
                    await self._sleep_until(self.playlist_at + wait)
                    if fleet.clock() >= self.playlist_at + wait:
                        ok = await self._reload(None)
            if ok:
                failures = 0
            else:
                failures += 1
                backoff = min(4.0, 0.25 * 2 ** min(failures, 4))
                await self._sleep_until(fleet.clock() + backoff * fleet.rng.uniform(1.0, 1.5))

    async def state_loop(self) -> None:
        fleet = self.fleet
        version: int | None = None
        failures = 0
        while not self.ended:
            if fleet.clock() >= fleet.end_at:
                return
            path = (
                fleet.state_path
                if version is None
                else b"%s?after=%d"
                % (
                    fleet.state_path,
                    version,
                )
            )
            t0 = fleet.clock()
            r = await fleet.request(
                self.state_conn, "state", get_bytes(path, fleet.host), limit_s=STATE_TIMEOUT_S
            )
            if r is None or r.status != 200:
                if r is not None and r.status == 404:
                    self.ended = True
                    return
                failures += 1
                delay = min(10.0, 0.5 * 2 ** min(failures, 5)) * fleet.rng.uniform(1.0, 1.5)
                await asyncio.sleep(delay)
                continue
            failures = 0
            try:
                s = fleet.state_of(r.body)
            except ValueError:
                fleet.stats.inc("state.unreadable")
                await asyncio.sleep(1.0)
                continue
            new_version = int(s.get("version", 0))
            changed = new_version != version
            version = new_version
            self._set_latency(s.get("latency", "low"))
            if s.get("state") in ("ended", "cancelled"):
                self.ended = True
                return
            if not changed and fleet.clock() - t0 < MIN_REPEAT_S:
                await asyncio.sleep(MIN_REPEAT_S + fleet.rng.random() * 0.5)
