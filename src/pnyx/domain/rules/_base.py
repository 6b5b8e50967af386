"""What every rule module shares: the decision value and small pure room edits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from pnyx.domain.errors import conflict
from pnyx.domain.events import Event
from pnyx.domain.room import Member, Room
from pnyx.domain.types import Handle, Role


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of an accepted command: the new room and what happened, in order.

    ``events`` is empty only for a Tick that changed nothing; then ``room`` is the
    original room, version unchanged."""

    room: Room
    events: tuple[Event, ...]


# A rule's result before the version bump decide() applies: (changed room, events).
Outcome = tuple[Room, tuple[Event, ...]]


def capacity(room: Room, role: Role) -> int:
    """How many stage members of ``role`` (COHOST or SPEAKER) the room admits."""
    seats = {Role.COHOST: room.limits.max_cohosts, Role.SPEAKER: room.limits.max_speakers}
    return seats[role]


_FULL: Mapping[Role, tuple[str, str]] = MappingProxyType(
    {
        Role.COHOST: ("cohosts_full", "all co-host seats are taken; move a co-host back first"),
        Role.SPEAKER: ("stage_full", "all speaker seats are taken; move a speaker back first"),
    }
)


def check_seat(room: Room, role: Role) -> None:
    """Raise ``conflict`` unless one more stage member of ``role`` fits."""
    if room.count(role) >= capacity(room, role):
        code, message = _FULL[role]
        raise conflict(code, f"{message} (limit {capacity(room, role)})")


def without_hand(room: Room, handle: Handle) -> Room:
    return replace(room, hands=tuple(h for h in room.hands if h.handle != handle))


def without_invitation(room: Room, handle: Handle) -> Room:
    return replace(room, invitations=tuple(i for i in room.invitations if i.handle != handle))


def without_member(room: Room, handle: Handle) -> Room:
    return replace(room, members=tuple(m for m in room.members if m.handle != handle))


def with_member(room: Room, member: Member) -> Room:
    """Put ``member`` on stage: in place when already there (role or mute change),
    otherwise last in line. A listener coming up leaves their hand and invitation behind."""
    if room.member(member.handle) is not None:
        members = tuple(member if m.handle == member.handle else m for m in room.members)
        return replace(room, members=members)
    room = without_invitation(without_hand(room, member.handle), member.handle)
    return replace(room, members=(*room.members, member))


def stage_member(room: Room, handle: Handle) -> Member:
    """The stage member ``handle``; conflict "not_on_stage" for a listener."""
    member = room.member(handle)
    if member is None:
        raise conflict("not_on_stage", f"@{handle} is not on stage")
    return member
