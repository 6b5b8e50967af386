"""The space ticker: once a tick, for each live space whose lease this node holds,
publish the listener count and reactions (the "stats" part of the snapshot) and let
time pass for the rules (the host's grace period).

Leases make exactly one node responsible for each space's tick; if that node dies, its
lease lapses and another node's ticker takes the space over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pnyx.config import Settings
from pnyx.domain import commands as cmd
from pnyx.domain.types import SpaceId, SpaceStatus
from pnyx.errors import PnyxError
from pnyx.live.base import Lease, LiveState
from pnyx.services import metrics, views
from pnyx.services.admission import Admission
from pnyx.services.spaces import SpaceService

if TYPE_CHECKING:
    from pnyx.services.media import MediaService

log = logging.getLogger(__name__)


class SpaceTicker:
    def __init__(
        self,
        settings: Settings,
        live: LiveState,
        spaces: SpaceService,
        node_id: str,
        clock: Callable[[], float],
        *,
        media: MediaService | None = None,
        admission: Admission | None = None,
    ) -> None:
        self._s = settings
        self._admission = admission
        self._media = media
        self._live = live
        self._spaces = spaces
        self._node = node_id
        self._clock = clock
        self._leases: dict[SpaceId, Lease] = {}
        self._last_stats: dict[SpaceId, dict[str, Any]] = {}
        self._published_at: dict[SpaceId, float] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="space-ticker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for space in list(self._leases):
            with contextlib.suppress(PnyxError):
                await self._let_go(space, ended=False)
        self._leases.clear()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick_all()
            except PnyxError as exc:  # a store or live-state outage: keep ticking
                log.warning("tick failed: %s", exc.message)
            await asyncio.sleep(self._s.state_tick_s)

    async def tick_all(self) -> None:
        live = {rec.id for rec in await self._spaces.list(SpaceStatus.LIVE, limit=10_000)}
        for space in list(self._leases):
            if space not in live:
                await self._let_go(space, ended=True)
        for space in live:
            if await self._hold(space):
                await self.tick(space)
                if self._media is not None:
                    await self._media.ensure_running(space)
            elif self._media is not None and self._media.running(space):
                await self._media.stop(space, ended=False)  # the lease moved elsewhere

    async def _let_go(self, space: SpaceId, *, ended: bool) -> None:
        self._last_stats.pop(space, None)
        self._published_at.pop(space, None)
        if self._media is not None and self._media.running(space):
            await self._media.stop(space, ended=ended)
        await self._live.release(self._leases.pop(space))

    async def _hold(self, space: SpaceId) -> bool:
        lease = self._leases.get(space)
        if lease is not None and await self._live.renew(lease, self._s.lease_ttl_s):
            return True
        self._last_stats.pop(space, None)
        self._published_at.pop(space, None)
        got = await self._live.acquire(f"tick:{space}", self._node, self._s.lease_ttl_s)
        if got is None:
            self._leases.pop(space, None)
            return False
        self._leases[space] = got
        return True

    def _hold_back(
        self, space: SpaceId, stats: dict[str, Any], last: dict[str, Any] | None, now: float
    ) -> bool:
        """Whether to keep new counts and reactions for later: a big audience (standard
        latency) gets them every ``big_audience_stats_s`` at most. Every new state version
        wakes every listener's long-poll — one request per listener at the edges — and a
        growing crowd changes its count every second."""
        if (
            last is None
            or stats["latency"] != views.STANDARD
            or stats["latency"] != last.get("latency")
        ):
            return False
        return now - self._published_at.get(space, 0.0) < self._s.big_audience_stats_s

    async def tick(self, space: SpaceId) -> None:
        metrics.TICKS.inc()
        now = self._clock()
        window = self._s.presence_window_s
        if self._admission is not None:  # a raised heartbeat interval must not drop anyone
            window = self._admission.presence_window_s(now, window)
        snap = await self._live.get_snapshot(space)
        count = await self._live.presence_count(space, now, window)
        published = snap.parts.get(views.STATS, {}) if snap is not None else {}
        stats = {
            "listeners": count,
            "reactions": await self._live.reactions(space, now, self._s.reactions_window_s),
            "latency": views.latency_mode(
                count, published.get("latency"), self._s.low_latency_max_listeners
            ),
        }
        if self._s.state_keepalive_s > 0:
            # A new version at least this often, so long-polls end with news (see
            # config.example.toml, state_keepalive_s).
            stats["epoch"] = int(now // self._s.state_keepalive_s)
        last = self._last_stats.get(space)
        if stats != last and not self._hold_back(space, stats, last, now):
            await self._live.put_part(space, views.STATS, stats, int(now * 1000))
            self._last_stats[space] = stats
            self._published_at[space] = now
        # Only a space whose host is away has anything for Tick to decide; the snapshot
        # says so without a store read.
        if snap is None or views.ROOM not in snap.parts:
            await self._spaces.ensure_published(space)  # e.g. a fresh memory live state
        elif snap.parts[views.ROOM].get("host_away"):
            await self._spaces.execute(space, cmd.Tick())
