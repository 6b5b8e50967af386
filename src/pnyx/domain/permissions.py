"""Who may do what in a space: data plus one guard (docs/conventions.md, rule 3).

``PERMISSIONS`` maps each role to the actions it holds; ``require()`` is the only place
that reads it. Rules never compare roles to decide a permission: they name the action
and, when it is aimed at someone else, the target, and call ``require()``.

Aiming an action at someone may need more than the action itself, by the target's role
(``ESCALATIONS``): moving back or removing a co-host needs MANAGE_COHOSTS (host only),
and the host is out of everyone's reach (MODERATE_HOST is held by no role).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from pnyx.domain.errors import forbidden
from pnyx.domain.room import Room
from pnyx.domain.types import Handle, Role


class Action(StrEnum):
    START_SPACE = "start_space"
    END_SPACE = "end_space"
    REPORT_HOST_PRESENCE = "report_host_presence"  # host disconnected / reconnected
    RAISE_HAND = "raise_hand"
    APPROVE_HAND = "approve_hand"
    DECLINE_HAND = "decline_hand"
    INVITE = "invite"  # invite a listener to speak
    INVITE_AUDIENCE = "invite_audience"  # let an account into a private space (or not)
    MANAGE_COHOSTS = "manage_cohosts"  # invite, promote, demote, move back, remove co-hosts
    MOVE_TO_AUDIENCE = "move_to_audience"  # move someone else off the stage
    LEAVE_STAGE = "leave_stage"  # step off the stage yourself
    MUTE_SELF = "mute_self"
    UNMUTE_SELF = "unmute_self"
    MUTE_OTHER = "mute_other"
    REMOVE_MEMBER = "remove_member"
    SET_SPEAK_POLICY = "set_speak_policy"
    PIN = "pin"
    MODERATE_HOST = "moderate_host"  # held by no role: nobody moves, mutes, removes the host
    SEE_AUDIENCE = "see_audience"  # list the signed-in listeners (to remove or invite them)
    SEE_ANALYTICS = "see_analytics"  # the space's figures: peak, uniques, reactions, …
    DELETE_RECORDING = "delete_recording"  # an ended space's recording, for good


_MODERATION = frozenset(
    {
        Action.APPROVE_HAND,
        Action.DECLINE_HAND,
        Action.INVITE,
        Action.INVITE_AUDIENCE,
        Action.MOVE_TO_AUDIENCE,
        Action.MUTE_OTHER,
        Action.REMOVE_MEMBER,
        Action.SET_SPEAK_POLICY,
        Action.PIN,
        Action.SEE_AUDIENCE,
    }
)
_OWN_MICROPHONE = frozenset({Action.MUTE_SELF, Action.UNMUTE_SELF})

PERMISSIONS: Mapping[Role, frozenset[Action]] = MappingProxyType(
    {
        Role.HOST: _MODERATION
        | _OWN_MICROPHONE
        | {
            Action.START_SPACE,
            Action.END_SPACE,
            Action.REPORT_HOST_PRESENCE,
            Action.MANAGE_COHOSTS,
            Action.SEE_ANALYTICS,
            Action.DELETE_RECORDING,
        },
        Role.COHOST: _MODERATION | _OWN_MICROPHONE | {Action.LEAVE_STAGE},
        Role.SPEAKER: _OWN_MICROPHONE | {Action.LEAVE_STAGE},
        Role.LISTENER: frozenset({Action.RAISE_HAND}),
    }
)

# (action aimed at someone else, target's role) -> the action actually required.
ESCALATIONS: Mapping[tuple[Action, Role], Action] = MappingProxyType(
    {
        (Action.MOVE_TO_AUDIENCE, Role.COHOST): Action.MANAGE_COHOSTS,
        (Action.REMOVE_MEMBER, Role.COHOST): Action.MANAGE_COHOSTS,
        (Action.MOVE_TO_AUDIENCE, Role.HOST): Action.MODERATE_HOST,
        (Action.REMOVE_MEMBER, Role.HOST): Action.MODERATE_HOST,
        (Action.MUTE_OTHER, Role.HOST): Action.MODERATE_HOST,
    }
)

_MODERATORS_ONLY = "moderators_only"
_HOST_ONLY = "host_only"

# The error code and message for an actor who lacks an action.
DENIALS: Mapping[Action, tuple[str, str]] = MappingProxyType(
    {
        Action.START_SPACE: (_HOST_ONLY, "only the host can start the space"),
        Action.END_SPACE: (_HOST_ONLY, "only the host can end the space"),
        Action.REPORT_HOST_PRESENCE: (_HOST_ONLY, "only the host's presence is tracked"),
        Action.RAISE_HAND: (
            "listeners_only",
            "only listeners raise a hand; you are already on stage",
        ),
        Action.APPROVE_HAND: (_MODERATORS_ONLY, "only the host or a co-host can approve a hand"),
        Action.DECLINE_HAND: (_MODERATORS_ONLY, "only the host or a co-host can decline a hand"),
        Action.INVITE: (_MODERATORS_ONLY, "only the host or a co-host can invite speakers"),
        Action.INVITE_AUDIENCE: (
            _MODERATORS_ONLY,
            "only the host or a co-host can invite people to a private space",
        ),
        Action.MANAGE_COHOSTS: (
            _HOST_ONLY,
            "only the host can add, move or remove co-hosts",
        ),
        Action.MOVE_TO_AUDIENCE: (
            _MODERATORS_ONLY,
            "only the host or a co-host can move a speaker back to the audience",
        ),
        Action.LEAVE_STAGE: (
            "host_cannot_leave",
            "the host cannot leave the stage; end the space instead",
        ),
        Action.MUTE_SELF: ("stage_only", "only someone on stage has a microphone to mute"),
        Action.UNMUTE_SELF: ("stage_only", "only someone on stage has a microphone to unmute"),
        Action.MUTE_OTHER: (_MODERATORS_ONLY, "only the host or a co-host can mute others"),
        Action.REMOVE_MEMBER: (_MODERATORS_ONLY, "only the host or a co-host can remove people"),
        Action.SET_SPEAK_POLICY: (
            _MODERATORS_ONLY,
            "only the host or a co-host can set who may ask to speak",
        ),
        Action.PIN: (_MODERATORS_ONLY, "only the host or a co-host can pin a link"),
        Action.SEE_AUDIENCE: (
            _MODERATORS_ONLY,
            "only the host or a co-host can see who is listening",
        ),
        Action.SEE_ANALYTICS: (_HOST_ONLY, "only the host can see the space's analytics"),
        Action.DELETE_RECORDING: (_HOST_ONLY, "only the host can delete the recording"),
        Action.MODERATE_HOST: (
            "host_protected",
            "nobody can move, mute, remove or change the role of the host",
        ),
    }
)


def allowed(role: Role, action: Action) -> bool:
    return action in PERMISSIONS[role]


def require(room: Room, actor: Handle, action: Action, *, target: Handle | None = None) -> None:
    """The one permission guard: raise ``forbidden`` unless ``actor`` may do ``action``
    in ``room`` and, when it is aimed at someone else, at ``target`` (ESCALATIONS).
    Changes nothing."""
    if actor in room.removed:
        raise forbidden("removed", f"@{actor} was removed from this space")
    role = room.role_of(actor)
    needed = [action]
    if target is not None and target != actor:
        escalated = ESCALATIONS.get((action, room.role_of(target)))
        if escalated is not None:
            needed.append(escalated)
    for each in needed:
        if not allowed(role, each):
            code, message = DENIALS[each]
            raise forbidden(code, message)
