"""Raising and lowering hands, under each speak policy."""

from __future__ import annotations

import pytest

from pnyx.domain.commands import LowerHand, RaiseHand
from pnyx.domain.events import HandLowered, HandRaised
from pnyx.domain.room import Hand
from pnyx.domain.types import Handle, SpeakPolicy
from pnyx.errors import ErrorKind

from .builders import CO, HOST, LIS, LIS2, NOW, SPK, T0, accept, make_room, reject

FORBIDDEN, CONFLICT = ErrorKind.FORBIDDEN, ErrorKind.CONFLICT


def test_a_listener_raises_a_hand() -> None:
    room = make_room(hands=[LIS2])
    d = accept(room, RaiseHand(LIS), now=NOW)
    assert d.events == (HandRaised(LIS),)
    assert d.room.hands == (Hand(LIS2, T0), Hand(LIS, NOW))  # oldest first
    assert d.room.members == room.members


@pytest.mark.parametrize(
    ("policy", "followed", "code"),
    [
        (SpeakPolicy.EVERYONE, False, None),
        (SpeakPolicy.EVERYONE, True, None),
        (SpeakPolicy.FOLLOWED, True, None),
        (SpeakPolicy.FOLLOWED, False, "not_followed"),
        (SpeakPolicy.NOBODY, True, "invite_only"),
        (SpeakPolicy.NOBODY, False, "invite_only"),
    ],
)
def test_speak_policy(policy: SpeakPolicy, followed: bool, code: str | None) -> None:
    room = make_room(policy=policy)
    command = RaiseHand(LIS, followed_by_host=followed)
    if code is None:
        assert accept(room, command).room.hand_of(LIS) == Hand(LIS, NOW)
    else:
        reject(room, command, FORBIDDEN, code)


@pytest.mark.parametrize("actor", [HOST, CO, SPK])
def test_stage_members_do_not_raise_hands(actor: Handle) -> None:
    reject(make_room(cohosts=[CO], speakers=[SPK]), RaiseHand(actor), CONFLICT, "already_on_stage")


def test_a_removed_listener_cannot_raise_a_hand() -> None:
    reject(make_room(removed=[LIS]), RaiseHand(LIS), FORBIDDEN, "removed")


def test_one_hand_each() -> None:
    reject(make_room(hands=[LIS]), RaiseHand(LIS), CONFLICT, "hand_already_raised")


def test_a_listener_lowers_their_own_hand() -> None:
    room = make_room(hands=[LIS, LIS2])
    d = accept(room, LowerHand(LIS, LIS))
    assert d.events == (HandLowered(LIS, by=LIS),)
    assert [h.handle for h in d.room.hands] == [LIS2]


@pytest.mark.parametrize("moderator", [HOST, CO])
def test_a_moderator_declines_a_hand(moderator: Handle) -> None:
    room = make_room(cohosts=[CO], hands=[LIS, LIS2])
    d = accept(room, LowerHand(moderator, LIS2))
    assert d.events == (HandLowered(LIS2, by=moderator),)
    assert [h.handle for h in d.room.hands] == [LIS]


@pytest.mark.parametrize("actor", [SPK, LIS2])
def test_others_cannot_lower_a_hand(actor: Handle) -> None:
    room = make_room(speakers=[SPK], hands=[LIS, LIS2])
    reject(room, LowerHand(actor, LIS), FORBIDDEN, "moderators_only")


@pytest.mark.parametrize(("actor", "target"), [(LIS, LIS), (HOST, LIS), (CO, SPK)])
def test_lowering_no_hand_is_a_conflict(actor: Handle, target: Handle) -> None:
    room = make_room(cohosts=[CO], speakers=[SPK], hands=[LIS2])
    reject(room, LowerHand(actor, target), CONFLICT, "no_hand")


def test_raise_lower_raise_again() -> None:
    room = make_room()
    room = accept(room, RaiseHand(LIS), now=NOW).room
    room = accept(room, LowerHand(LIS, LIS), now=NOW + 1).room
    room = accept(room, RaiseHand(LIS), now=NOW + 2).room
    assert room.hands == (Hand(LIS, NOW + 2),)
