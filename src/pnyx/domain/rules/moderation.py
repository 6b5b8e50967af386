"""Keeping a space in order: mutes, removals, the pinned link, the speak policy."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

from pnyx.domain.commands import Mute, Pin, RemoveMember, SetSpeakPolicy, Unmute
from pnyx.domain.errors import conflict, forbidden, invalid
from pnyx.domain.events import MemberRemoved, Muted, Pinned, SpeakPolicyChanged, Unmuted
from pnyx.domain.permissions import Action, require
from pnyx.domain.room import Room
from pnyx.domain.rules._base import (
    Outcome,
    stage_member,
    with_member,
    without_hand,
    without_invitation,
    without_member,
)


def mute(room: Room, command: Mute, now: float) -> Outcome:
    """Mute yourself (anyone on stage), or someone else on stage (host/co-host; never
    the host)."""
    actor, target = command.actor, command.target
    action = Action.MUTE_SELF if target == actor else Action.MUTE_OTHER
    require(room, actor, action, target=target)
    member = stage_member(room, target)
    if member.muted:
        raise conflict("already_muted", f"@{target} is already muted")
    return with_member(room, replace(member, muted=True)), (Muted(target, by=actor),)


def unmute(room: Room, command: Unmute, now: float) -> Outcome:
    """Only a muted speaker unmutes themself: nobody turns on someone else's microphone."""
    actor, target = command.actor, command.target
    if target != actor:
        raise forbidden("only_self_unmute", "a muted speaker can only be unmuted by themself")
    require(room, actor, Action.UNMUTE_SELF)
    member = stage_member(room, target)
    if not member.muted:
        raise conflict("not_muted", f"@{target} is not muted")
    return with_member(room, replace(member, muted=False)), (Unmuted(target),)


def remove_member(room: Room, command: RemoveMember, now: float) -> Outcome:
    """Take someone (on stage or in the audience) out of the space for good: off the
    stage, hand and invitation dropped, and not allowed back in."""
    actor, target = command.actor, command.target
    if target == actor:
        raise invalid("cannot_remove_self", "you cannot remove yourself; leave the stage instead")
    require(room, actor, Action.REMOVE_MEMBER, target=target)
    if target in room.removed:
        raise conflict("already_removed", f"@{target} was already removed")
    after = without_invitation(without_hand(without_member(room, target), target), target)
    after = replace(after, removed=after.removed | {target})
    return after, (MemberRemoved(target, by=actor, blocked=command.block),)


_PIN_SCHEMES = frozenset({"http", "https"})


def _check_url(url: str, max_len: int) -> None:
    bad = len(url) > max_len or any(c.isspace() or not c.isprintable() for c in url)
    if not bad:
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unbalanced IPv6 bracket
            bad = True
        else:
            bad = parts.scheme not in _PIN_SCHEMES or not parts.hostname
    if bad:
        raise invalid(
            "bad_url",
            f"a pinned link is an http:// or https:// URL of at most {max_len} characters",
        )


def pin(room: Room, command: Pin, now: float) -> Outcome:
    """Pin a link (replacing any pinned one), or unpin with ``url=None``."""
    require(room, command.actor, Action.PIN)
    if command.url is not None:
        _check_url(command.url, room.limits.max_pin_len)
    if command.url == room.pinned:
        raise conflict("no_change", "that is already what is pinned")
    return replace(room, pinned=command.url), (Pinned(command.url, by=command.actor),)


def set_speak_policy(room: Room, command: SetSpeakPolicy, now: float) -> Outcome:
    require(room, command.actor, Action.SET_SPEAK_POLICY)
    if command.policy is room.speak_policy:
        raise conflict("no_change", f"the speak policy is already {command.policy.value}")
    event = SpeakPolicyChanged(command.policy, by=command.actor)
    return replace(room, speak_policy=command.policy), (event,)
