"""A space's life: created scheduled or live, started by the host, ended by the host or
by time: the host away past the grace period, or a scheduled slot long gone by. The
status machine is a table; the same table decides which commands a status accepts at all.

Host presence is the host only: a stage socket on any node or a publish session on the
stage node, as observed by the stage node and carried in ``Tick.host_present``. Co-hosts
run the space while the host is away, but only for the grace period (docs/architecture.md,
"Stage rules")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from pnyx.domain.commands import (
    AnswerInvitation,
    Command,
    EndSpace,
    HostDisconnected,
    HostReconnected,
    LowerHand,
    Mute,
    RaiseHand,
    SetRole,
    StartSpace,
    Tick,
    Unmute,
)
from pnyx.domain.errors import conflict, invalid
from pnyx.domain.events import HostAway, HostBack, SpaceEnded, SpaceStarted
from pnyx.domain.permissions import Action, require
from pnyx.domain.room import Member, Room
from pnyx.domain.rules._base import Outcome
from pnyx.domain.types import EndReason, Handle, Limits, Role, SpaceId, SpaceStatus, SpeakPolicy

# (status, command) -> (next status, why it ended). Anything absent is illegal.
TRANSITIONS: Mapping[tuple[SpaceStatus, type[Command]], tuple[SpaceStatus, EndReason | None]] = (
    MappingProxyType(
        {
            (SpaceStatus.SCHEDULED, StartSpace): (SpaceStatus.LIVE, None),
            (SpaceStatus.SCHEDULED, EndSpace): (SpaceStatus.CANCELLED, EndReason.CANCELLED),
            (SpaceStatus.SCHEDULED, Tick): (SpaceStatus.CANCELLED, EndReason.EXPIRED),
            (SpaceStatus.LIVE, EndSpace): (SpaceStatus.ENDED, EndReason.HOST_ENDED),
            (SpaceStatus.LIVE, Tick): (SpaceStatus.ENDED, EndReason.HOST_LEFT),
        }
    )
)

# Commands about the stage (and the host's presence on it) need a live space. The rest
# (end/cancel, remove, pin, speak policy) may also prepare a scheduled one.
LIVE_ONLY: frozenset[type[Command]] = frozenset(
    {
        RaiseHand,
        LowerHand,
        SetRole,
        AnswerInvitation,
        Mute,
        Unmute,
        HostDisconnected,
        HostReconnected,
    }
)

# Why a command that has no row in TRANSITIONS for this status is refused.
_NO_TRANSITION: Mapping[SpaceStatus, tuple[str, str]] = MappingProxyType(
    {SpaceStatus.LIVE: ("already_live", "the space is already live")}
)


def new_room(
    id: SpaceId,
    host: Handle,
    title: str,
    *,
    scheduled: bool,
    speak_policy: SpeakPolicy,
    limits: Limits,
    now: float,
) -> Room:
    """A new space: SCHEDULED, or LIVE from ``now``; the host is its first member.
    The title is stripped; blank or longer than ``limits.max_title_len`` is invalid."""
    title = title.strip()
    if not title or len(title) > limits.max_title_len:
        raise invalid("bad_title", f"a title is 1 to {limits.max_title_len} characters")
    return Room(
        id=id,
        host=host,
        title=title,
        status=SpaceStatus.SCHEDULED if scheduled else SpaceStatus.LIVE,
        speak_policy=speak_policy,
        limits=limits,
        members=(Member(host, Role.HOST),),
        started_at=None if scheduled else now,
        version=1,
    )


def check_status(room: Room, command: Command) -> None:
    """Raise ``conflict`` when the space's status rules the command out altogether."""
    if isinstance(command, Tick):
        return
    if room.is_over:
        raise conflict("space_over", f"the space is {room.status.value}; nothing more can happen")
    if room.status is SpaceStatus.SCHEDULED and type(command) in LIVE_ONLY:
        raise conflict("not_live", "the space has not started yet; the host starts it")


def _transition(room: Room, command: Command, now: float) -> Room:
    step = TRANSITIONS.get((room.status, type(command)))
    if step is None:
        code, message = _NO_TRANSITION.get(
            room.status, ("bad_transition", f"not possible in a {room.status.value} space")
        )
        raise conflict(code, message)
    status, reason = step
    if status is SpaceStatus.LIVE:
        return replace(room, status=status, started_at=now)
    # Over: hands and invitations go; members stay for the record.
    return replace(
        room,
        status=status,
        ended_at=now,
        end_reason=reason,
        hands=(),
        invitations=(),
        host_away_since=None,
    )


def start(room: Room, command: StartSpace, now: float) -> Outcome:
    require(room, command.actor, Action.START_SPACE)
    return _transition(room, command, now), (SpaceStarted(at=now),)


def _ended(room: Room, command: Command, now: float) -> Outcome:
    after = _transition(room, command, now)
    assert after.end_reason is not None
    return after, (SpaceEnded(at=now, reason=after.end_reason),)


def end(room: Room, command: EndSpace, now: float) -> Outcome:
    require(room, command.actor, Action.END_SPACE)
    return _ended(room, command, now)


def tick(room: Room, command: Tick, now: float) -> Outcome:
    """Let time pass (the one command that may be a no-op), in this order:

    * a scheduled space whose slot (``command.scheduled_start``) is ``command.expiry_s``
      or more in the past is cancelled (``expired``);
    * in a live space, the host observed present clears ``host_away_since`` (HostBack);
      observed absent while not yet away sets it to ``now`` (HostAway);
    * a live space whose host has been away for ``host_grace_s`` or longer ends.
    Anything else, and any space that is over, stays as it is."""
    if room.status is SpaceStatus.SCHEDULED:
        start = command.scheduled_start
        if start is not None and now - start >= command.expiry_s:
            return _ended(room, command, now)
        return room, ()
    if not room.is_live:
        return room, ()
    away = room.host_away_since
    if command.host_present is True and away is not None:
        return replace(room, host_away_since=None), (HostBack(),)
    if command.host_present is False and away is None:
        return replace(room, host_away_since=now), (HostAway(since=now),)
    if away is not None and now - away >= room.limits.host_grace_s:
        return _ended(room, command, now)
    return room, ()


def host_disconnected(room: Room, command: HostDisconnected, now: float) -> Outcome:
    require(room, command.actor, Action.REPORT_HOST_PRESENCE)
    if room.host_away_since is not None:
        raise conflict("host_already_away", "the host is already marked away")
    return replace(room, host_away_since=now), (HostAway(since=now),)


def host_reconnected(room: Room, command: HostReconnected, now: float) -> Outcome:
    require(room, command.actor, Action.REPORT_HOST_PRESENCE)
    if room.host_away_since is None:
        raise conflict("host_not_away", "the host is not marked away")
    return replace(room, host_away_since=None), (HostBack(),)
