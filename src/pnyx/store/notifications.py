"""Notifications fanned out on write (one row per recipient), read newest first, and the
claim that makes a scheduled space's reminder go out once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Insert, and_, delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pnyx.domain.types import Handle, SpaceId, SpaceStatus
from pnyx.store.checks import check_limit
from pnyx.store.engine import Database
from pnyx.store.models import (
    Follow,
    Notification,
    NotificationRead,
    PushSubscription,
    ReminderRequest,
    Space,
    SpaceReminder,
)
from pnyx.store.records import NotificationRecord, PushSubscriptionRecord, SpaceRecord
from pnyx.store.spaces import record_of

BATCH = 1000


class NotificationRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_many(self, rows: Sequence[NotificationRecord], batch: int = BATCH) -> None:
        """Store ``rows``: one multi-row INSERT per ``batch`` rows, each its own
        transaction (a long fan-out never holds one transaction open)."""
        check_limit(batch)
        for start in range(0, len(rows), batch):
            values = [
                {
                    "recipient": r.recipient,
                    "kind": r.kind,
                    "space_id": r.space,
                    "host": r.host,
                    "title": r.title,
                    "created_at": r.created_at,
                    "detail": r.detail,
                }
                for r in rows[start : start + batch]
            ]
            async with self._db.begin() as conn:
                await conn.execute(insert(Notification), values)

    async def for_recipient(
        self, handle: Handle, since: datetime | None = None, limit: int = 50
    ) -> list[NotificationRecord]:
        """``handle``'s notifications newest first, created after ``since`` if given."""
        check_limit(limit)
        stmt = select(Notification).where(Notification.recipient == handle)
        if since is not None:
            stmt = stmt.where(Notification.created_at > since)
        stmt = stmt.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
        async with self._db.begin() as conn:
            return [
                NotificationRecord(
                    recipient=Handle(row.recipient),
                    kind=row.kind,
                    space=SpaceId(row.space_id),
                    host=Handle(row.host),
                    title=row.title,
                    created_at=row.created_at,
                    detail=row.detail or "",
                )
                for row in await conn.execute(stmt)
            ]

    async def due_reminders(self, horizon: datetime, limit: int = 100) -> list[SpaceRecord]:
        """Scheduled spaces starting by ``horizon`` whose reminder is not claimed yet,
        soonest first (the status/start index, minus the claimed ones)."""
        check_limit(limit)
        claimed = select(SpaceReminder.space_id)
        stmt = (
            select(Space)
            .where(
                Space.status == SpaceStatus.SCHEDULED.value,
                Space.scheduled_start <= horizon,
                Space.id.not_in(claimed),
            )
            .order_by(Space.scheduled_start, Space.id)
            .limit(limit)
        )
        async with self._db.begin() as conn:
            return [record_of(row) for row in await conn.execute(stmt)]

    async def claim_reminder(self, space: SpaceId, now: datetime) -> bool:
        """True for the first caller for ``space`` (it sends the reminder), False after."""
        insert_ = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        stmt: Insert = (
            insert_(SpaceReminder).values(space_id=space, created_at=now).on_conflict_do_nothing()
        )
        async with self._db.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def unclaim_reminder(self, space: SpaceId) -> None:
        """Forget that ``space``'s reminder went out (it was rescheduled: remind again)."""
        async with self._db.begin() as conn:
            await conn.execute(delete(SpaceReminder).where(SpaceReminder.space_id == space))

    # -- how far each account has read --------------------------------------------------
    async def read_at(self, handle: Handle) -> datetime | None:
        stmt = select(NotificationRead.read_at).where(NotificationRead.handle == handle)
        async with self._db.begin() as conn:
            return (await conn.execute(stmt)).scalar_one_or_none()

    async def mark_read(self, handle: Handle, until: datetime) -> datetime:
        """Everything of ``handle``'s at or before ``until`` is read (a mark never moves
        back); the mark now. One row per account."""
        insert_ = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        stmt = insert_(NotificationRead).values(handle=handle, read_at=until)
        stmt = stmt.on_conflict_do_update(
            index_elements=[NotificationRead.handle],
            set_={"read_at": until},
            where=NotificationRead.read_at < until,
        )
        async with self._db.begin() as conn:
            await conn.execute(stmt)
        mark = await self.read_at(handle)
        return mark if mark is not None else until

    # -- "remind me" ----------------------------------------------------------------------
    async def add_reminder_request(self, space: SpaceId, handle: Handle, now: datetime) -> None:
        insert_ = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        stmt: Insert = (
            insert_(ReminderRequest)
            .values(space_id=space, handle=handle, created_at=now)
            .on_conflict_do_nothing()
        )
        async with self._db.begin() as conn:
            await conn.execute(stmt)

    async def remove_reminder_request(self, space: SpaceId, handle: Handle) -> None:
        stmt = delete(ReminderRequest).where(
            ReminderRequest.space_id == space, ReminderRequest.handle == handle
        )
        async with self._db.begin() as conn:
            await conn.execute(stmt)

    async def has_reminder_request(self, space: SpaceId, handle: Handle) -> bool:
        stmt = select(ReminderRequest.handle).where(
            ReminderRequest.space_id == space, ReminderRequest.handle == handle
        )
        async with self._db.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def reminder_requests(
        self, space: SpaceId, limit: int, after: Handle | None = None
    ) -> list[Handle]:
        """Who asked to be reminded of ``space``, by handle, ``limit`` after ``after``."""
        check_limit(limit)
        stmt = select(ReminderRequest.handle).where(ReminderRequest.space_id == space)
        if after is not None:
            stmt = stmt.where(ReminderRequest.handle > after)
        stmt = stmt.order_by(ReminderRequest.handle).limit(limit)
        async with self._db.begin() as conn:
            return [Handle(h) for h in (await conn.execute(stmt)).scalars()]

    # -- browser push subscriptions -----------------------------------------------------
    async def add_push(self, sub: PushSubscriptionRecord, now: datetime) -> None:
        """Store (or move to ``sub.handle``) a browser's subscription."""
        insert_ = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        values = {"handle": sub.handle, "p256dh": sub.p256dh, "auth": sub.auth}
        stmt = insert_(PushSubscription).values(endpoint=sub.endpoint, created_at=now, **values)
        stmt = stmt.on_conflict_do_update(index_elements=[PushSubscription.endpoint], set_=values)
        async with self._db.begin() as conn:
            await conn.execute(stmt)

    async def remove_push(self, endpoint: str, handle: Handle | None = None) -> None:
        """Forget a subscription (``handle``'s own only, when given)."""
        stmt = delete(PushSubscription).where(PushSubscription.endpoint == endpoint)
        if handle is not None:
            stmt = stmt.where(PushSubscription.handle == handle)
        async with self._db.begin() as conn:
            await conn.execute(stmt)

    async def push_of(self, handles: Sequence[Handle], limit: int) -> list[PushSubscriptionRecord]:
        """The subscriptions of ``handles`` (one page of recipients), at most ``limit``."""
        check_limit(limit)
        if not handles:
            return []
        stmt = (
            select(PushSubscription)
            .where(PushSubscription.handle.in_(list(handles)))
            .order_by(PushSubscription.endpoint)
            .limit(limit)
        )
        async with self._db.begin() as conn:
            return [
                PushSubscriptionRecord(
                    endpoint=row.endpoint,
                    handle=Handle(row.handle),
                    p256dh=row.p256dh,
                    auth=row.auth,
                )
                for row in await conn.execute(stmt)
            ]

    async def subscribed_followers(
        self, host: Handle, limit: int, after: Handle | None = None
    ) -> list[Handle]:
        """The followers of ``host`` who have at least one push subscription, by handle,
        ``limit`` after ``after``: one join of ``push_subscriptions`` (by its handle index)
        with ``follows`` (by its primary key, follower then followee), so the planner can
        walk the subscriptions and probe the follows: followers without a subscription are
        never read, whatever the host's following (push to hosts above
        ``fanout_threshold``, services/push_fanout.py)."""
        check_limit(limit)
        stmt = (
            select(PushSubscription.handle)
            .join(
                Follow,
                and_(Follow.follower == PushSubscription.handle, Follow.followee == host),
            )
            .distinct()
        )
        if after is not None:
            stmt = stmt.where(PushSubscription.handle > after)
        stmt = stmt.order_by(PushSubscription.handle).limit(limit)
        async with self._db.begin() as conn:
            return [Handle(h) for h in (await conn.execute(stmt)).scalars()]
