"""The stage node's media: WHIP-style publish sessions, the 20 ms mixer per space, the
encoder and packager off the event loop, mix-minus back to each speaker.

The node has one :class:`~pnyx.media.clock.MixClock`, the thread that ticks every running
space's mixer every 20 ms (off the event loop; joined by :meth:`MediaService.close`).
One :class:`_SpaceMedia` per space whose stage lease (``keys.lease_name``) this node
holds: a :class:`~pnyx.media.runner.MixRunner`, the speakers' :class:`IngestSession` by
handle (one each), their pending replacements, and a watcher that keeps the runner's *allowed*
set (on stage, not muted) current from the room part of the space's snapshot, re-read
on every stage event and every second, closing the peer connection of anyone who left
the stage. Every task is owned here and cancelled by :meth:`MediaService.stop` /
:meth:`MediaService.close`.

Publishing again is make-before-break: while a member's session is on the stage, a new
one for them waits as *pending* and replaces it only once it carries audio (its first
decoded frame); if it ends first (never connected, or went quiet), it is dropped and the
working one stays. A leaked token or a second tab cannot silence a speaker with an offer
that never connects. A newer pending session replaces an older pending one; when the
working session ends by itself, the pending one takes the stage at its first frame.

A node that runs stages advertises its URL in the live state (the blob
``keys.node_url_key``), so another node can relay a publish to the holder of the
space's lease (services/relay.py; :meth:`MediaService.place` says where that is).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from pnyx.config import NodeRole, Settings
from pnyx.domain.types import Handle, SpaceId, SpaceStatus
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState
from pnyx.live.keys import lease_name, node_url_key, stage_channel
from pnyx.media import metrics
from pnyx.media.clock import MixClock
from pnyx.media.frames import FrameQueue
from pnyx.media.hls import Packager, PackagerConfig
from pnyx.media.ice import check_internals
from pnyx.media.ingest import IngestSession
from pnyx.media.recording import Recordings
from pnyx.media.runner import MixRunner, TickStats
from pnyx.services import views
from pnyx.services.captions import CaptionService
from pnyx.services.frontrow import FrontRowPublisher
from pnyx.services.ice import ice_policy
from pnyx.services.media_sink import SpaceSink, previous_state
from pnyx.services.origin import Origin
from pnyx.services.spaces import SpaceService

log = logging.getLogger(__name__)

REFRESH_S = 1.0  # the allowed set is re-read at least this often


@dataclass(frozen=True, slots=True)
class Published:
    session: str  # resource id for DELETE /v1/spaces/{id}/publish/{session}
    answer_sdp: str


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a space's media runs (:meth:`MediaService.place`): ``here``; else at
    ``holder``, the node holding the stage lease, reached at ``url`` (None until it has
    advertised one); neither: nowhere yet."""

    here: bool = False
    holder: str | None = None
    url: str | None = None


@dataclass(eq=False)
class _SpaceMedia:
    runner: MixRunner
    sink: SpaceSink
    sessions: dict[Handle, IngestSession] = field(default_factory=dict)  # the current ones
    pending: dict[Handle, IngestSession] = field(default_factory=dict)  # not carrying audio yet
    every: set[IngestSession] = field(default_factory=set)  # until closed: stop awaits them
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class MediaService:
    def __init__(
        self,
        settings: Settings,
        live: LiveState,
        spaces: SpaceService,
        origin: Origin,
        recordings: Recordings,
        node_id: str,
        clock: Callable[[], float],
        *,
        captions: CaptionService | None = None,
    ) -> None:
        self._s = settings
        self._captions = captions
        self._live = live
        self._spaces = spaces
        self._origin = origin
        self._recordings = recordings
        self._node = node_id
        self._clock = clock
        self._ice = ice_policy(settings)
        if self._ice.custom_gathering:
            check_internals()  # fail at start-up, not at a speaker's publish
        self._running: dict[SpaceId, _SpaceMedia] = {}
        self._lock = asyncio.Lock()  # starts and stops, one at a time
        self._advertised_at = -1e9
        self._closing = False
        self._clock_thread = MixClock(f"mix-clock-{node_id}")
        self._frontrow: FrontRowPublisher | None = None  # made at the first space with one

    # -- lifecycle (the ticker) ---------------------------------------------------------
    async def ensure_running(self, space: SpaceId) -> None:
        """Called by the ticker every tick while this node holds the space's lease and the
        space is live: starts the space's mixer/encoder if not running (silence when
        nobody speaks, so listeners always have a stream)."""
        await self._advertise()
        if space in self._running or self._closing:
            return
        async with self._lock:
            if space in self._running or self._closing:
                return
            rec = await self._spaces.record(space)
            now = datetime.fromtimestamp(self._clock(), UTC)
            captions = self._captions
            captioned = rec.captions and captions is not None and captions.enabled
            sink = SpaceSink(
                space,
                self._live,
                self._origin,
                self._recordings,
                self._clock,
                record=rec.record,
                captions=captions.open(space) if captioned and captions is not None else None,
            )
            previous = await previous_state(self._live, space)
            config = PackagerConfig.of_part(self._s.hls_part_frames)
            if previous is None:
                packager = Packager(config, program_date_time=now, captions=captioned)
            else:  # another node (or this one, earlier) ran it: continue its sequence
                packager, orphan = Packager.resume(
                    previous, program_date_time=now, config=config, captions=captioned
                )
                if orphan is not None:
                    await sink.store_orphan(orphan, packager.state)
            runner = MixRunner(
                space,
                sink,
                packager,
                self._clock_thread,
                bit_rate=self._s.aac_bitrate,
                opus_bit_rate=self._s.mix_minus_bitrate,
                opus_complexity=self._s.mix_minus_complexity,
                playout_min_s=self._s.jitter_min_frames * 0.02,
                encoder_queue_frames=self._s.encoder_queue_frames,
                speaking_threshold_dbov=self._s.speaking_threshold_dbov,
                captions=captions if captioned else None,
                frontrow=self._frontrow_for(space),
                frontrow_batch_frames=self._s.frontrow_batch_frames,
                frontrow_bit_rate=self._s.frontrow_bitrate,
            )
            sm = _SpaceMedia(runner, sink)
            runner.start()
            sm.spawn(self._watch(space, sm), f"media-watch-{space}")
            self._running[space] = sm
            metrics.SPACES.set(len(self._running))
            log.info("space %s: media running (resumed=%s)", space, previous is not None)

    async def stop(self, space: SpaceId, *, ended: bool) -> None:
        """Stop the space's media (lease lost, or the space ended: then finish the
        stream with ENDLIST and close the recording)."""
        async with self._lock:
            sm = self._running.pop(space, None)
            if sm is None:
                return
            metrics.SPACES.set(len(self._running))
            tasks = list(sm.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            sm.sessions.clear()
            sm.pending.clear()
            await asyncio.gather(*(s.close() for s in sm.every), return_exceptions=True)
            sm.every.clear()
            self._count_sessions()
            await sm.runner.stop(ended=ended)
            if self._frontrow is not None:
                await self._frontrow.stop(space)
            if ended:
                await sm.sink.finish()
            if self._captions is not None:
                await self._captions.close(space, drain=ended)
            log.info("space %s: media stopped (ended=%s)", space, ended)

    def running(self, space: SpaceId) -> bool:
        return space in self._running

    def sessions(self, space: SpaceId) -> Mapping[Handle, str]:
        """Who publishes to ``space`` on this node: handle → session id."""
        sm = self._running.get(space)
        return {h: s.id for h, s in sm.sessions.items()} if sm is not None else {}

    def pending(self, space: SpaceId) -> Mapping[Handle, str]:
        """Sessions waiting to replace a member's working one: handle → session id."""
        sm = self._running.get(space)
        return {h: s.id for h, s in sm.pending.items()} if sm is not None else {}

    def tick_stats(self, space: SpaceId) -> TickStats | None:
        """The mix loop's recent lateness (tests, benchmarks); None when not running."""
        sm = self._running.get(space)
        return sm.runner.stats if sm is not None else None

    async def close(self) -> None:
        self._closing = True
        for space in list(self._running):
            await self.stop(space, ended=False)
        await self._clock_thread.close()
        if self._frontrow is not None:
            await self._frontrow.close()
        if self._captions is not None:
            await self._captions.aclose()

    def _frontrow_for(self, space: SpaceId) -> FrontRowPublisher | None:
        """Where the space's front row goes: the edges' publishers, when the node has
        any. Private spaces too: the edges admit their subscribers by signed link only."""
        if not self._s.frontrow_publish_urls:
            return None
        if self._frontrow is None:
            self._frontrow = FrontRowPublisher(
                self._s.frontrow_publish_urls, timeout_s=self._s.frontrow_publish_timeout_s
            )
        return self._frontrow

    @property
    def frontrow(self) -> FrontRowPublisher | None:
        """The front row's publisher (None until a space has one): tests and stats."""
        return self._frontrow

    # -- where a space's media runs -----------------------------------------------------
    async def check(self, space: SpaceId, handle: Handle) -> None:
        """May ``handle`` publish to ``space`` at all? PnyxError NOT_FOUND (no such space),
        CONFLICT (not live), FORBIDDEN (not on stage)."""
        room = await self._spaces.room(space)
        if room.status is not SpaceStatus.LIVE:
            raise PnyxError(
                ErrorKind.CONFLICT,
                f"the space is {room.status.value}: publishing needs a live space",
                code="not_live",
            )
        if not room.on_stage(handle):
            raise PnyxError(
                ErrorKind.FORBIDDEN,
                "only the host, co-hosts and speakers publish audio: ask to speak first",
                code="not_on_stage",
            )

    async def place(self, space: SpaceId, *, take: bool) -> Placement:
        """Where ``space``'s media runs, from its lease in the live state: here (with
        ``take``, a free lease is taken now and the media started, on a node that runs
        stages), at another node (the lease holder and its advertised URL, None while it
        has not advertised one), or nowhere yet."""
        if space in self._running:
            return Placement(here=True)
        lease = await self._live.holder(lease_name(space))
        if lease is not None and lease.holder != self._node:
            url = await self._live.get_blob(node_url_key(lease.holder))
            return Placement(holder=lease.holder, url=url.decode() if url is not None else None)
        if not take or self._s.role not in (NodeRole.STAGE, NodeRole.BOTH) or self._closing:
            return Placement()
        # Nobody holds the lease (or this node does): take it now rather than wait for
        # the next tick. The ticker renews a lease this node already holds.
        taken = await self._live.acquire(lease_name(space), self._node, self._s.lease_ttl_s)
        if taken is None:  # another node was quicker
            return await self.place(space, take=False)
        await self.ensure_running(space)
        return Placement(here=space in self._running)

    async def _advertise(self) -> None:
        now = time.monotonic()
        if now - self._advertised_at >= self._s.node_url_ttl_s / 3:
            await self._live.put_blob(
                node_url_key(self._node), self._s.advertised_url.encode(), self._s.node_url_ttl_s
            )
            self._advertised_at = now

    # -- publish sessions -----------------------------------------------------------------
    async def publish(self, space: SpaceId, handle: Handle, offer_sdp: str) -> Published:
        sm = self._running.get(space)
        if sm is None:
            raise PnyxError(
                ErrorKind.UNAVAILABLE,
                "this node does not run the space's media; retry shortly",
                code="not_here",
                retry_after=self._s.state_tick_s,
            )
        try:
            session = await IngestSession.accept(
                offer_sdp,
                inbound=FrameQueue(  # packets as they come: the mix thread times them
                    self._s.mix_queue_frames, self._s.mix_queue_frames, queue="inbound"
                ),
                outbound=FrameQueue(
                    self._s.mix_minus_queue_frames,
                    self._s.mix_minus_target_frames,
                    queue="outbound",
                ),
                connect_timeout_s=self._s.publish_connect_timeout_s,
                idle_timeout_s=self._s.publish_idle_timeout_s,
                policy=self._ice,
            )
        except PnyxError as exc:
            metrics.PUBLISHES.labels(exc.code).inc()
            raise
        if self._running.get(space) is not sm:  # the space stopped while we answered
            await session.close()
            metrics.PUBLISHES.labels("stopped").inc()
            _retry_soon(self._s.state_tick_s)
        sm.every.add(session)
        if handle in sm.sessions:  # make-before-break: the working one keeps the stage
            earlier = sm.pending.pop(handle, None)
            sm.pending[handle] = session
            sm.spawn(self._replace_when_heard(space, sm, handle, session), f"pending-{session.id}")
            if earlier is not None:
                await self._close(sm, earlier)
            log.info(
                "space %s: @%s publishes again (session %s pending)", space, handle, session.id
            )
        else:
            self._take_stage(space, sm, handle, session)
            await self._refresh(space, sm)
            log.info("space %s: @%s publishes (session %s)", space, handle, session.id)
        self._count_sessions()
        metrics.PUBLISHES.labels("ok").inc()
        return Published(session.id, session.answer_sdp)

    def _take_stage(
        self, space: SpaceId, sm: _SpaceMedia, handle: Handle, session: IngestSession
    ) -> None:
        """Make ``session`` the one mixed for ``handle`` (replacing their queues at once)."""
        sm.sessions[handle] = session
        sm.runner.attach(handle, session.inbound, session.outbound, session.wake)
        sm.spawn(self._watch_session(space, sm, handle, session), f"session-{session.id}")

    async def _replace_when_heard(
        self, space: SpaceId, sm: _SpaceMedia, handle: Handle, session: IngestSession
    ) -> None:
        """A pending session takes the stage at its first audio frame; one that ends
        before (never connected, failed) is dropped, the working session untouched."""
        heard = asyncio.ensure_future(session.heard.wait())
        ended = asyncio.ensure_future(session.ended.wait())
        try:
            await asyncio.wait({heard, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            heard.cancel()
            ended.cancel()
        if sm.pending.get(handle) is not session:
            return  # replaced by a newer one, or dropped (left the stage, unpublished)
        del sm.pending[handle]
        if not session.heard.is_set() or session.ended.is_set():
            metrics.REPLACEMENTS.labels("dropped").inc()
            log.info(
                "space %s: @%s's pending session %s dropped (%s): the previous one stays",
                space, handle, session.id, session.why,
            )  # fmt: skip
            await self._close(sm, session)
            return
        old = sm.sessions.get(handle)
        self._take_stage(space, sm, handle, session)
        self._count_sessions()
        metrics.REPLACEMENTS.labels("replaced").inc()
        log.info("space %s: @%s's session %s carries audio: it replaces the previous one",
                 space, handle, session.id)  # fmt: skip
        if old is not None:
            await self._close(sm, old)

    @staticmethod
    async def _close(sm: _SpaceMedia, session: IngestSession) -> None:
        await session.close()
        sm.every.discard(session)

    async def unpublish(self, space: SpaceId, handle: Handle, session: str) -> None:
        sm = self._running.get(space)
        current = sm.sessions.get(handle) if sm is not None else None
        pending = sm.pending.get(handle) if sm is not None else None
        if sm is not None and pending is not None and pending.id == session:
            del sm.pending[handle]
            await self._close(sm, pending)
            return
        if sm is None or current is None or current.id != session:
            raise PnyxError(
                ErrorKind.NOT_FOUND,
                f"you have no publish session {session} in this space",
                code="no_session",
            )
        await self._drop(space, sm, handle, "unpublished")

    async def _drop(self, space: SpaceId, sm: _SpaceMedia, handle: Handle, why: str) -> None:
        session = sm.sessions.pop(handle, None)
        sm.runner.detach(handle)
        self._count_sessions()
        if session is not None:
            await session.close()
            sm.every.discard(session)
            log.info("space %s: @%s stopped publishing (%s)", space, handle, why)

    async def _watch_session(
        self, space: SpaceId, sm: _SpaceMedia, handle: Handle, session: IngestSession
    ) -> None:
        await session.ended.wait()
        if sm.sessions.get(handle) is session:
            await self._drop(space, sm, handle, session.why)

    def _count_sessions(self) -> None:
        metrics.SESSIONS.set(sum(len(sm.sessions) for sm in self._running.values()))

    # -- who may be heard -------------------------------------------------------------------
    async def _watch(self, space: SpaceId, sm: _SpaceMedia) -> None:
        while True:
            try:
                async with self._live.subscribe(stage_channel(space)) as events:
                    while True:
                        await self._refresh(space, sm)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(anext(events), REFRESH_S)
            except (PnyxError, StopAsyncIteration) as exc:  # live state down or closing
                log.warning("space %s: stage events unavailable: %r", space, exc)
                await asyncio.sleep(REFRESH_S)

    async def _refresh(self, space: SpaceId, sm: _SpaceMedia) -> None:
        snap = await self._live.get_snapshot(space)
        room = snap.parts.get(views.ROOM) if snap is not None else None
        if room is None:
            return
        stage = {Handle(m["handle"]): bool(m.get("muted")) for m in room.get("stage", [])}
        sm.runner.set_allowed(frozenset(h for h, muted in stage.items() if not muted))
        for handle in list(sm.pending):
            if handle not in stage:
                await self._close(sm, sm.pending.pop(handle))
        for handle in list(sm.sessions):
            if handle not in stage:
                await self._drop(space, sm, handle, "left the stage")


def _retry_soon(after: float) -> NoReturn:
    raise PnyxError(
        ErrorKind.UNAVAILABLE,
        "the space's stage node is changing; retry shortly",
        code="stage_moving",
        retry_after=after,
    )
