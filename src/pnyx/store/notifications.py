"""Notifications fanned out on write (one row per recipient), read newest first, and the
claim that makes a scheduled space's reminder go out once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Insert, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pnyx.domain.types import Handle, SpaceId, SpaceStatus
from pnyx.store.checks import check_limit
from pnyx.store.engine import Database
from pnyx.store.models import Notification, Space, SpaceReminder
from pnyx.store.records import NotificationRecord, SpaceRecord
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
