"""Wire messages of the stage WebSocket: a closed, typed, versioned union
(docs/conventions.md, rule 4).

Every message is a JSON object with a literal ``type`` and the protocol version ``v``.
Clients send ``auth`` first, then ``pong`` (and may ``ping``); everything else flows from
the server. Unknown types, unknown fields and wrong versions are rejected with a
``ProtocolError`` that names what was wrong; the connection stays up.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from pnyx.domain import events as ev
from pnyx.domain.types import EndReason, Role, SpeakPolicy
from pnyx.errors import ErrorKind, PnyxError

VERSION = 1


class CloseCode(IntEnum):
    GOING_AWAY = 1001  # server shutting down: reconnect elsewhere
    POLICY = 1008
    TOO_BIG = 1009
    UNAUTHORIZED = 4001  # no/bad/expired token, or no auth message in time
    NOT_ON_STAGE = 4003  # not (or no longer) a host, co-host or speaker
    NOT_FOUND = 4004
    REPLACED = 4009  # the same member connected again elsewhere
    SPACE_ENDED = 4010
    IDLE = 4011  # nothing heard from the client within the idle timeout


class ProtocolError(PnyxError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorKind.INVALID, message, code="bad_message")


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    v: Literal[1] = 1


# -- client → server ---------------------------------------------------------------------
class Auth(_Msg):
    type: Literal["auth"] = "auth"
    token: str = Field(max_length=4096)


class Ping(_Msg):
    type: Literal["ping"] = "ping"
    seq: int = Field(ge=0)


class Pong(_Msg):
    type: Literal["pong"] = "pong"
    seq: int = Field(ge=0)


ClientMessage = Annotated[Auth | Ping | Pong, Field(discriminator="type")]


# -- server → client ---------------------------------------------------------------------
class Welcome(_Msg):
    type: Literal["welcome"] = "welcome"
    space: str
    you: str
    role: Role
    version: int  # the space's state version at the time of joining
    ping_s: float


class HandRaised(_Msg):
    type: Literal["hand_raised"] = "hand_raised"
    handle: str


class HandLowered(_Msg):
    type: Literal["hand_lowered"] = "hand_lowered"
    handle: str
    by: str


class Invited(_Msg):
    type: Literal["invited"] = "invited"
    handle: str
    role: Role
    by: str


class InvitationAnswered(_Msg):
    type: Literal["invitation_answered"] = "invitation_answered"
    handle: str
    accepted: bool


class RoleChanged(_Msg):
    type: Literal["role_changed"] = "role_changed"
    handle: str
    old: Role
    new: Role
    by: str


class Muted(_Msg):
    type: Literal["muted"] = "muted"
    handle: str
    by: str


class Unmuted(_Msg):
    type: Literal["unmuted"] = "unmuted"
    handle: str


class MemberRemoved(_Msg):
    type: Literal["member_removed"] = "member_removed"
    handle: str
    by: str
    blocked: bool


class Pinned(_Msg):
    type: Literal["pinned"] = "pinned"
    url: str | None
    by: str


class SpeakPolicyChanged(_Msg):
    type: Literal["speak_policy_changed"] = "speak_policy_changed"
    policy: SpeakPolicy
    by: str


class HostAway(_Msg):
    type: Literal["host_away"] = "host_away"
    since: float


class HostBack(_Msg):
    type: Literal["host_back"] = "host_back"


class SpaceStarted(_Msg):
    type: Literal["space_started"] = "space_started"


class SpaceEnded(_Msg):
    type: Literal["space_ended"] = "space_ended"
    reason: EndReason


class Error(_Msg):
    type: Literal["error"] = "error"
    code: str
    message: str


ServerMessage = Annotated[
    Welcome
    | Ping
    | Pong
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
    | SpaceStarted
    | SpaceEnded
    | Error,
    Field(discriminator="type"),
]

_client = TypeAdapter[Auth | Ping | Pong](ClientMessage)
_server = TypeAdapter[BaseModel](ServerMessage)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "message"
    return f"{where}: {err['msg']}"


def decode_client(data: str | bytes) -> Auth | Ping | Pong:
    try:
        return _client.validate_json(data)
    except ValidationError as exc:
        raise ProtocolError(f"bad message ({_first_error(exc)})") from exc


def decode_server(data: str | bytes) -> BaseModel:
    """For clients and tests: parse any server message."""
    try:
        return _server.validate_json(data)
    except ValidationError as exc:
        raise ProtocolError(f"bad message ({_first_error(exc)})") from exc


def encode(message: BaseModel) -> str:
    return message.model_dump_json()


def from_event(event: ev.Event) -> BaseModel:
    """The wire message announcing a domain event to stage members."""
    match event:
        case ev.SpaceStarted():
            return SpaceStarted()
        case ev.SpaceEnded(reason=reason):
            return SpaceEnded(reason=reason)
        case ev.HandRaised(handle=h):
            return HandRaised(handle=h)
        case ev.HandLowered(handle=h, by=by):
            return HandLowered(handle=h, by=by)
        case ev.Invited(handle=h, role=role, by=by):
            return Invited(handle=h, role=role, by=by)
        case ev.InvitationAnswered(handle=h, accepted=accepted):
            return InvitationAnswered(handle=h, accepted=accepted)
        case ev.RoleChanged(handle=h, old=old, new=new, by=by):
            return RoleChanged(handle=h, old=old, new=new, by=by)
        case ev.Muted(handle=h, by=by):
            return Muted(handle=h, by=by)
        case ev.Unmuted(handle=h):
            return Unmuted(handle=h)
        case ev.MemberRemoved(handle=h, by=by, blocked=blocked):
            return MemberRemoved(handle=h, by=by, blocked=blocked)
        case ev.Pinned(url=url, by=by):
            return Pinned(url=url, by=by)
        case ev.SpeakPolicyChanged(policy=policy, by=by):
            return SpeakPolicyChanged(policy=policy, by=by)
        case ev.HostAway(since=since):
            return HostAway(since=since)
        case ev.HostBack():
            return HostBack()
