"""Mutes, removals, the pinned link and the speak policy."""

from __future__ import annotations

import pytest

from pnyx.domain.commands import Mute, Pin, RaiseHand, RemoveMember, SetRole, SetSpeakPolicy, Unmute
from pnyx.domain.events import MemberRemoved, Muted, Pinned, SpeakPolicyChanged, Unmuted
from pnyx.domain.room import Member
from pnyx.domain.types import Handle, Limits, Role, SpeakPolicy
from pnyx.errors import ErrorKind

from .builders import CO, CO2, HOST, LIS, LIS2, SPK, SPK2, accept, make_room, reject

FORBIDDEN, CONFLICT, INVALID = ErrorKind.FORBIDDEN, ErrorKind.CONFLICT, ErrorKind.INVALID
ROOM = make_room(cohosts=[CO, CO2], speakers=[SPK, SPK2], hands=[LIS])

# -- mute -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "target"),
    [
        (HOST, CO),
        (HOST, SPK),
        (CO, SPK),
        (CO, CO2),  # any stage member but the host
        (HOST, HOST),  # everyone on stage may mute themself
        (CO, CO),
        (SPK, SPK),
    ],
)
def test_mute(actor: Handle, target: Handle) -> None:
    d = accept(ROOM, Mute(actor, target))
    assert d.events == (Muted(target, by=actor),)
    after = {m.handle: m for m in d.room.members}
    assert after[target].muted
    assert [m.handle for m in d.room.members] == [m.handle for m in ROOM.members]
    assert [m for m in d.room.members if m.handle != target] == [
        m for m in ROOM.members if m.handle != target
    ]


@pytest.mark.parametrize(
    ("actor", "target", "code"),
    [
        (CO, HOST, "host_protected"),
        (SPK, SPK2, "moderators_only"),
        (SPK, HOST, "moderators_only"),
        (LIS, SPK, "moderators_only"),
        (LIS, LIS, "stage_only"),
    ],
)
def test_who_may_not_mute(actor: Handle, target: Handle, code: str) -> None:
    reject(ROOM, Mute(actor, target), FORBIDDEN, code)


@pytest.mark.parametrize("actor", [HOST, CO])
def test_muting_a_listener_is_a_conflict(actor: Handle) -> None:
    reject(ROOM, Mute(actor, LIS), CONFLICT, "not_on_stage")


@pytest.mark.parametrize("actor", [HOST, SPK])
def test_muting_twice_is_a_conflict(actor: Handle) -> None:
    room = make_room(speakers=[SPK], muted=[SPK])
    reject(room, Mute(actor, SPK), CONFLICT, "already_muted")


# -- unmute ---------------------------------------------------------------------------------


@pytest.mark.parametrize("member", [HOST, CO, SPK])
def test_a_muted_member_unmutes_themself(member: Handle) -> None:
    room = make_room(cohosts=[CO], speakers=[SPK], muted=[HOST, CO, SPK])
    d = accept(room, Unmute(member, member))
    assert d.events == (Unmuted(member),)
    assert d.room.member(member) == Member(member, room.role_of(member), muted=False)
    assert sum(m.muted for m in d.room.members) == 2


@pytest.mark.parametrize(("actor", "target"), [(HOST, SPK), (CO, SPK), (HOST, CO), (SPK, HOST)])
def test_nobody_unmutes_someone_else(actor: Handle, target: Handle) -> None:
    room = make_room(cohosts=[CO], speakers=[SPK], muted=[HOST, CO, SPK])
    reject(room, Unmute(actor, target), FORBIDDEN, "only_self_unmute")


def test_unmuting_when_not_muted_is_a_conflict() -> None:
    reject(ROOM, Unmute(SPK, SPK), CONFLICT, "not_muted")


def test_a_listener_has_no_microphone() -> None:
    reject(ROOM, Unmute(LIS, LIS), FORBIDDEN, "stage_only")


def test_mute_survives_promotion_but_not_leaving_the_stage() -> None:
    room = accept(ROOM, Mute(HOST, SPK)).room
    room = accept(room, SetRole(HOST, CO2, Role.LISTENER)).room
    room = accept(room, SetRole(HOST, SPK, Role.COHOST)).room
    assert room.member(SPK) == Member(SPK, Role.COHOST, muted=True)
    room = accept(room, SetRole(SPK, SPK, Role.LISTENER)).room
    assert room.member(SPK) is None


# -- remove ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "target"),
    [(HOST, CO), (HOST, SPK), (HOST, LIS), (HOST, LIS2), (CO, SPK), (CO, LIS), (CO, LIS2)],
)
@pytest.mark.parametrize("block", [False, True])
def test_remove(actor: Handle, target: Handle, block: bool) -> None:
    room = make_room(
        cohosts=[CO, CO2],
        speakers=[SPK, SPK2],
        hands=[LIS, LIS2],
        invitations=[(LIS, Role.SPEAKER)],
    )
    d = accept(room, RemoveMember(actor, target, block=block))
    assert d.events == (MemberRemoved(target, by=actor, blocked=block),)
    assert d.room.removed == {target}
    assert d.room.member(target) is None
    assert d.room.hand_of(target) is None
    assert d.room.invitation_of(target) is None
    untouched = [m for m in room.members if m.handle != target]
    assert list(d.room.members) == untouched
    assert [h for h in d.room.hands if h.handle != target] == list(d.room.hands)
    assert len(d.room.hands) == len(room.hands) - (room.hand_of(target) is not None)


def test_removing_an_unknown_listener_blocks_them_from_the_space() -> None:
    stranger = Handle("stranger")
    d = accept(ROOM, RemoveMember(CO, stranger))
    assert stranger in d.room.removed
    assert d.room.members == ROOM.members


@pytest.mark.parametrize(
    ("actor", "target", "code"),
    [
        (CO, HOST, "host_protected"),
        (CO, CO2, "host_only"),
        (SPK, LIS, "moderators_only"),
        (SPK, SPK2, "moderators_only"),
        (LIS, LIS2, "moderators_only"),
    ],
)
def test_who_may_not_remove_whom(actor: Handle, target: Handle, code: str) -> None:
    reject(ROOM, RemoveMember(actor, target), FORBIDDEN, code)


@pytest.mark.parametrize("actor", [HOST, CO, SPK, LIS])
def test_removing_yourself_is_invalid(actor: Handle) -> None:
    reject(ROOM, RemoveMember(actor, actor), INVALID, "cannot_remove_self")


def test_removing_twice_is_a_conflict() -> None:
    reject(make_room(removed=[LIS]), RemoveMember(HOST, LIS), CONFLICT, "already_removed")


def test_a_removed_account_stays_out() -> None:
    room = accept(ROOM, RemoveMember(HOST, SPK)).room
    reject(room, RaiseHand(SPK), FORBIDDEN, "removed")
    reject(room, SetRole(HOST, SPK, Role.SPEAKER), FORBIDDEN, "removed")
    reject(room, SetRole(HOST, SPK, Role.COHOST), FORBIDDEN, "removed")


# -- pin --------------------------------------------------------------------------------------

URL = "https://example.org/agenda?day=1#top"


@pytest.mark.parametrize("actor", [HOST, CO])
def test_pin_and_unpin(actor: Handle) -> None:
    d = accept(ROOM, Pin(actor, URL))
    assert d.events == (Pinned(URL, by=actor),)
    assert d.room.pinned == URL
    d = accept(d.room, Pin(actor, "http://example.com"))
    assert d.room.pinned == "http://example.com"
    d = accept(d.room, Pin(actor, None))
    assert d.events == (Pinned(None, by=actor),)
    assert d.room.pinned is None


@pytest.mark.parametrize("actor", [SPK, LIS])
def test_only_moderators_pin(actor: Handle) -> None:
    reject(ROOM, Pin(actor, URL), FORBIDDEN, "moderators_only")
    reject(make_room(speakers=[SPK], pinned=URL), Pin(actor, None), FORBIDDEN, "moderators_only")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "example.org",
        "ftp://example.org/",
        "javascript:alert(1)",
        "data:text/html,hi",
        "http://",
        "https:///path",
        "https://exa mple.org/",
        " https://example.org/",
        "https://example.org/\n",
        "https://example.org/\x00",
        "http://[::1",
        "https://example.org/" + "a" * 12,  # 32 characters, over the limit of 30
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    room = make_room(limits=Limits(max_pin_len=30))
    reject(room, Pin(HOST, url), INVALID, "bad_url")


@pytest.mark.parametrize(
    "url", ["https://example.org/" + "a" * 10, "HTTP://EXAMPLE.ORG", "http://[::1]/"]
)
def test_good_urls_are_pinned(url: str) -> None:
    room = make_room(limits=Limits(max_pin_len=30))
    assert accept(room, Pin(HOST, url)).room.pinned == url


def test_pinning_what_is_pinned_is_a_conflict() -> None:
    reject(make_room(pinned=URL), Pin(HOST, URL), CONFLICT, "no_change")
    reject(make_room(), Pin(HOST, None), CONFLICT, "no_change")


# -- speak policy ---------------------------------------------------------------------------


@pytest.mark.parametrize("actor", [HOST, CO])
@pytest.mark.parametrize("policy", [SpeakPolicy.FOLLOWED, SpeakPolicy.NOBODY])
def test_set_speak_policy(actor: Handle, policy: SpeakPolicy) -> None:
    d = accept(ROOM, SetSpeakPolicy(actor, policy))
    assert d.events == (SpeakPolicyChanged(policy, by=actor),)
    assert d.room.speak_policy is policy
    assert d.room.hands == ROOM.hands  # hands already raised stay up


@pytest.mark.parametrize("actor", [SPK, LIS])
def test_only_moderators_set_the_speak_policy(actor: Handle) -> None:
    reject(ROOM, SetSpeakPolicy(actor, SpeakPolicy.NOBODY), FORBIDDEN, "moderators_only")


def test_the_same_policy_again_is_a_conflict() -> None:
    reject(ROOM, SetSpeakPolicy(HOST, SpeakPolicy.EVERYONE), CONFLICT, "no_change")
