"""A room as a JSON-safe document and back, exactly: ``room_from_json(room_to_json(r))
== r``. Enums are stored as their values, tuples as lists, ``removed`` as a sorted list.

Decoding is strict (every key present, nothing unknown, right types), since the document
comes from our own store and a surprise there is a bug to hear about, not to paper over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, fields
from enum import StrEnum
from typing import Any, TypeVar

from pnyx.domain.room import Hand, Invitation, Member, Room
from pnyx.domain.types import EndReason, Handle, Limits, Role, SpaceId, SpaceStatus, SpeakPolicy
from pnyx.errors import ErrorKind, PnyxError

JSON = dict[str, Any]
E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


class RoomDecodeError(PnyxError):
    """A stored room document that is not one ``room_to_json`` wrote."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorKind.INVALID, message, code="bad_room_document")


def room_to_json(room: Room) -> JSON:
    return {
        "id": room.id,
        "host": room.host,
        "title": room.title,
        "status": room.status.value,
        "speak_policy": room.speak_policy.value,
        "limits": asdict(room.limits),
        "members": [
            {"handle": m.handle, "role": m.role.value, "muted": m.muted} for m in room.members
        ],
        "hands": [{"handle": h.handle, "raised_at": h.raised_at} for h in room.hands],
        "invitations": [
            {"handle": i.handle, "role": i.role.value, "by": i.by} for i in room.invitations
        ],
        "removed": sorted(room.removed),
        "pinned": room.pinned,
        "host_away_since": room.host_away_since,
        "started_at": room.started_at,
        "ended_at": room.ended_at,
        "end_reason": room.end_reason.value if room.end_reason is not None else None,
        "version": room.version,
    }


# -- decoding ------------------------------------------------------------------------


def _object(value: object, where: str, keys: frozenset[str]) -> JSON:
    if not isinstance(value, dict):
        raise RoomDecodeError(f"{where}: expected an object")
    if set(value) != keys:
        missing, unknown = sorted(keys - set(value)), sorted(set(value) - keys)
        raise RoomDecodeError(f"{where}: missing keys {missing}, unknown keys {unknown}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise RoomDecodeError(f"{where}: expected a string")
    return value


def _int(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise RoomDecodeError(f"{where}: expected an integer")
    return value


def _float(value: object, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise RoomDecodeError(f"{where}: expected a number")
    return float(value)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise RoomDecodeError(f"{where}: expected true or false")
    return value


def _enum(cls: type[E], value: object, where: str) -> E:
    try:
        return cls(_str(value, where))
    except ValueError:
        allowed = ", ".join(e.value for e in cls)
        raise RoomDecodeError(f"{where}: expected one of {allowed}") from None


def _optional(read: Callable[[object, str], T], value: object, where: str) -> T | None:
    return None if value is None else read(value, where)


def _list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise RoomDecodeError(f"{where}: expected a list")
    return value


_LIMIT_FIELDS = {f.name: type(f.default) for f in fields(Limits)}


def _limits(value: object) -> Limits:
    doc = _object(value, "limits", frozenset(_LIMIT_FIELDS))
    read = {int: _int, float: _float}
    values: JSON = {k: read[t](doc[k], f"limits.{k}") for k, t in _LIMIT_FIELDS.items()}
    return Limits(**values)


_MEMBER = frozenset({"handle", "role", "muted"})
_HAND = frozenset({"handle", "raised_at"})
_INVITATION = frozenset({"handle", "role", "by"})


def _member(value: object, where: str) -> Member:
    doc = _object(value, where, _MEMBER)
    return Member(
        Handle(_str(doc["handle"], f"{where}.handle")),
        _enum(Role, doc["role"], f"{where}.role"),
        muted=_bool(doc["muted"], f"{where}.muted"),
    )


def _hand(value: object, where: str) -> Hand:
    doc = _object(value, where, _HAND)
    return Hand(
        Handle(_str(doc["handle"], f"{where}.handle")),
        _float(doc["raised_at"], f"{where}.raised_at"),
    )


def _invitation(value: object, where: str) -> Invitation:
    doc = _object(value, where, _INVITATION)
    return Invitation(
        Handle(_str(doc["handle"], f"{where}.handle")),
        _enum(Role, doc["role"], f"{where}.role"),
        by=Handle(_str(doc["by"], f"{where}.by")),
    )


def _handle(value: object, where: str) -> Handle:
    return Handle(_str(value, where))


def _items(read: Callable[[object, str], T], value: object, where: str) -> tuple[T, ...]:
    return tuple(read(item, f"{where}[{n}]") for n, item in enumerate(_list(value, where)))


_ROOM = frozenset(
    {
        "id",
        "host",
        "title",
        "status",
        "speak_policy",
        "limits",
        "members",
        "hands",
        "invitations",
        "removed",
        "pinned",
        "host_away_since",
        "started_at",
        "ended_at",
        "end_reason",
        "version",
    }
)


def room_from_json(doc: JSON) -> Room:
    """The room ``room_to_json`` encoded; ``RoomDecodeError`` (kind INVALID) otherwise."""
    d = _object(doc, "room", _ROOM)
    return Room(
        id=SpaceId(_str(d["id"], "id")),
        host=_handle(d["host"], "host"),
        title=_str(d["title"], "title"),
        status=_enum(SpaceStatus, d["status"], "status"),
        speak_policy=_enum(SpeakPolicy, d["speak_policy"], "speak_policy"),
        limits=_limits(d["limits"]),
        members=_items(_member, d["members"], "members"),
        hands=_items(_hand, d["hands"], "hands"),
        invitations=_items(_invitation, d["invitations"], "invitations"),
        removed=frozenset(_items(_handle, d["removed"], "removed")),
        pinned=_optional(_str, d["pinned"], "pinned"),
        host_away_since=_optional(_float, d["host_away_since"], "host_away_since"),
        started_at=_optional(_float, d["started_at"], "started_at"),
        ended_at=_optional(_float, d["ended_at"], "ended_at"),
        end_reason=_optional(lambda v, w: _enum(EndReason, v, w), d["end_reason"], "end_reason"),
        version=_int(d["version"], "version"),
    )
