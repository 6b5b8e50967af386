"""Who is on stage: invitations, approving hands, promotions, demotions, stepping down.

``SET_ROLE`` is the table: for the target's role now and the role asked for, the action
the actor needs (checked by ``require``) and what happens: an invitation the target
must accept, a change at once, or a step down to the audience."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from enum import Enum
from types import MappingProxyType

from pnyx.domain.commands import AnswerInvitation, SetRole
from pnyx.domain.errors import conflict, forbidden, invalid
from pnyx.domain.events import Event, InvitationAnswered, Invited, RoleChanged
from pnyx.domain.permissions import Action, require
from pnyx.domain.room import Invitation, Member, Room
from pnyx.domain.rules._base import (
    Outcome,
    check_seat,
    with_member,
    without_invitation,
    without_member,
)
from pnyx.domain.types import Role


class Move(Enum):
    INVITE = "invite"  # pending until the target accepts (AnswerInvitation)
    CHANGE = "change"  # at once, keeping the seat's mute state
    STEP_DOWN = "step_down"  # back to the audience


# (target's role now, role asked for) -> (action needed, what happens). A listener whose
# hand is up is approved at once instead of invited (APPROVE_HAND); someone stepping down
# by themself needs LEAVE_STAGE instead of MOVE_TO_AUDIENCE.
SET_ROLE: Mapping[tuple[Role, Role], tuple[Action, Move]] = MappingProxyType(
    {
        (Role.LISTENER, Role.SPEAKER): (Action.INVITE, Move.INVITE),
        (Role.LISTENER, Role.COHOST): (Action.MANAGE_COHOSTS, Move.INVITE),
        (Role.SPEAKER, Role.COHOST): (Action.MANAGE_COHOSTS, Move.CHANGE),
        (Role.COHOST, Role.SPEAKER): (Action.MANAGE_COHOSTS, Move.CHANGE),
        (Role.SPEAKER, Role.LISTENER): (Action.MOVE_TO_AUDIENCE, Move.STEP_DOWN),
        (Role.COHOST, Role.LISTENER): (Action.MOVE_TO_AUDIENCE, Move.STEP_DOWN),
        (Role.HOST, Role.LISTENER): (Action.MOVE_TO_AUDIENCE, Move.STEP_DOWN),
        (Role.HOST, Role.COHOST): (Action.MODERATE_HOST, Move.CHANGE),
        (Role.HOST, Role.SPEAKER): (Action.MODERATE_HOST, Move.CHANGE),
    }
)


def _plan(room: Room, command: SetRole) -> tuple[Action, Move]:
    actor, target, role = command.actor, command.target, command.role
    if role is Role.HOST:
        raise invalid("cannot_assign_host", "a space has one host, fixed when it is created")
    current = room.role_of(target)
    if role is current:
        if role is Role.LISTENER:
            raise conflict("not_on_stage", f"@{target} is not on stage")
        raise conflict("no_change", f"@{target} is already {role.value}")
    action, move = SET_ROLE[(current, role)]
    if move is Move.STEP_DOWN and target == actor:
        return Action.LEAVE_STAGE, move
    if move is Move.INVITE and role is Role.SPEAKER and room.hand_of(target) is not None:
        return Action.APPROVE_HAND, Move.CHANGE
    return action, move


def set_role(room: Room, command: SetRole, now: float) -> Outcome:
    actor, target, role = command.actor, command.target, command.role
    action, move = _plan(room, command)
    require(room, actor, action, target=target)
    if target in room.removed:
        raise forbidden("removed", f"@{target} was removed from this space")
    current = room.role_of(target)
    if move is Move.INVITE:
        if room.invitation_of(target) is not None:
            raise conflict("already_invited", f"@{target} already has a pending invitation")
        check_seat(room, role)
        invitation = Invitation(target, role, by=actor)
        return (
            replace(room, invitations=(*room.invitations, invitation)),
            (Invited(target, role, by=actor),),
        )
    changed = RoleChanged(target, old=current, new=role, by=actor)
    if move is Move.STEP_DOWN:
        return without_member(room, target), (changed,)
    check_seat(room, role)
    seat = room.member(target)
    muted = seat.muted if seat is not None else False
    return with_member(room, Member(target, role, muted=muted)), (changed,)


def answer_invitation(room: Room, command: AnswerInvitation, now: float) -> Outcome:
    """Accept (come on stage, if a seat is free right now) or decline an invitation.
    Accepting into a full stage is a conflict and keeps the invitation."""
    actor = command.actor
    invitation = room.invitation_of(actor)
    if invitation is None:
        raise conflict("no_invitation", f"@{actor} has no pending invitation")
    answered = InvitationAnswered(actor, accepted=command.accept)
    if not command.accept:
        return without_invitation(room, actor), (answered,)
    check_seat(room, invitation.role)
    events: tuple[Event, ...] = (
        answered,
        RoleChanged(actor, old=room.role_of(actor), new=invitation.role, by=invitation.by),
    )
    return with_member(room, Member(actor, invitation.role)), events
