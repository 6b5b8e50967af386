"""The typed vocabulary of a space (docs/conventions.md, rule 5): ids, roles, states, policies."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

SpaceId = NewType("SpaceId", str)
Handle = NewType("Handle", str)  # an account's public, unique, lower-case name
ListenerId = NewType("ListenerId", str)  # one join of one listener (anonymous or not)


class SpaceStatus(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"
    CANCELLED = "cancelled"


class Role(StrEnum):
    HOST = "host"
    COHOST = "cohost"
    SPEAKER = "speaker"
    LISTENER = "listener"


STAGE_ROLES = frozenset({Role.HOST, Role.COHOST, Role.SPEAKER})


class SpeakPolicy(StrEnum):
    """Who may raise a hand to ask to speak."""

    EVERYONE = "everyone"
    FOLLOWED = "followed"  # only accounts the host follows
    NOBODY = "nobody"  # invite only


class Visibility(StrEnum):
    """Who finds a space and who may listen to it."""

    PUBLIC = "public"  # listed; anyone listens
    UNLISTED = "unlisted"  # in no list; anyone with the link listens
    PRIVATE = "private"  # in no list; only the host's chosen audience, over signed links


class WebhookEvent(StrEnum):
    """What a host's webhook endpoints may be told of (docs/webhooks.md)."""

    SPACE_SCHEDULED = "space.scheduled"
    SPACE_STARTED = "space.started"
    SPACE_ENDED = "space.ended"  # ended, or cancelled before it started
    RECORDING_READY = "recording.ready"
    RECORDING_DELETED = "recording.deleted"  # its host deleted it: drop any copies
    CLIP_CREATED = "clip.created"
    TEST = "webhook.test"  # sent on request (POST /v1/webhooks/{id}/test); not subscribed


class DeliveryState(StrEnum):
    """A webhook message in the outbox, for one endpoint."""

    PENDING = "pending"  # due now or at its next retry
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # every attempt failed; not tried again


class Audience(StrEnum):
    """Who besides the invited accounts (and the stage) may join a private space."""

    INVITED = "invited"  # nobody else
    FOLLOWERS = "followers"  # the host's followers too


PRIVATE_ID_PREFIX = "p-"  # private space ids begin with it, and no other ids do


class EndReason(StrEnum):
    HOST_ENDED = "host_ended"
    HOST_LEFT = "host_left"  # the host stayed away longer than the grace period
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # scheduled, and not started within scheduled_expiry_s of its slot


SPACE_ID_MAX_LEN = 64  # the longest space id the store keeps (and the API takes)


@dataclass(frozen=True, slots=True)
class Limits:
    """Stage capacity and timing rules; every value is a setting (config.py)."""

    max_cohosts: int = 2
    max_speakers: int = 10
    host_grace_s: float = 300.0
    max_title_len: int = 120
    max_pin_len: int = 2048
