"""The permission table against docs/architecture.md, written out independently, and the guard."""

from __future__ import annotations

import pytest

from pnyx.domain.errors import RuleViolation
from pnyx.domain.permissions import DENIALS, PERMISSIONS, Action, require
from pnyx.domain.types import Handle, Role
from pnyx.errors import ErrorKind

from .builders import CO, CO2, HOST, LIS, SPK, SPK2, make_room

A = Action
# docs/architecture.md: host/co-host moderate; host only: end the space, add or remove co-hosts;
# stage members handle their own microphone; listeners ask to speak.
EXPECTED: dict[Role, set[Action]] = {
    Role.HOST: {
        A.START_SPACE,
        A.END_SPACE,
        A.REPORT_HOST_PRESENCE,
        A.APPROVE_HAND,
        A.DECLINE_HAND,
        A.INVITE,
        A.INVITE_AUDIENCE,
        A.MANAGE_COHOSTS,
        A.MOVE_TO_AUDIENCE,
        A.MUTE_SELF,
        A.UNMUTE_SELF,
        A.MUTE_OTHER,
        A.REMOVE_MEMBER,
        A.SET_SPEAK_POLICY,
        A.PIN,
        A.SEE_AUDIENCE,
        A.SEE_ANALYTICS,
        A.DELETE_RECORDING,
    },
    Role.COHOST: {
        A.APPROVE_HAND,
        A.DECLINE_HAND,
        A.INVITE,
        A.INVITE_AUDIENCE,
        A.MOVE_TO_AUDIENCE,
        A.LEAVE_STAGE,
        A.MUTE_SELF,
        A.UNMUTE_SELF,
        A.MUTE_OTHER,
        A.REMOVE_MEMBER,
        A.SET_SPEAK_POLICY,
        A.PIN,
        A.SEE_AUDIENCE,
    },
    Role.SPEAKER: {A.LEAVE_STAGE, A.MUTE_SELF, A.UNMUTE_SELF},
    Role.LISTENER: {A.RAISE_HAND},
}
ACTOR: dict[Role, Handle] = {
    Role.HOST: HOST,
    Role.COHOST: CO,
    Role.SPEAKER: SPK,
    Role.LISTENER: LIS,
}
ROOM = make_room(cohosts=[CO, CO2], speakers=[SPK, SPK2])


def test_table_matches_design() -> None:
    assert {role: set(actions) for role, actions in PERMISSIONS.items()} == EXPECTED


def test_every_action_has_a_denial_and_moderate_host_is_held_by_nobody() -> None:
    assert set(DENIALS) == set(Action)
    held = set().union(*PERMISSIONS.values())
    assert set(Action) - held == {A.MODERATE_HOST}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_require_follows_the_table(role: Role, action: Action) -> None:
    actor = ACTOR[role]
    assert ROOM.role_of(actor) is role
    if action in EXPECTED[role]:
        require(ROOM, actor, action)
        return
    with pytest.raises(RuleViolation) as info:
        require(ROOM, actor, action)
    assert info.value.kind is ErrorKind.FORBIDDEN
    assert info.value.code == DENIALS[action][0]
    assert info.value.message == DENIALS[action][1]


@pytest.mark.parametrize(
    ("action", "code"),
    [
        (A.START_SPACE, "host_only"),
        (A.END_SPACE, "host_only"),
        (A.MANAGE_COHOSTS, "host_only"),
        (A.PIN, "moderators_only"),
        (A.MUTE_OTHER, "moderators_only"),
        (A.LEAVE_STAGE, "host_cannot_leave"),
        (A.MODERATE_HOST, "host_protected"),
        (A.UNMUTE_SELF, "stage_only"),
        (A.SEE_AUDIENCE, "moderators_only"),
        (A.SEE_ANALYTICS, "host_only"),
    ],
)
def test_denial_codes(action: Action, code: str) -> None:
    assert DENIALS[action][0] == code


# (actor role, targeted action) -> the target roles it may be aimed at.
ALLOWED_ON: dict[tuple[Role, Action], set[Role]] = {
    (Role.HOST, A.MUTE_OTHER): {Role.COHOST, Role.SPEAKER, Role.LISTENER},
    (Role.COHOST, A.MUTE_OTHER): {Role.COHOST, Role.SPEAKER, Role.LISTENER},
    (Role.HOST, A.MOVE_TO_AUDIENCE): {Role.COHOST, Role.SPEAKER, Role.LISTENER},
    (Role.COHOST, A.MOVE_TO_AUDIENCE): {Role.SPEAKER, Role.LISTENER},
    (Role.HOST, A.REMOVE_MEMBER): {Role.COHOST, Role.SPEAKER, Role.LISTENER},
    (Role.COHOST, A.REMOVE_MEMBER): {Role.SPEAKER, Role.LISTENER},
}
# Someone else in each role, for every actor.
OTHER: dict[Role, Handle] = {
    Role.HOST: HOST,
    Role.COHOST: CO2,
    Role.SPEAKER: SPK2,
    Role.LISTENER: Handle("lou"),
}
TARGETED = [A.MUTE_OTHER, A.MOVE_TO_AUDIENCE, A.REMOVE_MEMBER, A.DECLINE_HAND, A.INVITE]
CASES = [
    (actor_role, target_role, action)
    for actor_role in Role
    for target_role in Role
    for action in TARGETED
    if ACTOR[actor_role] != OTHER[target_role]  # there is one host
]


@pytest.mark.parametrize(("actor_role", "target_role", "action"), CASES)
def test_require_on_a_target(actor_role: Role, target_role: Role, action: Action) -> None:
    actor, target = ACTOR[actor_role], OTHER[target_role]
    assert ROOM.role_of(target) is target_role
    unescalated = action in (A.DECLINE_HAND, A.INVITE) and action in EXPECTED[actor_role]
    if unescalated or target_role in ALLOWED_ON.get((actor_role, action), set()):
        require(ROOM, actor, action, target=target)
        return
    with pytest.raises(RuleViolation) as info:
        require(ROOM, actor, action, target=target)
    assert info.value.kind is ErrorKind.FORBIDDEN
    if action not in EXPECTED[actor_role]:
        assert info.value.code == "moderators_only"
    elif target_role is Role.HOST:
        assert info.value.code == "host_protected"
    else:
        assert info.value.code == "host_only"


def test_aiming_at_yourself_is_never_escalated() -> None:
    require(ROOM, HOST, A.MUTE_OTHER, target=HOST)
    require(ROOM, CO, A.REMOVE_MEMBER, target=CO)


def test_a_removed_account_may_do_nothing() -> None:
    room = make_room(removed=[LIS])
    with pytest.raises(RuleViolation) as info:
        require(room, LIS, A.RAISE_HAND)
    assert (info.value.kind, info.value.code) == (ErrorKind.FORBIDDEN, "removed")
    require(room, Handle("lou"), A.RAISE_HAND)
