"""The listener's path: join, heartbeat, leave, react, and the state read.

Everything here is O(1) per call and independent of how many listen: presence is a
HyperLogLog add, reactions a counter increment, and the state read a snapshot that is
the same document for every listener.

Heartbeats, the bulk of a big audience's writes, touch the live state less than once
each: presence is written in batches (``services.presence``), and the snapshot that
admits a heartbeat is read once per space per ``snapshot_cache_s`` by each process. So a
heartbeat costs a token check and a set insert, and Redis sees per-process work, not
per-listener work. (A join reads the snapshot itself: it must see a space end at once.)

Analytics count people, not joins (listener ids are per join): a join names its person,
``@handle`` when signed in, else ``~<client id>`` when the client sent the id it keeps
(the web client keeps one in localStorage; ``CLIENT_ID``: checked, and used for nothing
but that estimate), else its new listener id.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from pnyx.config import Settings
from pnyx.domain.codec import room_from_json
from pnyx.domain.room import Room
from pnyx.domain.types import Handle, ListenerId, SpaceId, SpaceStatus
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState, Snapshot
from pnyx.live.keys import reaction_bucket
from pnyx.services import metrics, views
from pnyx.services.access import SpaceAccess, private_refusal
from pnyx.services.admission import Admission
from pnyx.services.audience import Audience, audience_member
from pnyx.services.auth import ListenerClaims, Tokens
from pnyx.services.links import frontrow_path, is_private, plain_links, with_prefix
from pnyx.services.presence import PresenceBatcher
from pnyx.services.spaces import SpaceService
from pnyx.store.db import Store

SNAPSHOT_CACHE_SPACES = 10_000  # spaces whose snapshot a process keeps at once

JOIN_LINKS = (
    "hls",
    "hls_plain",
    "hls_main",
    "captions",
    "transcript",
    "state",
    "self",
)  # what a join answers with

CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")  # a join's ``client``: base64url, bounded


def person(listener: ListenerId, handle: Handle | None, client: str | None) -> str:
    """Who joined, for the space's sketch of distinct people: the account, else the
    client's kept id, else this join (never one of the other two: ids have no ``@``/``~``)."""
    if handle is not None:
        return f"@{handle}"
    if client is not None:
        return f"~{client}"
    return listener


EMOJIS = frozenset({"👏", "❤️", "😂", "🔥", "💯", "🙌", "😮", "👍"})


@dataclass(frozen=True, slots=True)
class Joined:
    listener_id: ListenerId
    token: str
    heartbeat_s: float
    media: dict[str, str]
    latency: views.Latency
    frontrow: FrontRowOffer | None = None


@dataclass(frozen=True, slots=True)
class FrontRowOffer:
    """The front row (push tier) for this space: its WebSocket path at the edge, and
    whether the player should use it without being asked (a small audience)."""

    url: str
    default: bool


class ListenerService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        live: LiveState,
        spaces: SpaceService,
        tokens: Tokens,
        clock: Callable[[], float],
        *,
        admission: Admission | None = None,
        presence: PresenceBatcher | None = None,
        access: SpaceAccess | None = None,
        audience: Audience | None = None,
    ) -> None:
        self._s = settings
        self._audience = audience
        self._access = access
        self._presence = presence
        self._snapshots: dict[SpaceId, tuple[float, Snapshot | None]] = {}
        self._admission = admission
        self._store = store
        self._live = live
        self._spaces = spaces
        self._tokens = tokens
        self._clock = clock

    @property
    def heartbeat_s(self) -> float:
        """The interval to tell listeners now: raised by admission control under load."""
        if self._admission is None:
            return self._s.heartbeat_s
        return self._admission.heartbeat_s(self._clock())

    async def _recent_snapshot(self, space: SpaceId) -> Snapshot | None:
        """The space's snapshot as this process saw it at most ``snapshot_cache_s`` ago."""
        now = self._clock()
        cached = self._snapshots.get(space)
        if cached is not None and now - cached[0] < self._s.snapshot_cache_s:
            snap = cached[1]
            # Only a live space's answer is worth keeping: one that is about to start must
            # admit its first listeners the moment it does.
            if views.room_status(snap) is SpaceStatus.LIVE:
                return snap
        snap = await self._live.get_snapshot(space)
        if len(self._snapshots) >= SNAPSHOT_CACHE_SPACES:
            self._snapshots.clear()
        self._snapshots[space] = (now, snap)
        return snap

    async def _heard(self, space: SpaceId, listener: ListenerId, who: str | None = None) -> None:
        """Presence (and, at a join, ``who`` joined: ``person``)."""
        if self._presence is not None:
            self._presence.add(space, listener)
            if who is not None:
                self._presence.add_person(space, who)
        else:
            await self._live.presence_add_many(
                space, (listener,), self._clock(), () if who is None else (who,)
            )

    async def _listed_heard(self, space: SpaceId, listener: ListenerId, handle: Handle) -> None:
        """A signed-in listener's heartbeat keeps them in the host's list."""
        if self._audience is None:
            return
        if self._presence is not None:
            self._presence.add_listed(space, audience_member(listener, handle))
        else:
            await self._audience.heard(space, listener, handle)

    async def _check_admitted(
        self, space: SpaceId, handle: Handle | None, *, recent: bool = False
    ) -> tuple[Snapshot | None, Room | None]:
        """Anonymous listeners are admitted on the live snapshot alone (no store read:
        join storms must not reach the database); accounts also need blocks/removals.
        ``recent``: a snapshot up to ``snapshot_cache_s`` old will do (heartbeats).
        A private space (known by its id) admits only its audience (services/access.py):
        anonymous callers are refused before any read."""
        if is_private(space) and handle is None:
            await self._spaces.record(space)  # an unknown space is NOT_FOUND, not 401
            raise private_refusal(None)
        if recent:
            snap = await self._recent_snapshot(space)
        else:
            snap = await self._live.get_snapshot(space)
        status = views.room_status(snap)
        room = None
        if status is None or handle is not None:
            room = await self._spaces.room(space)
            status = room.status
        if status in (SpaceStatus.ENDED, SpaceStatus.CANCELLED):
            raise PnyxError(ErrorKind.CONFLICT, "this space has ended", code="space_over")
        if status is not SpaceStatus.LIVE:
            raise PnyxError(ErrorKind.CONFLICT, "this space has not started yet", code="not_live")
        if handle is None or room is None:
            return snap, room
        if handle in room.removed:
            raise PnyxError(ErrorKind.FORBIDDEN, "you were removed from this space", code="removed")
        if await self._store.social.is_blocked(room.host, handle):
            raise PnyxError(
                ErrorKind.FORBIDDEN, "the host has blocked you from their spaces", code="blocked"
            )
        return snap, room

    async def _check_private(self, space: SpaceId, handle: Handle | None) -> None:
        if self._access is None or not is_private(space):
            return
        rec = await self._spaces.record(space)
        await self._access.check(rec, room_from_json(rec.room), handle)

    async def join(
        self, space: SpaceId, handle: Handle | None, client: str | None = None
    ) -> Joined:
        """``client``: the id the client keeps (``CLIENT_ID``), for counting people."""
        if client is not None and CLIENT_ID.fullmatch(client) is None:
            raise PnyxError(
                ErrorKind.INVALID,
                "client must be 16-64 characters of A-Z, a-z, 0-9, '-' or '_'",
                code="bad_client_id",
            )
        try:
            snap, room = await self._check_admitted(space, handle)
            await self._check_private(space, handle)
        except PnyxError as exc:
            metrics.JOINS.labels(exc.code).inc()
            raise
        listener = ListenerId(secrets.token_urlsafe(12))
        on_stage = handle is not None and room is not None and room.on_stage(handle)
        if not on_stage:  # people on stage are not the audience
            await self._heard(space, listener, person(listener, handle, client))
            if handle is not None and self._audience is not None:
                await self._audience.joined(space, listener, handle)
        metrics.JOINS.labels("accepted").inc()
        token = self._tokens.issue_listener(listener, space, handle)
        pre = self._read_prefix(space)  # one prefix (and expiry) for every link below
        media = {k: v for k, v in with_prefix(plain_links(space), pre).items() if k in JOIN_LINKS}
        stats = snap.parts.get(views.STATS, {}) if snap is not None else {}
        latency = views.STANDARD if stats.get("latency") == views.STANDARD else views.LOW
        offer = self._frontrow(space, pre, int(stats.get("listeners", 0)))
        return Joined(listener, token, self.heartbeat_s, media, latency, offer)

    def _frontrow(self, space: SpaceId, pre: str, listeners: int) -> FrontRowOffer | None:
        """Offered when the stage nodes push to the edges (``frontrow_publish_urls``);
        behind the same signed prefix as the media links for a private space (the edge
        checks it as it checks those); the default up to ``frontrow_max_listeners``.
        GET …/links offers it by the same rule (services/access.py ``SpaceAccess.access``)."""
        if not self._s.frontrow_publish_urls:
            return None
        return FrontRowOffer(
            pre + frontrow_path(space), default=listeners <= self._s.frontrow_max_listeners
        )

    def _read_prefix(self, space: SpaceId) -> str:
        """Signed for a private space (its listener reads need it), ``""`` otherwise."""
        if self._access is None:
            return ""
        return self._access.signer.read_prefix(space)

    async def heartbeat(self, claims: ListenerClaims) -> float:
        _, room = await self._check_admitted(claims.space, claims.handle, recent=True)
        if claims.handle is None:
            await self._heard(claims.space, claims.listener)
        elif room is None or not room.on_stage(claims.handle):
            await self._heard(claims.space, claims.listener)
            await self._listed_heard(claims.space, claims.listener, claims.handle)
        return self.heartbeat_s

    async def leave(self, claims: ListenerClaims) -> None:
        """The listener is marked gone (services/audience.py): the count drops them at
        the ticker's next tick, and they leave the host's list."""
        await self._spaces.record(claims.space)
        if self._audience is not None:
            await self._audience.left(claims.space, claims.listener, claims.handle)
        else:
            await self._live.presence_leave_many(claims.space, (claims.listener,), self._clock())

    async def react(self, claims: ListenerClaims, emoji: str) -> None:
        if emoji not in EMOJIS:
            raise PnyxError(
                ErrorKind.INVALID,
                f"unknown reaction; use one of {' '.join(sorted(EMOJIS))}",
                code="bad_emoji",
            )
        now = self._clock()
        decision = await self._live.take(
            reaction_bucket(claims.listener),
            rate=self._s.reaction_rate,
            burst=self._s.reaction_burst,
            now=now,
        )
        if not decision.allowed:
            metrics.REACTIONS.labels("limited").inc()
            raise PnyxError(
                ErrorKind.RATE_LIMITED,
                "too many reactions; slow down",
                code="reaction_rate",
                retry_after=decision.retry_after,
            )
        snap = await self._live.get_snapshot(claims.space)
        if views.room_status(snap) is not SpaceStatus.LIVE:
            raise PnyxError(ErrorKind.CONFLICT, "this space is not live", code="not_live")
        await self._live.react(claims.space, emoji, now)
        metrics.REACTIONS.labels("accepted").inc()

    async def snapshot(self, space: SpaceId, after: int | None, wait_s: float) -> Snapshot:
        snap = await self._live.get_snapshot(space)
        if snap is None:
            await self._spaces.ensure_published(space)
            snap = await self._live.get_snapshot(space)
            if snap is None:
                raise PnyxError(ErrorKind.UNAVAILABLE, "state not available yet", retry_after=1.0)
        # Wait only when the client has exactly the current version. A client behind gets
        # the current one at once; so does one ahead of us (the live state was reset).
        if after is None or after != snap.version:
            return snap
        metrics.STATE_WAITERS.inc()
        try:
            newer = await self._live.wait_snapshot(space, after, min(wait_s, self._s.state_wait_s))
        finally:
            metrics.STATE_WAITERS.dec()
        return newer or snap

    async def state(
        self, space: SpaceId, after: int | None, *, for_stage: bool, wait_s: float | None = None
    ) -> views.StateView:
        snap = await self.snapshot(space, after, self._s.state_wait_s if wait_s is None else wait_s)
        return views.state_view(snap, for_stage=for_stage, heartbeat_s=self.heartbeat_s)
