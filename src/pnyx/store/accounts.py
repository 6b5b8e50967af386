"""Accounts: a unique handle, a display name and a password hash."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from pnyx.domain.types import Handle
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store.checks import check_handle
from pnyx.store.engine import Database
from pnyx.store.models import Account
from pnyx.store.records import AccountRecord


class AccountRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, handle: Handle, display_name: str, password_hash: str, now: datetime
    ) -> AccountRecord:
        """Store a new account. A handle already in use → CONFLICT "handle_taken"."""
        check_handle(handle)
        stmt = insert(Account).values(
            handle=handle, display_name=display_name, password_hash=password_hash, created_at=now
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
        async with self._db.begin() as conn:
            row = (await conn.execute(select(Account).where(Account.handle == handle))).first()
        if row is None:
            return None
        return AccountRecord(
            handle=Handle(row.handle),
            display_name=row.display_name,
            password_hash=row.password_hash,
            created_at=row.created_at,
        )
