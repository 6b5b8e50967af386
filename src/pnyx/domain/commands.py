"""Commands: what an actor asks of a space. A closed union of frozen dataclasses.

Every command names its ``actor`` (the account's handle). Facts the domain cannot know
by itself (whether the host follows the actor) are looked up by the service and carried
in the command, so the rules stay pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from pnyx.domain.types import Handle, Role, SpeakPolicy


@dataclass(frozen=True, slots=True)
class StartSpace:
    actor: Handle


@dataclass(frozen=True, slots=True)
class EndSpace:
    actor: Handle


@dataclass(frozen=True, slots=True)
class RaiseHand:
    actor: Handle
    followed_by_host: bool = False


@dataclass(frozen=True, slots=True)
class LowerHand:
    """The actor lowers their own hand (target == actor), or a host/co-host declines
    someone's raised hand."""

    actor: Handle
    target: Handle


@dataclass(frozen=True, slots=True)
class SetRole:
    """Invite a listener (pending until they accept), approve a raised hand (at once),
    promote/demote between speaker and co-host, move someone back to the audience
    (role=LISTENER), or leave the stage yourself (target == actor, role=LISTENER)."""

    actor: Handle
    target: Handle
    role: Role


@dataclass(frozen=True, slots=True)
class AnswerInvitation:
    actor: Handle
    accept: bool


@dataclass(frozen=True, slots=True)
class Mute:
    actor: Handle
    target: Handle


@dataclass(frozen=True, slots=True)
class Unmute:
    actor: Handle
    target: Handle


@dataclass(frozen=True, slots=True)
class RemoveMember:
    actor: Handle
    target: Handle
    block: bool = False


@dataclass(frozen=True, slots=True)
class Pin:
    actor: Handle
    url: str | None  # None unpins


@dataclass(frozen=True, slots=True)
class SetSpeakPolicy:
    actor: Handle
    policy: SpeakPolicy


@dataclass(frozen=True, slots=True)
class HostDisconnected:
    actor: Handle


@dataclass(frozen=True, slots=True)
class HostReconnected:
    actor: Handle


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes, with what the space's stage node observes (the rules do no I/O).

    ``host_present``: whether the host is there now, by a stage socket on any node or a
    publish session on the stage node (None: not observed; only the grace clock runs).
    A live space whose host is absent is marked away, and ends ``host_grace_s`` later
    unless the host is back; co-hosts do not keep it running past that.
    ``scheduled_start`` (epoch seconds, the store's slot) and ``expiry_s``: a scheduled
    space not started ``expiry_s`` after its slot is cancelled (reason ``expired``)."""

    host_present: bool | None = None
    scheduled_start: float | None = None
    expiry_s: float = 3600.0


Command = (
    StartSpace
    | EndSpace
    | RaiseHand
    | LowerHand
    | SetRole
    | AnswerInvitation
    | Mute
    | Unmute
    | RemoveMember
    | Pin
    | SetSpeakPolicy
    | HostDisconnected
    | HostReconnected
    | Tick
)
