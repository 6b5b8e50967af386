"""Accounts: a unique handle, a display name, a bio and a password hash.

Deleting an account (``delete``) keeps its row as a tombstone: the handle stays taken, so
nobody can sign up as it and be taken for the person behind its old spaces and replays.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pnyx.domain.types import Handle, SpaceStatus
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store.checks import check_handle
from pnyx.store.engine import Database
from pnyx.store.models import (
    Account,
    Block,
    Clip,
    Follow,
    Notification,
    NotificationRead,
    PushSubscription,
    Recording,
    ReminderRequest,
    Space,
    SpaceAnalytics,
    SpaceInvite,
    SpaceReminder,
    TranscriptCue,
    WebhookDelivery,
    WebhookEndpoint,
)
from pnyx.store.records import AccountDeletion, AccountRecord


class AccountRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, handle: Handle, display_name: str, password_hash: str, now: datetime
    ) -> AccountRecord:
        """Store a new account. A handle already in use (or once used by a deleted
        account) → CONFLICT "handle_taken"."""
        check_handle(handle)
        stmt = insert(Account).values(
            handle=handle,
            display_name=display_name,
            password_hash=password_hash,
            created_at=now,
            bio="",
            deleted=False,
        )
        async with self._db.begin() as conn:
            try:
                await conn.execute(stmt)
            except IntegrityError as exc:
                raise PnyxError(
                    ErrorKind.CONFLICT,
                    f"the handle @{handle} is taken: choose another",
                    code="handle_taken",
                ) from exc
        return AccountRecord(handle, display_name, password_hash, now.astimezone(UTC))

    async def get(self, handle: Handle) -> AccountRecord | None:
        """The account, deleted ones included (``deleted`` says so)."""
        async with self._db.begin() as conn:
            row = (await conn.execute(select(Account).where(Account.handle == handle))).first()
        if row is None:
            return None
        return AccountRecord(
            handle=Handle(row.handle),
            display_name=row.display_name,
            password_hash=row.password_hash,
            created_at=row.created_at,
            bio=row.bio or "",
            deleted=bool(row.deleted),
        )

    async def names(self, handles: Sequence[str]) -> dict[str, str]:
        """Display names by handle, of the (not deleted) accounts among ``handles``."""
        if not handles:
            return {}
        stmt = select(Account.handle, Account.display_name).where(
            Account.handle.in_(sorted(set(handles))), Account.deleted.is_(False)
        )
        async with self._db.begin() as conn:
            return {row.handle: row.display_name for row in await conn.execute(stmt)}

    async def update_profile(
        self, handle: Handle, *, display_name: str | None, bio: str | None
    ) -> bool:
        """Set what is given of the display name and bio; False when there is no such
        (live) account."""
        values: dict[str, Any] = {}
        if display_name is not None:
            values["display_name"] = display_name
        if bio is not None:
            values["bio"] = bio
        if not values:
            values["display_name"] = Account.display_name  # a no-op that still finds the row
        stmt = update(Account).where(Account.handle == handle, Account.deleted.is_(False))
        async with self._db.begin() as conn:
            return bool((await conn.execute(stmt.values(**values))).rowcount == 1)

    async def set_password(self, handle: Handle, password_hash: str) -> bool:
        stmt = (
            update(Account)
            .where(Account.handle == handle, Account.deleted.is_(False))
            .values(password_hash=password_hash)
        )
        async with self._db.begin() as conn:
            return bool((await conn.execute(stmt)).rowcount == 1)

    async def delete(self, handle: Handle) -> AccountDeletion:
        """Delete the account's data in one transaction, leaving its row as a tombstone
        (no password hash, the handle as its name, no bio). Removed: its follows (both
        ways), blocks (both ways), notifications to it or about its spaces, its
        invitations into private spaces, the clips it made, its webhook endpoints (and
        their deliveries), its push subscriptions, "remind me" requests and read mark,
        and the ended or cancelled spaces it hosted that have no
        recording (with their invitations, reminder claims, clips, transcripts and
        analytics). Kept:
        spaces with a recording (others may have spoken in them) and the recordings.
        Live or scheduled spaces must be ended first (services/profiles.py does)."""
        async with self._db.begin() as conn:
            follows = await _count(
                conn,
                delete(Follow).where(or_(Follow.follower == handle, Follow.followee == handle)),
            )
            blocks = await _count(
                conn, delete(Block).where(or_(Block.blocker == handle, Block.blocked == handle))
            )
            notes = await _count(
                conn,
                delete(Notification).where(
                    or_(Notification.recipient == handle, Notification.host == handle)
                ),
            )
            invites = await _count(conn, delete(SpaceInvite).where(SpaceInvite.handle == handle))
            gone = (
                select(Space.id)
                .where(
                    Space.host == handle,
                    Space.status.in_([SpaceStatus.ENDED.value, SpaceStatus.CANCELLED.value]),
                    Space.id.not_in(select(Recording.space_id)),
                )
                .scalar_subquery()
            )
            clips = await _count(
                conn, delete(Clip).where(or_(Clip.creator == handle, Clip.space_id.in_(gone)))
            )
            endpoints = select(WebhookEndpoint.id).where(WebhookEndpoint.owner == handle)
            await conn.execute(
                delete(WebhookDelivery).where(WebhookDelivery.endpoint_id.in_(endpoints))
            )
            hooks = await _count(
                conn, delete(WebhookEndpoint).where(WebhookEndpoint.owner == handle)
            )
            # Its read mark, push subscriptions and "remind me" requests (the account row
            # stays as a tombstone, so the foreign keys' cascades do not run).
            await conn.execute(delete(NotificationRead).where(NotificationRead.handle == handle))
            await conn.execute(delete(PushSubscription).where(PushSubscription.handle == handle))
            await conn.execute(
                delete(ReminderRequest).where(
                    or_(ReminderRequest.handle == handle, ReminderRequest.space_id.in_(gone))
                )
            )
            await conn.execute(delete(SpaceReminder).where(SpaceReminder.space_id.in_(gone)))
            await conn.execute(delete(SpaceInvite).where(SpaceInvite.space_id.in_(gone)))
            await conn.execute(delete(TranscriptCue).where(TranscriptCue.space_id.in_(gone)))
            await conn.execute(delete(SpaceAnalytics).where(SpaceAnalytics.space_id.in_(gone)))
            spaces = await _count(conn, delete(Space).where(Space.id.in_(gone)))
            await conn.execute(
                update(Account)
                .where(Account.handle == handle)
                .values(display_name=handle, bio="", password_hash="", deleted=True)
            )
        return AccountDeletion(follows, blocks, notes, invites, spaces, clips, hooks)


async def _count(conn: AsyncConnection, stmt: Any) -> int:
    return int((await conn.execute(stmt)).rowcount or 0)
