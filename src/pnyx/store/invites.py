"""Who is invited into a private space. Inviting twice is inviting once; revoking an
invitation that does not exist does nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Insert, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from pnyx.domain.types import Handle, SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store.checks import check_handle, check_limit, check_space_id
from pnyx.store.engine import Database
from pnyx.store.models import Account, Space, SpaceInvite
from pnyx.store.records import InviteRecord


class InviteRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, space: SpaceId, handle: Handle, invited_by: Handle, now: datetime) -> bool:
        """Invite ``handle`` into ``space``: True if new, False if already invited.
        Unknown account → NOT_FOUND "account_not_found"; unknown space → NOT_FOUND
        "space_not_found"."""
        check_space_id(space)
        check_handle(handle)
        insert_ = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        row = {"space_id": space, "handle": handle, "invited_by": invited_by, "created_at": now}
        stmt: Insert = insert_(SpaceInvite).values(**row).on_conflict_do_nothing()
        async with self._db.begin() as conn:
            if (await conn.execute(select(Space.id).where(Space.id == space))).first() is None:
                raise PnyxError(ErrorKind.NOT_FOUND, f"no space {space}", code="space_not_found")
            found = await conn.execute(select(Account.handle).where(Account.handle == handle))
            if found.first() is None:
                raise PnyxError(
                    ErrorKind.NOT_FOUND, f"no account @{handle}", code="account_not_found"
                )
            try:
                return (await conn.execute(stmt)).rowcount == 1
            except IntegrityError as exc:  # the account or space went meanwhile
                raise PnyxError(
                    ErrorKind.NOT_FOUND, f"no account @{handle}", code="account_not_found"
                ) from exc

    async def remove(self, space: SpaceId, handle: Handle) -> bool:
        """Revoke ``handle``'s invitation: True if there was one."""
        stmt = delete(SpaceInvite).where(
            SpaceInvite.space_id == space, SpaceInvite.handle == handle
        )
        async with self._db.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def is_invited(self, space: SpaceId, handle: Handle) -> bool:
        stmt = select(SpaceInvite.handle).where(
            SpaceInvite.space_id == space, SpaceInvite.handle == handle
        )
        async with self._db.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def of_space(
        self, space: SpaceId, limit: int = 1000, *, after: Handle | None = None
    ) -> list[InviteRecord]:
        """The space's invitations by handle; page with ``after`` = the last handle seen."""
        check_limit(limit)
        stmt = select(SpaceInvite).where(SpaceInvite.space_id == space)
        if after is not None:
            stmt = stmt.where(SpaceInvite.handle > after)
        stmt = stmt.order_by(SpaceInvite.handle).limit(limit)
        async with self._db.begin() as conn:
            return [
                InviteRecord(
                    space=SpaceId(row.space_id),
                    handle=Handle(row.handle),
                    invited_by=Handle(row.invited_by),
                    created_at=row.created_at,
                )
                for row in await conn.execute(stmt)
            ]
