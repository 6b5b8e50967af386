"""Spaces: create, read, and run commands against a space's room.

A command is decided by the pure rules, then written with a compare-and-swap on the
room's version in the durable store, so any number of API processes can act on one
space: a loser of the race reloads and decides again. After a write, the room is
published to the live state (a new snapshot version for every listener) and the events
go to the stage channel.

What one account may host (:class:`HostLimits`, from the settings): at most ``live``
live spaces and ``scheduled`` scheduled ones at once (counted by the store in the
transaction that adds one: ended and cancelled spaces do not count; ``409``), and new
spaces at ``per_hour`` (bursts of ``burst``) through a token bucket in the live state
under ``keys.space_create_bucket`` (``429`` with ``Retry-After``), shared by every node.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from pnyx.config import Settings
from pnyx.domain import commands as cmd
from pnyx.domain import events as ev
from pnyx.domain.codec import room_from_json, room_to_json
from pnyx.domain.room import Room
from pnyx.domain.rules import decide, new_room
from pnyx.domain.types import (
    PRIVATE_ID_PREFIX,
    STAGE_ROLES,
    Audience,
    EndReason,
    Handle,
    Limits,
    SpaceId,
    SpaceStatus,
    SpeakPolicy,
    Visibility,
)
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState
from pnyx.live.keys import analytics_key, blob_key, space_create_bucket, stage_channel
from pnyx.media.hls import INIT_URI
from pnyx.protocol import stage as wire
from pnyx.services import metrics, views
from pnyx.store.db import Store
from pnyx.store.records import HostCap, OutboxMessage, SpaceRecord

log = logging.getLogger(__name__)

CAS_ATTEMPTS = 8
_OVER = frozenset({SpaceStatus.ENDED, SpaceStatus.CANCELLED})  # never changes again


def media_blob_ttl_s(settings: Settings) -> float:
    """The longest TTL a space's blobs are given, but for :func:`lasting_blobs`: its
    parts, segments and their captions (services/origin.py) and a stage socket's
    presence (services/stage.py). A new kind of blob of a space is counted here, or
    named there."""
    return max(
        settings.media_part_ttl_s, settings.media_segment_ttl_s, settings.stage_presence_ttl_s
    )


def lasting_blobs(space: SpaceId, retention_s: float, media_ttl_s: float) -> tuple[str, ...] | None:
    """The blobs of an ended ``space`` that may outlive ``retention_s``, for
    ``LiveState.expire_space``: its init segment (a day) and its figures (a week);
    every other one is due within ``media_ttl_s`` (:func:`media_blob_ttl_s`). None when
    that is longer than the retention: then every blob of the space is looked for (on
    Redis, a SCAN of the keyspace: seconds at a million keys)."""
    if media_ttl_s > retention_s:
        return None
    return (blob_key(space, INIT_URI), analytics_key(space))


CAP_CODES = frozenset({"too_many_live_spaces", "too_many_scheduled_spaces"})


@contextmanager
def _counting_refusals() -> Iterator[None]:
    try:
        yield
    except PnyxError as exc:
        if exc.code in CAP_CODES:
            metrics.SPACES_REFUSED.labels(exc.code).inc()
        raise


def _off_audience(event: ev.Event) -> bool:
    """Whether the event takes someone out of the audience (not leaving: the listener's
    own ``…/leave`` does that)."""
    if isinstance(event, ev.MemberRemoved):
        return True
    return isinstance(event, ev.RoleChanged) and event.new in STAGE_ROLES


def _ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _changed(rec: SpaceRecord, room: Room) -> SpaceRecord:
    """``rec`` as it will be stored with ``room`` (status and times)."""
    return replace(
        rec,
        status=room.status,
        started_at=_ts(room.started_at) or rec.started_at,
        ended_at=_ts(room.ended_at) or rec.ended_at,
        room=room_to_json(room),
        room_version=room.version,
    )


@dataclass(frozen=True, slots=True)
class NewSpace:
    title: str
    scheduled_start: datetime | None = None
    speak_policy: SpeakPolicy = SpeakPolicy.EVERYONE
    record: bool = False
    visibility: Visibility = Visibility.PUBLIC
    audience: Audience = Audience.INVITED  # a private space's audience besides the invited
    captions: bool = False


@dataclass(frozen=True, slots=True)
class SpaceEdit:
    """What PATCH changes; None leaves it as it is."""

    title: str | None = None
    scheduled_start: datetime | None = None
    speak_policy: SpeakPolicy | None = None


def new_space_id(visibility: Visibility) -> SpaceId:
    """An unguessable id (72 random bits). A private space's begins with ``p-`` and no
    other's does: an edge tells private spaces by their id alone (services/links.py). No
    id begins with ``-``, which a command line would read as an option
    (``pnyx loadtest listeners --space -x…``)."""
    if visibility is Visibility.PRIVATE:
        return SpaceId(PRIVATE_ID_PREFIX + secrets.token_urlsafe(9))
    while True:
        space = secrets.token_urlsafe(9)
        if not space.startswith((PRIVATE_ID_PREFIX, "-")):
            return SpaceId(space)


@dataclass(frozen=True, slots=True)
class HostLimits:
    """What one account may host (settings ``max_live_spaces_per_account``,
    ``max_scheduled_spaces_per_account``, ``space_creations_per_hour``,
    ``space_creation_burst``)."""

    live: int
    scheduled: int
    per_hour: float
    burst: float


class SpaceService:
    def __init__(
        self,
        store: Store,
        live: LiveState,
        limits: Limits,
        clock: Callable[[], float],
        hosts: HostLimits | None = None,  # None: no caps (tests of other things)
        *,
        ended_retention_s: float | None = None,  # None: an ended room is kept (tests)
        media_ttl_s: float = math.inf,  # media_blob_ttl_s (inf: every blob looked for)
    ) -> None:
        self._store = store
        self._ended_retention_s = ended_retention_s
        self._media_ttl_s = media_ttl_s
        self._live = live
        self._limits = limits
        self._clock = clock
        self._hosts = hosts
        # Told when a space goes live (created live, or started): the node wires the
        # follower notifications here, so spaces.py knows nothing of them.
        self.on_live: Callable[[SpaceRecord], Awaitable[None]] | None = None
        # Asked, when a space is created and before each change of its status, for the
        # webhook messages of the change (the record as it will be, and the room); they
        # are written in the transaction that makes the change, then ``on_queued`` is
        # told. The node wires the webhooks here.
        self.outbox_for: Callable[[SpaceRecord, Room], Awaitable[list[OutboxMessage]]] | None = None
        self.on_queued: Callable[[], None] | None = None
        # Told when a moderator asks someone onto the stage (space, host, title, whom).
        self.on_speak_invite: Callable[[SpaceId, Handle, str, Handle], Awaitable[None]] | None = (
            None
        )
        # Told when someone stops being a listener without leaving (went on stage, was
        # removed): the node wires the audience here (services/audience.py), so the
        # count drops them at once.
        self.off_audience: Callable[[SpaceId, Handle], Awaitable[object]] | None = None

    # -- reading ----------------------------------------------------------------------
    async def record(self, space: SpaceId) -> SpaceRecord:
        rec = await self._store.spaces.get(space)
        if rec is None:
            raise PnyxError(ErrorKind.NOT_FOUND, f"no space {space}", code="no_space")
        return rec

    async def search(
        self, query: str, limit: int = 50, *, status: SpaceStatus | None = None
    ) -> list[SpaceRecord]:
        return await self._store.spaces.search(query, limit, status=status)

    async def recent_replays(self, limit: int = 20) -> list[SpaceRecord]:
        return await self._store.spaces.recent_replays(limit)

    async def room(self, space: SpaceId) -> Room:
        return room_from_json((await self.record(space)).room)

    async def list(
        self, status: SpaceStatus, limit: int = 50, *, visibility: Visibility | None = None
    ) -> list[SpaceRecord]:
        return await self._store.spaces.list(status, limit, visibility=visibility)

    # -- creating -----------------------------------------------------------------------
    async def create(self, host: Handle, spec: NewSpace) -> SpaceRecord:
        title = spec.title.strip()
        if not title or len(title) > self._limits.max_title_len:
            raise PnyxError(
                ErrorKind.INVALID,
                f"a title is 1 to {self._limits.max_title_len} characters",
                code="bad_title",
            )
        now = self._clock()
        scheduled = spec.scheduled_start is not None
        if spec.scheduled_start is not None and spec.scheduled_start.timestamp() <= now:
            raise PnyxError(
                ErrorKind.INVALID,
                "scheduled_start must be in the future (omit it to go live now)",
                code="bad_schedule",
            )
        if spec.visibility is not Visibility.PRIVATE and spec.audience is not Audience.INVITED:
            raise PnyxError(
                ErrorKind.INVALID,
                "audience is for private spaces: set visibility to 'private' or leave it out",
                code="audience_needs_private",
            )
        await self._take_creation(host, now)
        space = new_space_id(spec.visibility)
        room = new_room(
            space,
            host,
            title,
            scheduled=scheduled,
            speak_policy=spec.speak_policy,
            limits=self._limits,
            now=now,
        )
        rec = SpaceRecord(
            id=space,
            host=host,
            title=title,
            status=room.status,
            record=spec.record,
            scheduled_start=spec.scheduled_start,
            created_at=datetime.fromtimestamp(now, UTC),
            room=room_to_json(room),
            room_version=room.version,
            visibility=spec.visibility,
            audience=spec.audience,
            captions=spec.captions,
        )
        outbox = await self._outbox(rec, room)
        with _counting_refusals():
            await self._store.spaces.create(rec, self._cap(room.status), outbox)
        self._queued(outbox)
        await self.publish_room(room)
        log.info("space %s created by @%s (%s, %s)", space, host, room.status.value, rec.visibility)
        if room.status is SpaceStatus.LIVE and self.on_live is not None:
            await self.on_live(rec)
        return rec

    async def _take_creation(self, host: Handle, now: float) -> None:
        if self._hosts is None:
            return
        decision = await self._live.take(
            space_create_bucket(host),
            rate=self._hosts.per_hour / 3600.0,
            burst=self._hosts.burst,
            now=now,
        )
        if not decision.allowed:
            metrics.SPACES_REFUSED.labels("space_creation_rate").inc()
            raise PnyxError(
                ErrorKind.RATE_LIMITED,
                f"too many new spaces: an account creates at most "
                f"{self._hosts.per_hour:g} an hour (bursts of {self._hosts.burst:g}); "
                f"retry in {math.ceil(decision.retry_after)} s",
                code="space_creation_rate",
                retry_after=decision.retry_after,
            )

    def _cap(self, status: SpaceStatus) -> HostCap | None:
        if self._hosts is None:
            return None
        if status is SpaceStatus.LIVE:
            return HostCap(SpaceStatus.LIVE, self._hosts.live)
        if status is SpaceStatus.SCHEDULED:
            return HostCap(SpaceStatus.SCHEDULED, self._hosts.scheduled)
        return None

    # -- commands ----------------------------------------------------------------------
    async def execute(self, space: SpaceId, command: cmd.Command) -> Room:
        """Decide and persist one command; retried on a concurrent change."""
        name = type(command).__name__
        for _ in range(CAS_ATTEMPTS):
            rec = await self.record(space)
            room = room_from_json(rec.room)
            try:
                decision = decide(room, command, self._clock())
            except PnyxError:
                metrics.COMMANDS.labels(name, "rejected").inc()
                raise
            if decision.room.version == room.version:
                return room  # nothing changed (a Tick with nothing to do)
            new = decision.room
            outbox: Sequence[OutboxMessage] = ()
            if new.status is not room.status:
                outbox = await self._outbox(_changed(rec, new), new)
            with _counting_refusals():
                won = await self._store.spaces.update_room(
                    space,
                    room_to_json(new),
                    expected_version=room.version,
                    new_version=new.version,
                    status=new.status,
                    started_at=_ts(new.started_at),
                    ended_at=_ts(new.ended_at),
                    cap=self._going_live_cap(rec, room, new),
                    outbox=outbox,
                    now=datetime.fromtimestamp(self._clock(), UTC),
                )
            if won:
                metrics.COMMANDS.labels(name, "accepted").inc()
                await self._after(new, decision.events)
                if new.status in _OVER and room.status not in _OVER:
                    await self._expire(space)
                self._queued(outbox)
                if room.status is not SpaceStatus.LIVE and new.status is SpaceStatus.LIVE:
                    await self._went_live(rec, new)
                return new
        metrics.COMMANDS.labels(name, "contended").inc()
        raise PnyxError(
            ErrorKind.UNAVAILABLE,
            "the space is changing too fast; retry in a moment",
            code="contended",
            retry_after=1.0,
        )

    async def _outbox(self, rec: SpaceRecord, room: Room) -> Sequence[OutboxMessage]:
        return () if self.outbox_for is None else await self.outbox_for(rec, room)

    def _queued(self, outbox: Sequence[OutboxMessage]) -> None:
        if outbox and self.on_queued is not None:
            self.on_queued()

    async def touch(self, space: SpaceId) -> None:
        """A new room version with nothing changed, published: for what the room shows
        but does not hold (a stage member's new display name). One attempt: losing it to
        another writer means that writer published the room afresh anyway."""
        rec = await self.record(space)
        room = room_from_json(rec.room)
        new = replace(room, version=room.version + 1)
        if await self._store.spaces.bump_room(space, room_to_json(new), room.version):
            await self.publish_room(new)

    async def edit(self, space: SpaceId, actor: Handle, edit: SpaceEdit) -> SpaceRecord:
        """Change a scheduled space: its title, start and who may ask to speak. Host only
        (FORBIDDEN ``host_only``), only while scheduled (CONFLICT ``not_scheduled``); the
        start in the future (INVALID ``bad_schedule``), the title as at creation
        (``bad_title``). The title and start are one compare-and-swap on the room's
        version; the speak policy goes through the rules (``SetSpeakPolicy``)."""
        for _ in range(CAS_ATTEMPTS):
            rec = await self.record(space)
            room = room_from_json(rec.room)
            if actor != rec.host:
                raise PnyxError(
                    ErrorKind.FORBIDDEN, "only the host edits a space", code="host_only"
                )
            if room.status is not SpaceStatus.SCHEDULED:
                raise PnyxError(
                    ErrorKind.CONFLICT,
                    f"space {space} is {room.status.value}: only a scheduled space is edited",
                    code="not_scheduled",
                )
            title = rec.title if edit.title is None else edit.title.strip()
            if not title or len(title) > self._limits.max_title_len:
                raise PnyxError(
                    ErrorKind.INVALID,
                    f"a title is 1 to {self._limits.max_title_len} characters",
                    code="bad_title",
                )
            start = edit.scheduled_start or rec.scheduled_start
            if edit.scheduled_start is not None and edit.scheduled_start.timestamp() <= (
                self._clock()
            ):
                raise PnyxError(
                    ErrorKind.INVALID,
                    "scheduled_start must be in the future",
                    code="bad_schedule",
                )
            if title == rec.title and start == rec.scheduled_start:
                break
            new = replace(room, title=title, version=room.version + 1)
            won = await self._store.spaces.edit(
                space,
                room_to_json(new),
                expected_version=room.version,
                new_version=new.version,
                title=title,
                scheduled_start=start,
            )
            if won:
                await self.publish_room(new)
                break
        else:
            raise PnyxError(
                ErrorKind.UNAVAILABLE,
                "the space is changing too fast; retry in a moment",
                code="contended",
                retry_after=1.0,
            )
        if edit.speak_policy is not None and edit.speak_policy is not room.speak_policy:
            await self.execute(space, cmd.SetSpeakPolicy(actor, edit.speak_policy))
        return await self.record(space)

    async def cancel(self, space: SpaceId, actor: Handle, reason: str) -> SpaceRecord:
        """End the space (a scheduled one is cancelled), keeping the host's ``reason``."""
        await self.execute(space, cmd.EndSpace(actor))
        if reason:
            await self._store.spaces.set_cancel_reason(space, reason)
        return await self.record(space)

    def _going_live_cap(
        self, rec: SpaceRecord, room: Room, new: Room
    ) -> tuple[Handle, HostCap] | None:
        if room.status is SpaceStatus.LIVE or new.status is not SpaceStatus.LIVE:
            return None
        cap = self._cap(SpaceStatus.LIVE)
        return None if cap is None else (rec.host, cap)

    async def raise_hand(self, space: SpaceId, actor: Handle) -> Room:
        """RaiseHand needs two facts the rules cannot look up: blocks and follows."""
        room = await self.room(space)
        if await self._store.social.is_blocked(room.host, actor):
            raise PnyxError(
                ErrorKind.FORBIDDEN, "the host has blocked you from their spaces", code="blocked"
            )
        followed = await self._store.social.is_following(room.host, actor)
        return await self.execute(space, cmd.RaiseHand(actor, followed_by_host=followed))

    async def _went_live(self, rec: SpaceRecord, room: Room) -> None:
        if self.on_live is not None:
            started = _ts(room.started_at)
            await self.on_live(replace(rec, status=room.status, started_at=started))

    async def _after(self, room: Room, events: tuple[ev.Event, ...]) -> None:
        for event in events:
            if isinstance(event, ev.MemberRemoved) and event.blocked:
                await self._store.social.block(room.host, event.handle, datetime.now(UTC))
            if isinstance(event, ev.Invited) and self.on_speak_invite is not None:
                await self.on_speak_invite(room.id, room.host, room.title, event.handle)
            if self.off_audience is not None and _off_audience(event):
                assert isinstance(event, ev.MemberRemoved | ev.RoleChanged)
                await self.off_audience(room.id, event.handle)
        await self.publish_room(room)
        for event in events:
            await self._live.publish(
                stage_channel(room.id), wire.encode(wire.from_event(event)).encode()
            )

    async def expire_scheduled(
        self, expiry_s: float, batch: int
    ) -> tuple[tuple[SpaceId, ...], bool]:
        """Cancel (reason ``expired``) scheduled spaces whose slot is ``expiry_s`` or more
        in the past, at most ``batch`` of them, soonest slot first. Returns the spaces
        cancelled and whether more may be due (a full batch was). The rules decide
        (``Tick``), so a space started meanwhile, or cancelled by another node, is left."""
        now = self._clock()
        due = [
            rec
            for rec in await self.list(SpaceStatus.SCHEDULED, limit=batch)
            if rec.scheduled_start is not None and now - rec.scheduled_start.timestamp() >= expiry_s
        ]
        cancelled: tuple[SpaceId, ...] = ()
        for rec in due:
            assert rec.scheduled_start is not None
            tick = cmd.Tick(scheduled_start=rec.scheduled_start.timestamp(), expiry_s=expiry_s)
            room = await self.execute(rec.id, tick)
            if room.end_reason is EndReason.EXPIRED:
                cancelled += (rec.id,)
                log.info(
                    "space %s: cancelled, not started within %g s of its slot", rec.id, expiry_s
                )
        return cancelled, len(due) >= batch

    async def publish_room(self, room: Room) -> int | None:
        """Publish the room with its stage members' display names (one store read of at
        most the stage's size: a command already costs a store write). The room of an
        ended or cancelled space is published with ``ended_retention_s`` as its
        snapshot's TTL, whoever writes it: the live state of a space that will never
        change again does not stay for good, even if no stage node ever held the space
        (a cancelled scheduled one) or the one that did dies before letting it go."""
        names = await self._store.accounts.names([m.handle for m in room.members])
        part = views.room_part(room, names)
        ttl = self._ended_retention_s if room.status in _OVER else None
        return await self._live.put_part(room.id, views.ROOM, part, room.version, ttl_s=ttl)

    async def _expire(self, space: SpaceId) -> None:
        """The space just ended: what it has in the live state goes after the retention,
        whichever node this is and whatever becomes of the one that ran it (whose ticker
        does it again once the last media is written, and keeps the figures once they
        are in the store). Its running figures are kept: the ticker that writes them to
        the store may not have yet."""
        retention_s = self._ended_retention_s
        if retention_s is None:
            return
        try:
            await self._live.expire_space(
                space,
                retention_s,
                keep=(analytics_key(space),),
                blobs=lasting_blobs(space, retention_s, self._media_ttl_s),
            )
        except PnyxError as exc:  # the end stands; the stage node's ticker tries again
            log.warning("space %s: live state not set to expire: %s", space, exc.message)

    async def ensure_published(self, space: SpaceId) -> None:
        """Re-publish the room from the durable store (e.g. a fresh memory live state, or
        an ended space whose live state has expired: a page still polling it gets its
        room again, for another ``ended_retention_s``)."""
        await self.publish_room(await self.room(space))
