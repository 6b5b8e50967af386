"""Rooms in a known state, and the two assertions every rule test makes: an accepted
command bumps the version by one and says what happened; a rejected one raises the
right kind and code and leaves the room exactly as it was."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import pytest

from pnyx.domain.codec import room_to_json
from pnyx.domain.commands import Command
from pnyx.domain.errors import RuleViolation
from pnyx.domain.room import Hand, Invitation, Member, Room
from pnyx.domain.rules import Decision, decide
from pnyx.domain.types import Handle, Limits, Role, SpaceId, SpaceStatus, SpeakPolicy
from pnyx.errors import ErrorKind

SPACE = SpaceId("sp1")
HOST = Handle("hana")
CO = Handle("cole")
CO2 = Handle("cora")
SPK = Handle("sam")
SPK2 = Handle("sia")
LIS = Handle("lee")
LIS2 = Handle("lou")
T0 = 1_000.0
NOW = 1_100.0


def make_room(
    *,
    status: SpaceStatus = SpaceStatus.LIVE,
    cohosts: Iterable[Handle] = (),
    speakers: Iterable[Handle] = (),
    muted: Iterable[Handle] = (),
    hands: Iterable[Handle] = (),
    invitations: Iterable[tuple[Handle, Role]] = (),
    removed: Iterable[Handle] = (),
    policy: SpeakPolicy = SpeakPolicy.EVERYONE,
    limits: Limits | None = None,
    pinned: str | None = None,
    host_away_since: float | None = None,
    version: int = 7,
) -> Room:
    muted = set(muted)
    stage = [(HOST, Role.HOST)]
    stage += [(h, Role.COHOST) for h in cohosts]
    stage += [(h, Role.SPEAKER) for h in speakers]
    return Room(
        id=SPACE,
        host=HOST,
        title="Town hall",
        status=status,
        speak_policy=policy,
        limits=limits or Limits(),
        members=tuple(Member(h, r, muted=h in muted) for h, r in stage),
        hands=tuple(Hand(h, T0 + n) for n, h in enumerate(hands)),
        invitations=tuple(Invitation(h, r, by=HOST) for h, r in invitations),
        removed=frozenset(removed),
        pinned=pinned,
        host_away_since=host_away_since,
        started_at=None if status is SpaceStatus.SCHEDULED else T0,
        version=version,
    )


def accept(room: Room, command: Command, now: float = NOW) -> Decision:
    """Decide a command that must be accepted; check the version rule."""
    decision = decide(room, command, now)
    assert decision.events, "an accepted command says what happened"
    assert decision.room.version == room.version + 1
    assert decision.room != room
    return decision


def reject(
    room: Room, command: Command, kind: ErrorKind, code: str, now: float = NOW
) -> RuleViolation:
    """Decide a command that must be refused with ``kind``/``code``; check that nothing
    about the room changed."""
    before = copy.deepcopy(room)
    before_doc = room_to_json(room)
    with pytest.raises(RuleViolation) as info:
        decide(room, command, now)
    assert info.value.kind is kind, info.value
    assert info.value.code == code, info.value
    assert info.value.message
    assert room == before
    assert room_to_json(room) == before_doc
    return info.value
