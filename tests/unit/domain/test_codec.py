"""Rooms to JSON-safe documents and back, exactly; strict decoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pnyx.domain.codec import RoomDecodeError, room_from_json, room_to_json
from pnyx.domain.room import Hand, Invitation, Member, Room
from pnyx.domain.rules import new_room
from pnyx.domain.types import EndReason, Handle, Limits, Role, SpaceStatus, SpeakPolicy
from pnyx.errors import ErrorKind

from .builders import CO, HOST, LIS, LIS2, SPACE, SPK, T0, make_room

RICH = Room(
    id=SPACE,
    host=HOST,
    title="Élan — a title with ünicode ✓",
    status=SpaceStatus.ENDED,
    speak_policy=SpeakPolicy.FOLLOWED,
    limits=Limits(
        max_cohosts=1, max_speakers=4, host_grace_s=12.5, max_title_len=80, max_pin_len=99
    ),
    members=(
        Member(HOST, Role.HOST),
        Member(CO, Role.COHOST, muted=True),
        Member(SPK, Role.SPEAKER),
    ),
    hands=(Hand(LIS, 1_700_000_000.123456),),
    invitations=(Invitation(LIS2, Role.COHOST, by=HOST),),
    removed=frozenset({Handle("zed"), Handle("amy")}),
    pinned="https://example.org/x",
    host_away_since=1_700_000_001.5,
    started_at=0.1,
    ended_at=1_700_000_999.0,
    end_reason=EndReason.HOST_LEFT,
    version=42,
)

GOLDEN: dict[str, Any] = {
    "id": "sp1",
    "host": "hana",
    "title": "Élan — a title with ünicode ✓",
    "status": "ended",
    "speak_policy": "followed",
    "limits": {
        "max_cohosts": 1,
        "max_speakers": 4,
        "host_grace_s": 12.5,
        "max_title_len": 80,
        "max_pin_len": 99,
    },
    "members": [
        {"handle": "hana", "role": "host", "muted": False},
        {"handle": "cole", "role": "cohost", "muted": True},
        {"handle": "sam", "role": "speaker", "muted": False},
    ],
    "hands": [{"handle": "lee", "raised_at": 1_700_000_000.123456}],
    "invitations": [{"handle": "lou", "role": "cohost", "by": "hana"}],
    "removed": ["amy", "zed"],
    "pinned": "https://example.org/x",
    "host_away_since": 1_700_000_001.5,
    "started_at": 0.1,
    "ended_at": 1_700_000_999.0,
    "end_reason": "host_left",
    "version": 42,
}


def test_golden_document() -> None:
    assert room_to_json(RICH) == GOLDEN


def _through_json(room: Room) -> Room:
    return room_from_json(json.loads(json.dumps(room_to_json(room), allow_nan=False)))


@pytest.mark.parametrize(
    "room",
    [
        RICH,
        make_room(),
        make_room(status=SpaceStatus.SCHEDULED),
        make_room(cohosts=[CO], speakers=[SPK], muted=[SPK], hands=[LIS], removed=[LIS2]),
        new_room(
            SPACE,
            HOST,
            "t",
            scheduled=False,
            speak_policy=SpeakPolicy.NOBODY,
            limits=Limits(),
            now=T0,
        ),
    ],
)
def test_round_trip_is_exact(room: Room) -> None:
    assert room_from_json(room_to_json(room)) == room
    assert _through_json(room) == room


def test_the_document_is_json_only() -> None:
    doc = room_to_json(RICH)
    assert json.loads(json.dumps(doc)) == doc
    assert type(doc["status"]) is str
    assert type(doc["members"][0]["role"]) is str


def test_integral_times_decode_as_floats() -> None:
    doc = room_to_json(RICH) | {"started_at": 5, "ended_at": 6}
    room = room_from_json(doc)
    assert room.started_at == 5.0 and type(room.started_at) is float
    assert type(room.ended_at) is float


def _broken(change: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(GOLDEN))
    for path, value in change.items():
        *keys, last = path.split(".")
        target: Any = doc
        for key in keys:
            target = target[int(key)] if key.isdigit() else target[key]
        if value is KeyError:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return doc


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"version": KeyError}, "version"),
        ({"extra": 1}, "extra"),
        ({"version": "42"}, "version"),
        ({"version": True}, "version"),
        ({"version": 4.0}, "version"),
        ({"status": "paused"}, "status"),
        ({"status": 1}, "status"),
        ({"speak_policy": None}, "speak_policy"),
        ({"end_reason": "bored"}, "end_reason"),
        ({"title": None}, "title"),
        ({"pinned": 3}, "pinned"),
        ({"started_at": "now"}, "started_at"),
        ({"host_away_since": False}, "host_away_since"),
        ({"limits.max_speakers": 2.5}, "limits.max_speakers"),
        ({"limits.host_grace_s": "1"}, "limits.host_grace_s"),
        ({"limits.max_cohosts": KeyError}, "limits"),
        ({"limits": [1]}, "limits"),
        ({"members": {}}, "members"),
        ({"members.1.muted": "yes"}, "members[1].muted"),
        ({"members.1.role": "king"}, "members[1].role"),
        ({"members.0": "hana"}, "members[0]"),
        ({"hands.0.raised_at": None}, "hands[0].raised_at"),
        ({"invitations.0.by": 7}, "invitations[0].by"),
        ({"invitations.0.extra": 7}, "invitations[0]"),
        ({"removed": "amy"}, "removed"),
        ({"removed.1": None}, "removed[1]"),
    ],
)
def test_strict_decoding(change: dict[str, Any], mentions: str) -> None:
    with pytest.raises(RoomDecodeError) as info:
        room_from_json(_broken(change))
    assert info.value.kind is ErrorKind.INVALID
    assert info.value.code == "bad_room_document"
    assert mentions in info.value.message


def test_not_an_object() -> None:
    with pytest.raises(RoomDecodeError):
        room_from_json([])  # type: ignore[arg-type]
