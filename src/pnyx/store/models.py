"""The tables, as SQLAlchemy 2 typed declarative models. Only store/ sees these: the
repositories hand out the plain records of ``records.py``.

One schema for both databases: SQLite (the embedded default) and PostgreSQL. Times are
``UtcDateTime`` (timezone-aware UTC in and out, even on SQLite, which keeps no offset);
the room is JSON (JSONB on PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import BYTEA, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pnyx.domain.types import (
    SPACE_ID_MAX_LEN,
    Audience,
    DeliveryState,
    SpaceStatus,
    Visibility,
)

HANDLE_MAX_LEN = 32
WEBHOOK_ID_MAX_LEN = 40


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC. Naive values are refused on the way in
    (they are a bug: nobody knows which zone they meant); values read back are always
    aware UTC, whatever the database kept."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware (UTC) datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite: stored as UTC without an offset
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


ROOM_JSON = JSON().with_variant(JSONB(), "postgresql")
MEDIA_BYTES = LargeBinary().with_variant(BYTEA(), "postgresql")

_STATUSES = ", ".join(f"'{s.value}'" for s in SpaceStatus)
_VISIBILITIES = ", ".join(f"'{v.value}'" for v in Visibility)
_AUDIENCES = ", ".join(f"'{a.value}'" for a in Audience)
_DELIVERY_STATES = ", ".join(f"'{s.value}'" for s in DeliveryState)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Account(Base):
    __tablename__ = "accounts"

    handle: Mapped[str] = mapped_column(String(HANDLE_MAX_LEN), primary_key=True)
    display_name: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    bio: Mapped[str] = mapped_column(Text, default="", server_default="")
    # A deleted account stays as this row alone (its handle is never handed out again,
    # so nobody inherits its old links); no password, no name, no bio.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Follow(Base):
    """``follower`` follows ``followee``. Looked up both ways: by follower (the primary
    key's prefix) and by followee (its own index: follower counts, notification fan-out)."""

    __tablename__ = "follows"
    __table_args__ = (CheckConstraint("follower <> followee", name="not_self"),)

    follower: Mapped[str] = mapped_column(
        String(HANDLE_MAX_LEN), ForeignKey("accounts.handle", ondelete="CASCADE"), primary_key=True
    )
    followee: Mapped[str] = mapped_column(
        String(HANDLE_MAX_LEN),
        ForeignKey("accounts.handle", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Block(Base):
    """``blocker`` has blocked ``blocked`` (from their spaces, and from following them)."""

    __tablename__ = "blocks"
    __table_args__ = (CheckConstraint("blocker <> blocked", name="not_self"),)

    blocker: Mapped[str] = mapped_column(
        String(HANDLE_MAX_LEN), ForeignKey("accounts.handle", ondelete="CASCADE"), primary_key=True
    )
    blocked: Mapped[str] = mapped_column(
        String(HANDLE_MAX_LEN), ForeignKey("accounts.handle", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


# Search (store/spaces.py SpaceRepo.search): PostgreSQL full text over the title and the
# host's handle, through this GIN index; SQLite has no index for it (a LIKE scan, bounded).
SEARCH_CONFIG = "english"


def search_document(table: str = "") -> str:
    """The text searched, as SQL: the index's expression, or the query's (``spaces.``)."""
    return f"to_tsvector('{SEARCH_CONFIG}', {table}title || ' ' || {table}host)"


def transcript_document(table: str = "") -> str:
    """A transcript cue's searched text, as SQL (the index's expression, or a query's)."""
    return f"to_tsvector('{SEARCH_CONFIG}', {table}text)"


class Space(Base):
    """A space and its durable room. ``room_version`` is the compare-and-swap token that
    serialises commands on one space across API processes (``SpaceRepo.update_room``)."""

    __tablename__ = "spaces"
    __table_args__ = (
        Index("ix_spaces_status_scheduled_start", "status", "scheduled_start"),
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint(f"visibility IN ({_VISIBILITIES})", name="visibility"),
        CheckConstraint(f"audience IN ({_AUDIENCES})", name="audience"),
        Index("ix_spaces_search", text(search_document()), postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )

    id: Mapped[str] = mapped_column(String(SPACE_ID_MAX_LEN), primary_key=True)
    host: Mapped[str] = mapped_column(
        String(HANDLE_MAX_LEN), ForeignKey("accounts.handle"), index=True
    )
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    record: Mapped[bool] = mapped_column(Boolean)
    scheduled_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    room: Mapped[dict[str, Any]] = mapped_column(ROOM_JSON)
    room_version: Mapped[int] = mapped_column(Integer)
    # Who finds and hears it (domain/types.py Visibility); only public spaces are listed.
    visibility: Mapped[str] = mapped_column(
        String(16), default=Visibility.PUBLIC.value, server_default=Visibility.PUBLIC.value
    )
    # For a private space: who besides the invited accounts may join.
    audience: Mapped[str] = mapped_column(
        String(16), default=Audience.INVITED.value, server_default=Audience.INVITED.value
    )
    # Why the host cancelled it (empty: no reason given, or not cancelled by the host).
    cancel_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Live captions and a transcript (the host's choice at create).
    captions: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The host deleted its recording (RecordingRepo.delete): no replay, whatever `record`.
    recording_deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class SpaceInvite(Base):
    """``handle`` may join the private space ``space_id`` (invited by ``invited_by``).
    Looked up by space (the primary key's prefix) and by account (its own index)."""

    __tablename__ = "space_invites"

    space_id: Mapped[str] = mapped_column(
        String(SPACE_ID_MAX_LEN), ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    handle: Mapped[str] = mapped_column(
        String(HANDLE_MAX_LEN),
        ForeignKey("accounts.handle", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    )
    invited_by: Mapped[str] = mapped_column(String(HANDLE_MAX_LEN))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Notification(Base):
    """One stored notification for one recipient (fan-out on write). Hosts above the
    fan-out threshold get no rows here: their followers see them on read."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_recipient_created_at", "recipient", "created_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    recipient: Mapped[str] = mapped_column(String(HANDLE_MAX_LEN))
    kind: Mapped[str] = mapped_column(String(32))
    space_id: Mapped[str] = mapped_column(String(SPACE_ID_MAX_LEN))
    host: Mapped[str] = mapped_column(String(HANDLE_MAX_LEN))
    title: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # What changed, for space_rescheduled (the new start) and space_cancelled (the reason).
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")


class SpaceReminder(Base):
    """A scheduled space whose "starting soon" reminder has gone out: the primary key
    makes that happen once, whichever node claims it first."""

    __tablename__ = "space_reminders"

    space_id: Mapped[str] = mapped_column(String(SPACE_ID_MAX_LEN), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class NotificationRead(Base):
    """How far ``handle`` has read their notifications: those at or before ``read_at``
    are read. One row per account, so marking read is one write however many there are."""

    __tablename__ = "notification_reads"

    handle: Mapped[str] = mapped_column(
        String(HANDLE_MAX_LEN), ForeignKey("accounts.handle", ondelete="CASCADE"), primary_key=True
    )
    read_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReminderRequest(Base):
    """``handle`` asked to be reminded before the scheduled space ``space_id`` starts
    (anyone signed in, follower or not). Paged by space (the primary key's prefix)."""

    __tablename__ = "reminder_requests"

    space_id: Mapped[str] = mapped_column(
        String(SPACE_ID_MAX_LEN), ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    handle: Mapped[str] = mapped_column(
        String(HANDLE_MAX_LEN),
        ForeignKey("accounts.handle", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PushSubscription(Base):
    """A browser's Web Push subscription (the Push API's endpoint and keys) for
    ``handle``. The endpoint is unique per browser and service worker."""

    __tablename__ = "push_subscriptions"

    endpoint: Mapped[str] = mapped_column(String(1024), primary_key=True)
    handle: Mapped[str] = mapped_column(
        String(HANDLE_MAX_LEN), ForeignKey("accounts.handle", ondelete="CASCADE"), index=True
    )
    p256dh: Mapped[str] = mapped_column(String(128))
    auth: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Recording(Base):
    """A recorded space: its CMAF header (the same bytes on every node) and, once the
    space has ended and the last writer has flushed, when it was finished. A finished
    recording never changes again (``RecordingRepo.add`` refuses)."""

    __tablename__ = "recordings"

    space_id: Mapped[str] = mapped_column(String(SPACE_ID_MAX_LEN), primary_key=True)
    init: Mapped[bytes | None] = mapped_column(MEDIA_BYTES)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RecordingSegment(Base):
    """One finished segment of a recording, keyed by (space, media sequence number): a
    retried or duplicate write is one row. ``parts`` is the segment's LL-HLS parts as
    ``[[index, duration, independent], …]`` (what a SegmentRef needs)."""

    __tablename__ = "recording_segments"

    space_id: Mapped[str] = mapped_column(String(SPACE_ID_MAX_LEN), primary_key=True)
    msn: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    duration: Mapped[float] = mapped_column(Float)
    program_date_time: Mapped[datetime] = mapped_column(UtcDateTime)
    discontinuity: Mapped[bool] = mapped_column(Boolean)
    parts: Mapped[list[Any]] = mapped_column(JSON)
    data: Mapped[bytes] = mapped_column(MEDIA_BYTES)


class TranscriptCue(Base):
    """One caption of a space, kept as its transcript: media seconds (the audio's decode
    time) in milliseconds, the speaker's handle if known, the words. Keyed by (space,
    start): a retried write is one row. No foreign key, like recordings: a transcript
    outlives its writer."""

    __tablename__ = "transcript_cues"
    __table_args__ = (
        Index(
            "ix_transcript_cues_search", text(transcript_document()), postgresql_using="gin"
        ).ddl_if(dialect="postgresql"),
    )

    space_id: Mapped[str] = mapped_column(String(SPACE_ID_MAX_LEN), primary_key=True)
    start_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    end_ms: Mapped[int] = mapped_column(BigInteger)
    speaker: Mapped[str | None] = mapped_column(String(HANDLE_MAX_LEN))
    text: Mapped[str] = mapped_column(Text)


class Clip(Base):
    """A listener's clip of a space: a few seconds of its finished segments as one
    fragmented MP4 (``data``, the header included), immutable once written. ``visibility``
    is the space's when it was clipped: a private space's clips are private too. No
    foreign keys: a clip outlives nothing it names, and deleting an account or a space
    deletes its clips explicitly (``ClipRepo.delete_of``)."""

    __tablename__ = "clips"
    __table_args__ = (Index("ix_clips_space_id_created_at", "space_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    space_id: Mapped[str] = mapped_column(String(SPACE_ID_MAX_LEN))
    creator: Mapped[str] = mapped_column(String(HANDLE_MAX_LEN), index=True)
    host: Mapped[str] = mapped_column(String(HANDLE_MAX_LEN))
    title: Mapped[str] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(16))
    start_s: Mapped[float] = mapped_column(Float)  # offset into the space, seconds
    duration: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    data: Mapped[bytes] = mapped_column(MEDIA_BYTES)


class WebhookEndpoint(Base):
    """A URL a host registered for events (services/webhooks.py). ``secret`` signs every
    delivery (``whsec_…``); it must be kept to sign, so it is stored as given. ``events``
    is the list of event types it takes."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(WEBHOOK_ID_MAX_LEN), primary_key=True)
    owner: Mapped[str] = mapped_column(
        String(HANDLE_MAX_LEN), ForeignKey("accounts.handle", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookDelivery(Base):
    """The outbox: one message for one endpoint, until delivered or given up. ``body`` is
    the exact JSON sent (signed as is). A node claims a due row by moving ``due_at`` to the
    end of its claim's lease and writing its ``claim`` token; it settles the row only under
    that token, so a row claimed again after a lapsed lease is settled once."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_state_due_at", "state", "due_at"),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_done_at", "done_at"),  # pruning (NULL while pending)
        CheckConstraint(f"state IN ({_DELIVERY_STATES})", name="state"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    endpoint_id: Mapped[str] = mapped_column(
        String(WEBHOOK_ID_MAX_LEN), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    msg_id: Mapped[str] = mapped_column(String(WEBHOOK_ID_MAX_LEN))
    event: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claim: Mapped[str | None] = mapped_column(String(WEBHOOK_ID_MAX_LEN))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SpaceAnalytics(Base):
    """What a space's host is told about it: the live figures the space's ticker kept
    (``doc``, JSON, bounded in size; written when the space ends), and replay plays and
    downloads counted as they are served."""

    __tablename__ = "space_analytics"

    space_id: Mapped[str] = mapped_column(String(SPACE_ID_MAX_LEN), primary_key=True)
    doc: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    replay_plays: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    replay_downloads: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
