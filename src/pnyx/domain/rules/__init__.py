"""The rules of a space: ``decide(room, command, now)`` -> a new room and events.

Pure (no I/O, no clock: ``now`` is passed in). An accepted command returns a room whose
version is one more; a rejected one raises ``RuleViolation`` and, rooms being frozen,
changes nothing. Only ``Tick`` may be accepted without a change (no events, same room,
same version). Every other command that would change nothing is rejected (a conflict),
so a version bump always means a change.

The rules are split by noun: lifecycle (status machine, host presence), hands, stage
(roles and invitations), moderation (mutes, removals, pin, speak policy).
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from pnyx.domain.commands import (
    AnswerInvitation,
    Command,
    EndSpace,
    HostDisconnected,
    HostReconnected,
    LowerHand,
    Mute,
    Pin,
    RaiseHand,
    RemoveMember,
    SetRole,
    SetSpeakPolicy,
    StartSpace,
    Tick,
    Unmute,
)
from pnyx.domain.room import Room
from pnyx.domain.rules import hands, lifecycle, moderation, stage
from pnyx.domain.rules._base import Decision, Outcome
from pnyx.domain.rules.lifecycle import new_room

__all__ = ["Decision", "decide", "new_room"]


def _apply(room: Room, command: Command, now: float) -> Outcome:
    match command:
        case StartSpace():
            return lifecycle.start(room, command, now)
        case EndSpace():
            return lifecycle.end(room, command, now)
        case Tick():
            return lifecycle.tick(room, command, now)
        case HostDisconnected():
            return lifecycle.host_disconnected(room, command, now)
        case HostReconnected():
            return lifecycle.host_reconnected(room, command, now)
        case RaiseHand():
            return hands.raise_hand(room, command, now)
        case LowerHand():
            return hands.lower_hand(room, command, now)
        case SetRole():
            return stage.set_role(room, command, now)
        case AnswerInvitation():
            return stage.answer_invitation(room, command, now)
        case Mute():
            return moderation.mute(room, command, now)
        case Unmute():
            return moderation.unmute(room, command, now)
        case RemoveMember():
            return moderation.remove_member(room, command, now)
        case Pin():
            return moderation.pin(room, command, now)
        case SetSpeakPolicy():
            return moderation.set_speak_policy(room, command, now)
        case _:
            assert_never(command)


def decide(room: Room, command: Command, now: float) -> Decision:
    """Apply ``command`` to ``room`` at time ``now``; raise ``RuleViolation`` if the
    rules do not allow it (the room is left as it was)."""
    lifecycle.check_status(room, command)
    after, events = _apply(room, command, now)
    if not events:
        return Decision(room, ())
    return Decision(replace(after, version=room.version + 1), events)
