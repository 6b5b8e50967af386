"""The space ticker: which live spaces this node runs, and what it does for them.

Leases (``keys.lease_name``) make exactly one node responsible for each live space: it
publishes the listener count and reactions (the "stats" part of the snapshot), lets
time pass for the rules (the host's grace period) and runs the space's media. Four
tasks, all owned here (started by :meth:`SpaceTicker.start`, cancelled and awaited by
:meth:`SpaceTicker.stop`), each on its own cadence:

* **renewals**, every ``lease_renew_s``, with the live state alone: renew the leases
  this node holds, and try to acquire every space known to be live that nobody holds
  (so a dead holder's space moves within about ``lease_ttl_s + lease_renew_s``). A
  failed renewal keeps the lease and the media: a blip of the live state never moves a
  healthy stage, and if the live state comes back empty (a restarted Redis) the lease is
  taken again at once. After a failed pass the next two take no space they did not
  hold: the holders, renewing at their first, get there first.
* **the listing**, every ``state_tick_s``, from the durable store: which spaces are live
  now (a new one wakes the renewals). While the store is away the last list stands:
  held spaces are kept.
* **ticks**, every ``state_tick_s`` and at once when a renewal took or lost a space: for each
  held space publish stats, judge the host's presence and ``Tick`` the rules when it
  changed or the host is away, and start its media; stop the media of spaces another
  node took.
* **the expiry sweep**, every ``expiry_sweep_s`` (sooner while there is a backlog): cancel
  scheduled spaces not started ``scheduled_expiry_s`` after their slot, at most
  ``expiry_sweep_batch`` per pass (``SpaceService.expire_scheduled``).

The host is present when this node has a publish session of theirs (publish sessions
live on the stage node, which is this one) or a stage socket of theirs is open on any node
(the blob ``stage.socket_presence_key``, kept by that node). Absence is reported only
once this node has held the space for ``stage_presence_ttl_s``, so a space just created
or just taken over does not flap away and back while its host (re)connects; the rules
then end the space ``host_grace_s`` after the host went away (a host who never came is
away from that moment on).

A space is let go (media stopped with ENDLIST, lease released) when the listing no longer
has it or its published room part says it ended (known without the store). Only the
ticks start and stop media, so a stop never races a start. Letting go of an ended space
also sets its live state to expire (``LiveState.expire_space``) after
``ended_live_retention_s``: its snapshots, counters, audience, media blobs and the fencing
counter of its stage lease (an ended space is never taken again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pnyx.config import Settings
from pnyx.domain import commands as cmd
from pnyx.domain.types import Handle, SpaceId, SpaceStatus
from pnyx.errors import PnyxError
from pnyx.live.base import Lease, LiveState
from pnyx.live.keys import lease_name
from pnyx.services import metrics, views
from pnyx.services.admission import Admission
from pnyx.services.spaces import SpaceService, lasting_blobs, media_blob_ttl_s
from pnyx.services.stage import socket_presence_key

if TYPE_CHECKING:
    from pnyx.services.analytics import Analytics
    from pnyx.services.media import MediaService

log = logging.getLogger(__name__)

_OVER = (SpaceStatus.ENDED, SpaceStatus.CANCELLED)
_HOLDERS_FIRST = 2  # clean renewal passes before a node takes spaces it did not hold
STOP_GRACE_S = 2.0  # stop(): how long a loop may take to finish the step it is in


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
        analytics: Analytics | None = None,
    ) -> None:
        self._s = settings
        self._analytics = analytics
        self._admission = admission
        self._media = media
        self._live = live
        self._spaces = spaces
        self._node = node_id
        self._clock = clock
        self._leases: dict[SpaceId, Lease] = {}  # held by this node
        self._known_live: set[SpaceId] = set()  # as the last listing that worked said
        self._ended: set[SpaceId] = set()  # let go as ended: never taken again
        self._ending: set[SpaceId] = set()  # held, and the listing says ended: let go
        self._expiring: set[SpaceId] = set()  # let go as ended, expire_space not done yet
        self._elsewhere: set[SpaceId] = set()  # live, held by another node (last pass)
        self._clean = 0  # renewal passes in a row that reached the live state throughout
        self._last_stats: dict[SpaceId, dict[str, Any]] = {}
        self._published_at: dict[SpaceId, float] = {}
        self._held_since: dict[SpaceId, float] = {}  # first tick of a held space
        self._sweep_now = asyncio.Event()  # the last sweep had a full batch
        self._tick_now = asyncio.Event()  # a renewal took or lost a space
        self._renew_now = asyncio.Event()  # the listing found a space newly live
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        s = self._s
        loops = (
            ("lease renewal", self.renew_all, s.lease_renew_s, self._renew_now),
            ("live listing", self.list_live, s.state_tick_s, None),
            ("tick", self.tick_all, s.state_tick_s, self._tick_now),
            ("expiry sweep", self.sweep_expired, s.expiry_sweep_s, self._sweep_now),
        )
        self._tasks = [
            asyncio.create_task(self._every(*loop), name=f"space-ticker {loop[0]}")
            for loop in loops
        ]

    async def stop(self, *, release: bool = True) -> None:
        """Cancel and await the tasks; with ``release`` (a clean shutdown) stop the media
        and give the leases up, so another node takes the spaces at its next renewal.
        Without, the leases lapse by themselves, as when the node dies."""
        # Let each loop finish the step it is in (a store or live-state call cancelled
        # half-way leaves a connection to clean up), then cancel what is still waiting.
        self._stopping.set()
        for wake in (self._sweep_now, self._tick_now, self._renew_now):
            wake.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_GRACE_S)
        for task in self._tasks:
            task.cancel()
        for result in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(result, Exception):  # a bug: say so (CancelledError is not one)
                log.error("a space ticker task failed", exc_info=result)
        self._tasks = []
        if release:
            for space in list(self._leases):
                with contextlib.suppress(PnyxError):
                    await self._let_go(space, ended=False)
        self._leases.clear()

    def holds(self, space: SpaceId) -> bool:
        """Whether this node holds the space's lease (as of its last renewal)."""
        return space in self._leases

    async def _every(
        self,
        what: str,
        step: Callable[[], Awaitable[None]],
        interval: float,
        wake: asyncio.Event | None,
    ) -> None:
        """Run ``step`` every ``interval`` seconds, or sooner when ``wake`` is set, until
        :meth:`stop`."""
        stopping = self._stopping
        while not stopping.is_set():
            if wake is not None:
                wake.clear()
            try:
                await step()
            except PnyxError as exc:  # a store or live-state outage: carry on
                log.warning("%s failed: %s", what, exc.message)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await (stopping if wake is None else wake).wait()

    # -- renewals: the live state only ----------------------------------------------------
    async def renew_all(self) -> None:
        """Renew the held leases; take the live spaces nobody holds."""
        ttl = self._s.lease_ttl_s
        held = list(self._leases.items())
        for space, lease in held:
            try:
                renewed = await self._live.renew(lease, ttl)
                # Lost: expired (a long blip), or the live state restarted empty. Take
                # it again if nobody else has.
                got = lease if renewed else await self._live.acquire(lease.name, self._node, ttl)
            except PnyxError as exc:  # keep them all, and their media: a blip moves none
                log.warning("space %s: lease not renewed (kept): %s", space, exc.message)
                self._clean = 0
                return  # the live state is away: the next pass tries again
            if self._leases.get(space) is not lease:
                continue  # let go meanwhile
            if got is None:
                log.warning("space %s: lease lost to another node", space)
                del self._leases[space]
                self._forget(space)
                self._elsewhere.add(space)
                self._tick_now.set()  # stop its media
            elif got is not lease:
                log.info("space %s: lease taken again (token %d)", space, got.token)
                self._leases[space] = got
        if not held and not await self._answers():  # a pass counts when it reached it
            self._clean = 0
            return
        # Back after an outage, the holders renew (or retake) their leases at their
        # first pass; others wait two passes before taking any, so a blip moves nothing.
        if self._clean >= _HOLDERS_FIRST and not await self._take_free():
            self._clean = 0
            return
        self._clean = min(self._clean + 1, _HOLDERS_FIRST)

    async def _answers(self) -> bool:
        try:
            return await self._live.ping()
        except PnyxError:
            return False

    async def _take_free(self) -> bool:
        """Try to acquire every known live space nobody holds; False when the live state
        failed."""
        elsewhere: set[SpaceId] = set()
        for space in list(self._known_live - self._leases.keys() - self._ended):
            try:
                got = await self._live.acquire(lease_name(space), self._node, self._s.lease_ttl_s)
                if got is None:
                    elsewhere.add(space)
                    continue
                if views.room_status(await self._live.get_snapshot(space)) in _OVER:
                    self._ended.add(space)  # ended elsewhere, after the last listing
                if space not in self._known_live or space in self._ended:
                    await self._live.release(got)
                    continue
            except PnyxError as exc:
                log.warning("space %s: lease not acquired: %s", space, exc.message)
                return False
            log.info("space %s: lease acquired (token %d)", space, got.token)
            self._leases[space] = got
            self._tick_now.set()  # start its media now
        self._elsewhere = elsewhere
        return True

    # -- the listing: the durable store ---------------------------------------------------
    async def list_live(self) -> None:
        """Learn which spaces are live; held ones that no longer are are let go by the
        next tick. When the store fails (PnyxError) nothing changes."""
        live = {rec.id for rec in await self._spaces.list(SpaceStatus.LIVE, limit=10_000)}
        self._ended &= live  # the store agrees they ended: no longer needed
        if live - self._ended - self._known_live:
            self._renew_now.set()  # take new spaces (or keep what a publish took) now
        self._known_live = live - self._ended
        ending = self._leases.keys() - live
        if ending:  # the ticks let them go: only they start and stop media
            self._ending |= ending
            self._tick_now.set()

    async def _let_go(self, space: SpaceId, *, ended: bool) -> None:
        lease = self._leases.pop(space, None)
        self._forget(space)
        if ended:
            self._ended.add(space)
            self._known_live.discard(space)
            self._expiring.add(space)
        try:
            if self._media is not None and self._media.running(space):
                await self._media.stop(space, ended=ended)  # the playlist's ENDLIST
            if lease is not None:
                await self._live.release(lease)
        finally:
            if ended:  # after the last media writes, so they expire with the rest
                await self._expire(space)
            if self._analytics is not None and lease is not None:
                # Ended: the figures become durable (a store outage leaves them in the
                # live state, a week). After expire_space, which would cut that short.
                if ended:
                    try:
                        await self._analytics.finish(space)
                    except PnyxError as exc:
                        log.warning("space %s: analytics not kept: %s", space, exc.message)
                else:
                    self._analytics.forget(space)

    async def _expire(self, space: SpaceId) -> None:
        """Let what the ended space left in the live state go after the retention (its
        last room and playlist stay readable meanwhile). Tried again by the next ticks
        while the live state fails."""
        retention_s = self._s.ended_live_retention_s
        try:
            await self._live.expire_space(
                space,
                retention_s,
                leases=(lease_name(space),),
                blobs=lasting_blobs(space, retention_s, media_blob_ttl_s(self._s)),
            )
        except PnyxError as exc:
            log.warning("space %s: live state not set to expire: %s", space, exc.message)
            return
        self._expiring.discard(space)
        log.info("space %s: live state expires in %g s", space, self._s.ended_live_retention_s)

    def _forget(self, space: SpaceId) -> None:
        self._last_stats.pop(space, None)
        self._published_at.pop(space, None)
        self._held_since.pop(space, None)

    # -- the expiry sweep: the durable store ------------------------------------------------
    async def sweep_expired(self) -> None:
        """Cancel one batch of scheduled spaces whose slot is long gone; a full batch
        wakes the next pass at once."""
        _, more = await self._spaces.expire_scheduled(
            self._s.scheduled_expiry_s, self._s.expiry_sweep_batch
        )
        if more:
            self._sweep_now.set()

    # -- ticks ---------------------------------------------------------------------------
    async def tick_all(self) -> None:
        """Let go of the spaces that ended; tick every held space and keep its media
        running; stop the media of spaces another node holds. A failure (e.g. the store
        away) skips that space only. The one task that starts and stops media."""
        while self._ending:
            space = self._ending.pop()
            try:
                await self._let_go(space, ended=True)
            except PnyxError as exc:
                log.warning("space %s: letting go failed: %s", space, exc.message)
        for space in list(self._expiring):  # the live state failed when they were let go
            await self._expire(space)
        for space in list(self._leases):
            try:
                await self.tick(space)
                if self._media is not None and space in self._leases:
                    await self._media.ensure_running(space)
            except PnyxError as exc:
                log.warning("space %s: tick failed: %s", space, exc.message)
        if self._media is None:
            return
        for space in list(self._elsewhere):
            if space in self._leases or not self._media.running(space):
                continue
            try:  # (a publish may have just taken it here: MediaService.admit)
                holder = await self._live.holder(lease_name(space))
                if holder is not None and holder.holder != self._node:
                    await self._media.stop(space, ended=False)  # the lease moved elsewhere
            except PnyxError as exc:
                log.warning("space %s: stopping media failed: %s", space, exc.message)

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
        if views.room_status(snap) in _OVER:  # ended, whether or not the store is there
            await self._let_go(space, ended=True)
            return
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
        if self._analytics is not None:
            try:
                await self._analytics.observe(space, now, count, snap)
            except PnyxError as exc:  # figures are not worth a tick
                log.warning("space %s: analytics step failed: %s", space, exc.message)
        # Tick only when presence changed or the host is away (the grace clock runs):
        # the snapshot says which without a store read.
        if snap is None or views.ROOM not in snap.parts:
            await self._spaces.ensure_published(space)  # e.g. a fresh memory live state
            return
        room = snap.parts[views.ROOM]
        present = await self._host_present(space, Handle(room["host"]), now)
        if room.get("host_away") or present is False:
            await self._spaces.execute(space, cmd.Tick(host_present=present))

    async def _host_present(self, space: SpaceId, host: Handle, now: float) -> bool | None:
        """Whether the host is there: a publish session here, or a stage socket anywhere.
        None (not judged) while this node has held the space for less than
        ``stage_presence_ttl_s``."""
        held_since = self._held_since.setdefault(space, now)  # from its first tick here
        if self._media is not None and host in self._media.sessions(space):
            return True
        if await self._live.get_blob(socket_presence_key(space, host)):
            return True
        return False if now - held_since >= self._s.stage_presence_ttl_s else None
