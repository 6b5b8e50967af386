"""The listener's path: join, heartbeat, leave, react, and the state read.

Everything here is O(1) per call and independent of how many listen: presence is a
HyperLogLog add, reactions a counter increment, and the state read a snapshot that is
the same document for every listener.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pnyx.config import Settings
from pnyx.domain.types import Handle, ListenerId, SpaceId, SpaceStatus
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState, Snapshot
from pnyx.services import metrics, views
from pnyx.services.admission import Admission
from pnyx.services.auth import ListenerClaims, Tokens
from pnyx.services.spaces import SpaceService, links
from pnyx.store.db import Store

EMOJIS = frozenset({"👏", "❤️", "😂", "🔥", "💯", "🙌", "😮", "👍"})


@dataclass(frozen=True, slots=True)
class Joined:
    listener_id: ListenerId
    token: str
    heartbeat_s: float
    media: dict[str, str]
    latency: views.Latency


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
    ) -> None:
        self._s = settings
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

    async def _check_admitted(self, space: SpaceId, handle: Handle | None) -> Snapshot | None:
        """Anonymous listeners are admitted on the live snapshot alone (no store read:
        join storms must not reach the database); accounts also need blocks/removals."""
        status = None
        snap = await self._live.get_snapshot(space)
        if snap is not None and views.ROOM in snap.parts:
            status = snap.parts[views.ROOM].get("status")
        room = None
        if status is None or handle is not None:
            room = await self._spaces.room(space)
            status = room.status.value
        if status in (SpaceStatus.ENDED, SpaceStatus.CANCELLED):
            raise PnyxError(ErrorKind.CONFLICT, "this space has ended", code="space_over")
        if status != SpaceStatus.LIVE:
            raise PnyxError(ErrorKind.CONFLICT, "this space has not started yet", code="not_live")
        if handle is None or room is None:
            return snap
        if handle in room.removed:
            raise PnyxError(ErrorKind.FORBIDDEN, "you were removed from this space", code="removed")
        if await self._store.social.is_blocked(room.host, handle):
            raise PnyxError(
                ErrorKind.FORBIDDEN, "the host has blocked you from their spaces", code="blocked"
            )
        return snap

    async def join(self, space: SpaceId, handle: Handle | None) -> Joined:
        try:
            snap = await self._check_admitted(space, handle)
        except PnyxError as exc:
            metrics.JOINS.labels(exc.code).inc()
            raise
        listener = ListenerId(secrets.token_urlsafe(12))
        await self._live.presence_add(space, listener, self._clock())
        metrics.JOINS.labels("accepted").inc()
        token = self._tokens.issue_listener(listener, space, handle)
        media = {k: v for k, v in links(space).items() if k in ("hls", "hls_plain", "state")}
        stats = snap.parts.get(views.STATS, {}) if snap is not None else {}
        latency = views.STANDARD if stats.get("latency") == views.STANDARD else views.LOW
        return Joined(listener, token, self.heartbeat_s, media, latency)

    async def heartbeat(self, claims: ListenerClaims) -> float:
        await self._check_admitted(claims.space, claims.handle)
        await self._live.presence_add(claims.space, claims.listener, self._clock())
        return self.heartbeat_s

    async def leave(self, claims: ListenerClaims) -> None:
        """Presence cannot forget one member of a HyperLogLog: a listener who leaves drops
        out of the count when the presence window passes without their heartbeat."""
        await self._spaces.record(claims.space)

    async def react(self, claims: ListenerClaims, emoji: str) -> None:
        if emoji not in EMOJIS:
            raise PnyxError(
                ErrorKind.INVALID,
                f"unknown reaction; use one of {' '.join(sorted(EMOJIS))}",
                code="bad_emoji",
            )
        now = self._clock()
        decision = await self._live.take(
            f"react:{claims.listener}",
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
        if snap is None or snap.parts.get(views.ROOM, {}).get("status") != SpaceStatus.LIVE:
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
    ) -> dict[str, Any]:
        snap = await self.snapshot(space, after, self._s.state_wait_s if wait_s is None else wait_s)
        return views.state_view(snap, for_stage=for_stage, heartbeat_s=self.heartbeat_s)
