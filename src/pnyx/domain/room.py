"""The state of one space (its "room"): an immutable value. Rules in rules.py turn a room
and a command into a new room plus events; nothing here reads a clock or does I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from pnyx.domain.types import (
    STAGE_ROLES,
    EndReason,
    Handle,
    Limits,
    Role,
    SpaceId,
    SpaceStatus,
    SpeakPolicy,
)


@dataclass(frozen=True, slots=True)
class Member:
    """Someone on stage (host, co-host or speaker). Listeners are not members."""

    handle: Handle
    role: Role
    muted: bool = False


@dataclass(frozen=True, slots=True)
class Hand:
    handle: Handle
    raised_at: float


@dataclass(frozen=True, slots=True)
class Invitation:
    handle: Handle
    role: Role  # SPEAKER or COHOST
    by: Handle


@dataclass(frozen=True, slots=True)
class Room:
    id: SpaceId
    host: Handle
    title: str
    status: SpaceStatus
    speak_policy: SpeakPolicy = SpeakPolicy.EVERYONE
    limits: Limits = field(default_factory=Limits)
    members: tuple[Member, ...] = ()  # stage, in the order they came up; host first
    hands: tuple[Hand, ...] = ()  # raised hands, oldest first
    invitations: tuple[Invitation, ...] = ()
    removed: frozenset[Handle] = frozenset()  # may not come back to this space
    pinned: str | None = None
    host_away_since: float | None = None  # set while the host is disconnected
    started_at: float | None = None
    ended_at: float | None = None
    end_reason: EndReason | None = None
    version: int = 0  # +1 for every accepted change

    # -- queries (pure, cheap) -------------------------------------------------------
    def member(self, handle: Handle) -> Member | None:
        for m in self.members:
            if m.handle == handle:
                return m
        return None

    def role_of(self, handle: Handle) -> Role:
        m = self.member(handle)
        return m.role if m is not None else Role.LISTENER

    def on_stage(self, handle: Handle) -> bool:
        return self.role_of(handle) in STAGE_ROLES

    def count(self, role: Role) -> int:
        return sum(1 for m in self.members if m.role is role)

    def hand_of(self, handle: Handle) -> Hand | None:
        for h in self.hands:
            if h.handle == handle:
                return h
        return None

    def invitation_of(self, handle: Handle) -> Invitation | None:
        for i in self.invitations:
            if i.handle == handle:
                return i
        return None

    @property
    def is_live(self) -> bool:
        return self.status is SpaceStatus.LIVE

    @property
    def is_over(self) -> bool:
        return self.status in (SpaceStatus.ENDED, SpaceStatus.CANCELLED)
