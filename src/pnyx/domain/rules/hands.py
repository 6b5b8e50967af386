"""Raised hands: a listener asks to speak; they, or a host/co-host, lower it.

Who may raise a hand at all is the space's speak policy (``_POLICY``); approving a hand
is a role change (stage.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from pnyx.domain.commands import LowerHand, RaiseHand
from pnyx.domain.errors import conflict, forbidden
from pnyx.domain.events import HandLowered, HandRaised
from pnyx.domain.permissions import Action, require
from pnyx.domain.room import Hand, Room
from pnyx.domain.rules._base import Outcome, without_hand
from pnyx.domain.types import SpeakPolicy

# policy -> who may raise a hand (by whether the host follows them), and the refusal.
_POLICY: Mapping[SpeakPolicy, tuple[frozenset[bool], str, str]] = MappingProxyType(
    {
        SpeakPolicy.EVERYONE: (frozenset({True, False}), "", ""),
        SpeakPolicy.FOLLOWED: (
            frozenset({True}),
            "not_followed",
            "the host only takes hands from accounts they follow",
        ),
        SpeakPolicy.NOBODY: (
            frozenset(),
            "invite_only",
            "this space is invite only; wait for an invitation",
        ),
    }
)


def raise_hand(room: Room, command: RaiseHand, now: float) -> Outcome:
    actor = command.actor
    if room.on_stage(actor):
        raise conflict("already_on_stage", f"@{actor} is already on stage")
    require(room, actor, Action.RAISE_HAND)
    admitted, code, message = _POLICY[room.speak_policy]
    if command.followed_by_host not in admitted:
        raise forbidden(code, message)
    if room.hand_of(actor) is not None:
        raise conflict("hand_already_raised", f"@{actor} already has a hand raised")
    return replace(room, hands=(*room.hands, Hand(actor, now))), (HandRaised(actor),)


def lower_hand(room: Room, command: LowerHand, now: float) -> Outcome:
    """Lower your own hand, or (host/co-host) decline someone else's."""
    actor, target = command.actor, command.target
    if target != actor:
        require(room, actor, Action.DECLINE_HAND, target=target)
    if room.hand_of(target) is None:
        raise conflict("no_hand", f"@{target} has no hand raised")
    return without_hand(room, target), (HandLowered(target, by=actor),)
