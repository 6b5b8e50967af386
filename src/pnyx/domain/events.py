"""Events: what happened to a space. A closed union of frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from pnyx.domain.types import EndReason, Handle, Role, SpeakPolicy


@dataclass(frozen=True, slots=True)
class SpaceStarted:
    at: float


@dataclass(frozen=True, slots=True)
class SpaceEnded:
    at: float
    reason: EndReason


@dataclass(frozen=True, slots=True)
class HandRaised:
    handle: Handle


@dataclass(frozen=True, slots=True)
class HandLowered:
    handle: Handle
    by: Handle  # == handle when lowered by themself; a moderator when declined


@dataclass(frozen=True, slots=True)
class Invited:
    handle: Handle
    role: Role
    by: Handle


@dataclass(frozen=True, slots=True)
class InvitationAnswered:
    handle: Handle
    accepted: bool


@dataclass(frozen=True, slots=True)
class RoleChanged:
    handle: Handle
    old: Role
    new: Role
    by: Handle


@dataclass(frozen=True, slots=True)
class Muted:
    handle: Handle
    by: Handle


@dataclass(frozen=True, slots=True)
class Unmuted:
    handle: Handle


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    handle: Handle
    by: Handle
    blocked: bool


@dataclass(frozen=True, slots=True)
class Pinned:
    url: str | None
    by: Handle


@dataclass(frozen=True, slots=True)
class SpeakPolicyChanged:
    policy: SpeakPolicy
    by: Handle


@dataclass(frozen=True, slots=True)
class HostAway:
    since: float


@dataclass(frozen=True, slots=True)
class HostBack:
    pass


Event = (
    SpaceStarted
    | SpaceEnded
    | HandRaised
    | HandLowered
    | Invited
    | InvitationAnswered
    | RoleChanged
    | Muted
    | Unmuted
    | MemberRemoved
    | Pinned
    | SpeakPolicyChanged
    | HostAway
    | HostBack
)
