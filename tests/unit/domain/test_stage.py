"""Who is on stage: approving hands, invitations, promotions, demotions, leaving."""

from __future__ import annotations

import pytest

from pnyx.domain.commands import AnswerInvitation, RaiseHand, SetRole
from pnyx.domain.events import InvitationAnswered, Invited, RoleChanged
from pnyx.domain.room import Hand, Invitation, Member
from pnyx.domain.rules.stage import SET_ROLE, Move
from pnyx.domain.types import Handle, Limits, Role
from pnyx.errors import ErrorKind

from .builders import CO, CO2, HOST, LIS, LIS2, NOW, SPK, SPK2, T0, accept, make_room, reject

FORBIDDEN, CONFLICT, INVALID = ErrorKind.FORBIDDEN, ErrorKind.CONFLICT, ErrorKind.INVALID
L, S, C, H = Role.LISTENER, Role.SPEAKER, Role.COHOST, Role.HOST
ONE_SEAT = Limits(max_speakers=1, max_cohosts=1)
LIS3 = Handle("lia")


def test_every_role_change_but_to_host_has_a_row() -> None:
    changes = {(a, b) for a in Role for b in Role if a is not b and b is not H}
    assert set(SET_ROLE) == changes
    moves = {key: move for key, (_, move) in SET_ROLE.items()}
    assert {key for key, move in moves.items() if move is Move.INVITE} == {(L, S), (L, C)}
    assert {key for key, move in moves.items() if move is Move.STEP_DOWN} == {
        (S, L),
        (C, L),
        (H, L),
    }


# -- approving a raised hand -------------------------------------------------------------


@pytest.mark.parametrize("moderator", [HOST, CO])
def test_approving_a_hand_brings_the_listener_up_at_once(moderator: Handle) -> None:
    room = make_room(cohosts=[CO], speakers=[SPK], hands=[LIS, LIS2])
    d = accept(room, SetRole(moderator, LIS, S))
    assert d.events == (RoleChanged(LIS, old=L, new=S, by=moderator),)
    assert d.room.members == (*room.members, Member(LIS, S))
    assert d.room.hands == (Hand(LIS2, T0 + 1),)


def test_approving_a_hand_drops_a_pending_invitation_too() -> None:
    room = make_room(hands=[LIS], invitations=[(LIS, C)])
    d = accept(room, SetRole(HOST, LIS, S))
    assert d.room.role_of(LIS) is S
    assert d.room.invitations == ()
    assert d.room.hands == ()


def test_approving_into_a_full_stage_is_a_conflict() -> None:
    room = make_room(speakers=[SPK], hands=[LIS], limits=ONE_SEAT)
    reject(room, SetRole(HOST, LIS, S), CONFLICT, "stage_full")


@pytest.mark.parametrize("actor", [SPK, LIS2])
def test_only_moderators_approve_hands(actor: Handle) -> None:
    room = make_room(speakers=[SPK], hands=[LIS, LIS2])
    reject(room, SetRole(actor, LIS, S), FORBIDDEN, "moderators_only")


def test_the_speaker_limit_is_the_configured_one() -> None:
    listeners = [Handle(f"l{n}") for n in range(5)]
    room = make_room(hands=listeners, limits=Limits(max_speakers=4))
    for handle in listeners[:4]:
        room = accept(room, SetRole(HOST, handle, S)).room
    assert room.count(S) == 4
    reject(room, SetRole(HOST, listeners[4], S), CONFLICT, "stage_full")


# -- inviting ------------------------------------------------------------------------------


@pytest.mark.parametrize("moderator", [HOST, CO])
def test_inviting_a_listener_to_speak_is_pending(moderator: Handle) -> None:
    room = make_room(cohosts=[CO])
    d = accept(room, SetRole(moderator, LIS, S))
    assert d.events == (Invited(LIS, S, by=moderator),)
    assert d.room.invitations == (Invitation(LIS, S, by=moderator),)
    assert d.room.members == room.members
    assert d.room.role_of(LIS) is L


@pytest.mark.parametrize("with_hand", [False, True])
def test_the_host_invites_a_listener_to_cohost(with_hand: bool) -> None:
    room = make_room(hands=[LIS] if with_hand else [])
    d = accept(room, SetRole(HOST, LIS, C))
    assert d.events == (Invited(LIS, C, by=HOST),)
    assert d.room.invitations == (Invitation(LIS, C, by=HOST),)
    assert d.room.hands == room.hands  # the hand stays until they accept
    assert d.room.role_of(LIS) is L


def test_only_the_host_invites_cohosts() -> None:
    reject(make_room(cohosts=[CO]), SetRole(CO, LIS, C), FORBIDDEN, "host_only")


@pytest.mark.parametrize("actor", [SPK, LIS2, LIS])
def test_only_moderators_invite(actor: Handle) -> None:
    reject(make_room(speakers=[SPK]), SetRole(actor, LIS, S), FORBIDDEN, "moderators_only")


@pytest.mark.parametrize("role", [S, C])
def test_one_invitation_at_a_time(role: Role) -> None:
    room = make_room(invitations=[(LIS, S)])
    reject(room, SetRole(HOST, LIS, role), CONFLICT, "already_invited")


@pytest.mark.parametrize(("role", "code"), [(S, "stage_full"), (C, "cohosts_full")])
def test_no_invitation_to_a_full_stage(role: Role, code: str) -> None:
    room = make_room(cohosts=[CO], speakers=[SPK], limits=ONE_SEAT)
    reject(room, SetRole(HOST, LIS, role), CONFLICT, code)


@pytest.mark.parametrize("role", [S, C])
def test_removed_accounts_are_not_invited(role: Role) -> None:
    reject(make_room(removed=[LIS]), SetRole(HOST, LIS, role), FORBIDDEN, "removed")


# -- promotion and demotion -----------------------------------------------------------------


def test_the_host_promotes_a_speaker_to_cohost_in_place() -> None:
    room = make_room(speakers=[SPK, SPK2], muted=[SPK])
    d = accept(room, SetRole(HOST, SPK, C))
    assert d.events == (RoleChanged(SPK, old=S, new=C, by=HOST),)
    assert d.room.members == (
        Member(HOST, H),
        Member(SPK, C, muted=True),
        Member(SPK2, S),
    )


def test_promotion_needs_a_free_cohost_seat() -> None:
    room = make_room(cohosts=[CO, CO2], speakers=[SPK])
    reject(room, SetRole(HOST, SPK, C), CONFLICT, "cohosts_full")
    room = make_room(cohosts=[CO], speakers=[SPK], limits=Limits(max_cohosts=1))
    reject(room, SetRole(HOST, SPK, C), CONFLICT, "cohosts_full")


def test_the_host_demotes_a_cohost_to_speaker() -> None:
    room = make_room(cohosts=[CO], speakers=[SPK])
    d = accept(room, SetRole(HOST, CO, S))
    assert d.events == (RoleChanged(CO, old=C, new=S, by=HOST),)
    assert d.room.members == (Member(HOST, H), Member(CO, S), Member(SPK, S))


def test_demotion_needs_a_free_speaker_seat() -> None:
    room = make_room(cohosts=[CO], speakers=[SPK], limits=ONE_SEAT)
    reject(room, SetRole(HOST, CO, S), CONFLICT, "stage_full")


@pytest.mark.parametrize(
    ("actor", "target", "role"),
    [(CO, SPK, C), (CO, CO2, S), (CO, CO, S), (SPK, SPK, C)],
)
def test_only_the_host_manages_cohosts(actor: Handle, target: Handle, role: Role) -> None:
    room = make_room(cohosts=[CO, CO2], speakers=[SPK], limits=Limits(max_cohosts=3))
    reject(room, SetRole(actor, target, role), FORBIDDEN, "host_only")


# -- leaving and being moved back -------------------------------------------------------------


@pytest.mark.parametrize("member", [CO, SPK])
def test_leaving_the_stage_yourself(member: Handle) -> None:
    room = make_room(cohosts=[CO], speakers=[SPK])
    old = room.role_of(member)
    d = accept(room, SetRole(member, member, L))
    assert d.events == (RoleChanged(member, old=old, new=L, by=member),)
    assert d.room.member(member) is None
    assert d.room.role_of(member) is L
    assert len(d.room.members) == 2


def test_the_host_cannot_leave_the_stage() -> None:
    reject(make_room(), SetRole(HOST, HOST, L), FORBIDDEN, "host_cannot_leave")


@pytest.mark.parametrize("moderator", [HOST, CO])
def test_moderators_move_a_speaker_back(moderator: Handle) -> None:
    room = make_room(cohosts=[CO], speakers=[SPK, SPK2], muted=[SPK])
    d = accept(room, SetRole(moderator, SPK, L))
    assert d.events == (RoleChanged(SPK, old=S, new=L, by=moderator),)
    assert [m.handle for m in d.room.members] == [HOST, CO, SPK2]


def test_the_host_moves_a_cohost_back() -> None:
    room = make_room(cohosts=[CO, CO2])
    d = accept(room, SetRole(HOST, CO2, L))
    assert d.events == (RoleChanged(CO2, old=C, new=L, by=HOST),)
    assert [m.handle for m in d.room.members] == [HOST, CO]


@pytest.mark.parametrize(
    ("actor", "target", "code"),
    [
        (CO, CO2, "host_only"),
        (CO, HOST, "host_protected"),
        (SPK, HOST, "moderators_only"),
        (SPK, SPK2, "moderators_only"),
        (SPK, CO, "moderators_only"),
        (LIS, SPK, "moderators_only"),
    ],
)
def test_who_cannot_move_whom_back(actor: Handle, target: Handle, code: str) -> None:
    room = make_room(cohosts=[CO, CO2], speakers=[SPK, SPK2])
    reject(room, SetRole(actor, target, L), FORBIDDEN, code)


@pytest.mark.parametrize(("actor", "role"), [(HOST, C), (HOST, S), (CO, S), (CO, C)])
def test_nobody_changes_the_hosts_role(actor: Handle, role: Role) -> None:
    room = make_room(cohosts=[CO])
    reject(room, SetRole(actor, HOST, role), FORBIDDEN, "host_protected")


@pytest.mark.parametrize(("actor", "target"), [(HOST, LIS), (CO, LIS), (LIS, LIS)])
def test_moving_back_someone_not_on_stage_is_a_conflict(actor: Handle, target: Handle) -> None:
    reject(make_room(cohosts=[CO]), SetRole(actor, target, L), CONFLICT, "not_on_stage")


# -- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("actor", "target"), [(HOST, LIS), (HOST, SPK), (HOST, HOST), (CO, CO)])
def test_nobody_is_made_host(actor: Handle, target: Handle) -> None:
    room = make_room(cohosts=[CO], speakers=[SPK])
    reject(room, SetRole(actor, target, H), INVALID, "cannot_assign_host")


@pytest.mark.parametrize(("target", "role"), [(SPK, S), (CO, C)])
def test_the_same_role_again_is_a_conflict(target: Handle, role: Role) -> None:
    room = make_room(cohosts=[CO], speakers=[SPK])
    reject(room, SetRole(HOST, target, role), CONFLICT, "no_change")


# -- answering an invitation ---------------------------------------------------------------


@pytest.mark.parametrize(("role", "inviter"), [(S, CO), (C, HOST)])
def test_accepting_an_invitation(role: Role, inviter: Handle) -> None:
    room = make_room(cohosts=[CO], speakers=[SPK], hands=[LIS2, LIS])
    room = accept(
        room, SetRole(inviter, LIS, role) if role is C else SetRole(inviter, LIS3, S)
    ).room
    invitee = LIS if role is C else LIS3
    if role is S:  # raising a hand while invited is allowed; accepting lowers it
        room = accept(room, RaiseHand(LIS3)).room
    d = accept(room, AnswerInvitation(invitee, accept=True))
    assert d.events == (
        InvitationAnswered(invitee, accepted=True),
        RoleChanged(invitee, old=L, new=role, by=inviter),
    )
    assert d.room.members == (*room.members, Member(invitee, role))
    assert d.room.invitations == ()
    assert [h.handle for h in d.room.hands] == ([LIS2, LIS] if role is S else [LIS2])


def test_inviting_without_a_hand_then_accepting() -> None:
    room = make_room()
    room = accept(room, SetRole(HOST, LIS, S)).room
    room = accept(room, AnswerInvitation(LIS, accept=True)).room
    assert room.role_of(LIS) is S


def test_declining_an_invitation_keeps_the_hand() -> None:
    room = make_room(hands=[LIS], invitations=[(LIS, C), (LIS2, S)])
    d = accept(room, AnswerInvitation(LIS, accept=False))
    assert d.events == (InvitationAnswered(LIS, accepted=False),)
    assert d.room.invitations == (Invitation(LIS2, S, by=HOST),)
    assert d.room.hands == room.hands
    assert d.room.members == room.members


@pytest.mark.parametrize("answer", [True, False])
def test_answering_without_an_invitation_is_a_conflict(answer: bool) -> None:
    room = make_room(invitations=[(LIS2, S)])
    reject(room, AnswerInvitation(LIS, accept=answer), CONFLICT, "no_invitation")


@pytest.mark.parametrize(("role", "code"), [(S, "stage_full"), (C, "cohosts_full")])
def test_accepting_into_a_full_stage_keeps_the_invitation(role: Role, code: str) -> None:
    room = make_room(cohosts=[CO], speakers=[SPK], invitations=[(LIS, role)], limits=ONE_SEAT)
    reject(room, AnswerInvitation(LIS, accept=True), CONFLICT, code)


def test_an_invitation_waits_for_a_free_seat() -> None:
    room = make_room(hands=[LIS2], limits=ONE_SEAT)
    room = accept(room, SetRole(HOST, LIS, S), now=NOW).room  # invited while a seat is free
    room = accept(room, SetRole(HOST, LIS2, S), now=NOW + 1).room  # the seat goes to a hand
    reject(room, AnswerInvitation(LIS, accept=True), CONFLICT, "stage_full", now=NOW + 2)
    room = accept(room, SetRole(LIS2, LIS2, L), now=NOW + 3).room
    room = accept(room, AnswerInvitation(LIS, accept=True), now=NOW + 4).room
    assert [m.handle for m in room.members] == [HOST, LIS]
