"""Plain records the store hands out (no ORM objects leak past store/)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pnyx.domain.types import Audience, DeliveryState, Handle, SpaceId, SpaceStatus, Visibility


@dataclass(frozen=True, slots=True)
class AccountRecord:
    handle: Handle
    display_name: str
    password_hash: str
    created_at: datetime
    bio: str = ""
    deleted: bool = False  # a tombstone: the handle stays taken, nothing else is kept


@dataclass(frozen=True, slots=True)
class SpaceRecord:
    id: SpaceId
    host: Handle
    title: str
    status: SpaceStatus
    record: bool
    scheduled_start: datetime | None
    created_at: datetime
    room: dict[str, Any]  # the domain Room as JSON (domain/codec.py)
    room_version: int
    # Set once by SpaceRepo.update_room when the space goes live / ends.
    started_at: datetime | None = None
    ended_at: datetime | None = None
    visibility: Visibility = Visibility.PUBLIC
    audience: Audience = Audience.INVITED  # private spaces: who besides the invited
    cancel_reason: str = ""  # the host's reason, for a space they cancelled
    captions: bool = False  # live captions and a transcript
    recording_deleted: bool = False  # its host deleted the recording: no replay


@dataclass(frozen=True, slots=True)
class InviteRecord:
    """An account invited into a private space."""

    space: SpaceId
    handle: Handle
    invited_by: Handle
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    recipient: Handle
    kind: str  # services/notifications.py NotificationKind, or "space_invite"
    space: SpaceId
    host: Handle
    title: str
    created_at: datetime
    detail: str = ""  # the new start (space_rescheduled), the reason (space_cancelled)


@dataclass(frozen=True, slots=True)
class PushSubscriptionRecord:
    endpoint: str
    handle: Handle
    p256dh: str
    auth: str


@dataclass(frozen=True, slots=True)
class SegmentMeta:
    """What the replay playlist needs of one recorded segment (no bytes). ``parts`` is
    ``((index, duration, independent), …)``; ``size`` is its byte length (0 when writing)."""

    msn: int
    duration: float
    program_date_time: datetime
    discontinuity: bool
    parts: tuple[tuple[int, float, bool], ...]
    size: int = 0


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """A recording as stored: its header's length (0: none yet), when it was finished
    (None: not yet) and its segments in sequence order."""

    space: SpaceId
    init_size: int
    finished_at: datetime | None
    segments: tuple[SegmentMeta, ...]

    @property
    def size(self) -> int:
        """The byte length of the whole recording as one file (header + segments)."""
        return self.init_size + sum(s.size for s in self.segments)


@dataclass(frozen=True, slots=True)
class HostCap:
    """At most ``limit`` spaces in ``status`` hosted by one account at once (the store
    checks it in the transaction that would add one: services/spaces.py sets them)."""

    status: SpaceStatus
    limit: int


@dataclass(frozen=True, slots=True)
class ClipRecord:
    """A clip without its bytes (``size`` is their length)."""

    id: str
    space: SpaceId
    creator: Handle
    host: Handle
    title: str  # the space's title when clipped
    visibility: Visibility
    start_s: float  # where the clip starts, seconds into the space
    duration: float
    created_at: datetime
    size: int = 0


@dataclass(frozen=True, slots=True)
class WebhookEndpointRecord:
    id: str
    owner: Handle
    url: str
    secret: str  # whsec_…: signs every delivery
    events: tuple[str, ...]
    description: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message to put in the outbox for one endpoint."""

    endpoint_id: str
    msg_id: str  # the webhook-id header: the same on every retry
    event: str
    body: str  # the exact JSON sent


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A due delivery this node has claimed, with what sending it needs."""

    id: int
    endpoint_id: str
    msg_id: str
    event: str
    body: str
    attempts: int  # made before this one
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A delivery as the host sees it (no secret, no body)."""

    id: int
    endpoint_id: str
    msg_id: str
    event: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    due_at: datetime
    last_status: int | None
    last_error: str | None
    done_at: datetime | None


@dataclass(frozen=True, slots=True)
class AccountDeletion:
    """What deleting an account removed (counts of rows)."""

    follows: int
    blocks: int
    notifications: int
    invites: int
    spaces: int  # ended or cancelled spaces it hosted that had no recording
    clips: int = 0  # clips it made, and clips of the spaces deleted with it
    webhooks: int = 0  # its webhook endpoints (with their pending deliveries)


@dataclass(frozen=True, slots=True)
class CueRecord:
    """A stored caption: media seconds, the speaker's handle if known, the words."""

    start: float
    end: float
    speaker: str | None
    text: str
