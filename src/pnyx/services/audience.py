"""The listeners a host can see, and who stops counting at once.

Signed-in listeners are kept, per space, in a capped sorted set in the live state (member
``"<listener id> <handle>"``, score the join time; the newest ``audience_list_cap`` only,
trimmed on every write), so listing a page costs the same whatever the audience: a bounded
recent set, not everyone. Anonymous listeners are in the presence count only.

The list is of listeners present *now*: the same members also carry when each was last
heard (its join, then its heartbeats, batched per process: services/presence.py
``add_listed``, one ``ZADD XX`` per space per flush). A read first removes the members
not heard within the presence window (the ticker's, raised under load like it), so a
listener whose client vanished without leaving drops out within the window; that prune
touches at most the capped set, whatever the audience.

The count (``presence_count``) is presence heard within the window *minus* the members
marked gone in it: a listener who leaves (``POST …/leave``), goes on stage or is removed
is marked gone by listener id and drops out of the count at the ticker's next tick, not
when the 45 s window passes. Going on stage and removal name a handle: its listener ids
are found in the capped set (bounded work). Listener ids are per join, so someone who
comes back counts again at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pnyx.domain.permissions import Action, require
from pnyx.domain.types import Handle, ListenerId, SpaceId
from pnyx.live.base import LiveState
from pnyx.services.spaces import SpaceService

_SEP = " "  # neither a handle nor a listener id (base64url) has one


def audience_member(listener: ListenerId, handle: Handle) -> str:
    return f"{listener}{_SEP}{handle}"


def _parse(member: str) -> tuple[ListenerId, Handle]:
    listener, _, handle = member.partition(_SEP)
    return ListenerId(listener), Handle(handle)


@dataclass(frozen=True, slots=True)
class AudienceEntry:
    handle: Handle
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class AudiencePage:
    listeners: tuple[AudienceEntry, ...]
    next_before: float | None  # pass as ``before`` for the next page; None: no more


class Audience:
    """Writes and reads of the audience set; gone marks."""

    def __init__(
        self,
        live: LiveState,
        spaces: SpaceService,
        clock: Callable[[], float],
        cap: int,
        window: Callable[[float], float],
    ) -> None:
        self._live = live
        self._spaces = spaces
        self._clock = clock
        self.cap = cap
        self._window = window  # now -> the presence window (s): who counts as present

    async def joined(self, space: SpaceId, listener: ListenerId, handle: Handle) -> None:
        await self._live.audience_add(
            space, audience_member(listener, handle), self._clock(), self.cap
        )

    async def heard(self, space: SpaceId, listener: ListenerId, handle: Handle) -> None:
        """A signed-in listener heard now (unbatched: a node without a batcher)."""
        await self._live.audience_heard_many(
            space, (audience_member(listener, handle),), self._clock()
        )

    async def left(self, space: SpaceId, listener: ListenerId, handle: Handle | None) -> None:
        await self._live.presence_leave_many(space, (listener,), self._clock())
        if handle is not None:
            await self._live.audience_remove(space, (audience_member(listener, handle),))

    async def drop_handle(self, space: SpaceId, handle: Handle) -> int:
        """Mark every listener id of ``handle`` among the recent set gone (they went on
        stage or were removed); how many there were."""
        rows = await self._live.audience_page(space, None, self.cap)
        mine = [member for member, _ in rows if _parse(member)[1] == handle]
        if mine:
            await self._live.presence_leave_many(space, (_parse(m)[0] for m in mine), self._clock())
            await self._live.audience_remove(space, mine)
        return len(mine)

    async def listeners(
        self, space: SpaceId, actor: Handle, before: float | None, limit: int
    ) -> AudiencePage:
        """Signed-in listeners present now (heard within the presence window), newest
        first; the host and co-hosts only (``Action.SEE_AUDIENCE``). People on stage or
        removed are left out; an account listening in two tabs is listed once per page."""
        room = await self._spaces.room(space)
        require(room, actor, Action.SEE_AUDIENCE)
        now = self._clock()
        since = now - self._window(now)
        rows = await self._live.audience_page(space, before, min(limit, self.cap), since)
        seen: set[Handle] = set()
        out: list[AudienceEntry] = []
        for member, score in rows:
            handle = _parse(member)[1]
            if handle in seen or room.on_stage(handle) or handle in room.removed:
                continue
            seen.add(handle)
            out.append(AudienceEntry(handle, datetime.fromtimestamp(score, UTC)))
        more = rows[-1][1] if rows and len(rows) == limit else None
        return AudiencePage(tuple(out), more)
