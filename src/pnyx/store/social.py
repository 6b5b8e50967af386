"""Follows and blocks between accounts. Every change is idempotent: following twice is
following once, unfollowing someone not followed does nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Delete, Insert, Select, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pnyx.domain.types import Handle
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store.checks import check_limit
from pnyx.store.engine import Database
from pnyx.store.models import Account, Block, Follow


class SocialRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- follows ----------------------------------------------------------------------
    async def follow(self, follower: Handle, followee: Handle, now: datetime) -> None:
        """``follower`` follows ``followee`` (no-op if already so). Unknown handle →
        NOT_FOUND "account_not_found"; following oneself → INVALID "cannot_follow_self"."""
        if follower == followee:
            raise PnyxError(
                ErrorKind.INVALID, "nobody can follow themself", code="cannot_follow_self"
            )
        row = {"follower": follower, "followee": followee, "created_at": now}
        await self._insert_between(Follow, row, follower, followee)

    async def unfollow(self, follower: Handle, followee: Handle) -> None:
        await self._run(
            delete(Follow).where(Follow.follower == follower, Follow.followee == followee)
        )

    async def is_following(self, follower: Handle, followee: Handle) -> bool:
        stmt = select(Follow.follower).where(
            Follow.follower == follower, Follow.followee == followee
        )
        async with self._db.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def followers_count(self, handle: Handle) -> int:
        stmt = select(func.count()).select_from(Follow).where(Follow.followee == handle)
        async with self._db.begin() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def following_count(self, handle: Handle) -> int:
        stmt = select(func.count()).select_from(Follow).where(Follow.follower == handle)
        async with self._db.begin() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def followers_count_capped(self, handle: Handle, cap: int) -> int:
        """``handle``'s followers counted up to ``cap`` (min(count, cap)): O(cap), however
        many followers there are. The fan-out threshold decision needs no more; a
        denormalised counter would need every follow and unfollow to update a hot row."""
        check_limit(cap)
        capped = select(Follow.follower).where(Follow.followee == handle).limit(cap)
        stmt = select(func.count()).select_from(capped.subquery())
        async with self._db.begin() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def following(
        self, handle: Handle, limit: int = 1000, *, after: Handle | None = None
    ) -> list[Handle]:
        """Whom ``handle`` follows, by handle; page with ``after`` = the last one seen."""
        check_limit(limit)
        stmt = select(Follow.followee).where(Follow.follower == handle)
        if after is not None:
            stmt = stmt.where(Follow.followee > after)
        return await self._handles(stmt.order_by(Follow.followee).limit(limit))

    async def followers(
        self, handle: Handle, limit: int = 1000, *, after: Handle | None = None
    ) -> list[Handle]:
        """Who follows ``handle``, by handle; page with ``after`` (notification fan-out)."""
        check_limit(limit)
        stmt = select(Follow.follower).where(Follow.followee == handle)
        if after is not None:
            stmt = stmt.where(Follow.follower > after)
        return await self._handles(stmt.order_by(Follow.follower).limit(limit))

    # -- blocks -----------------------------------------------------------------------
    async def block(self, blocker: Handle, blocked: Handle, now: datetime) -> None:
        """``blocker`` blocks ``blocked`` (no-op if already so). Unknown handle →
        NOT_FOUND "account_not_found"; blocking oneself → INVALID "cannot_block_self"."""
        if blocker == blocked:
            raise PnyxError(
                ErrorKind.INVALID, "nobody can block themself", code="cannot_block_self"
            )
        row = {"blocker": blocker, "blocked": blocked, "created_at": now}
        await self._insert_between(Block, row, blocker, blocked)

    async def unblock(self, blocker: Handle, blocked: Handle) -> None:
        await self._run(delete(Block).where(Block.blocker == blocker, Block.blocked == blocked))

    async def is_blocked(self, blocker: Handle, blocked: Handle) -> bool:
        stmt = select(Block.blocker).where(Block.blocker == blocker, Block.blocked == blocked)
        async with self._db.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def blocked_by(self, blocker: Handle) -> list[Handle]:
        """Everyone ``blocker`` has blocked, by handle."""
        stmt = select(Block.blocked).where(Block.blocker == blocker).order_by(Block.blocked)
        return await self._handles(stmt)

    # -- helpers ----------------------------------------------------------------------
    async def _insert_between(
        self, table: type[Follow | Block], row: dict[str, Any], a: Handle, b: Handle
    ) -> None:
        """Insert the edge a → b unless it exists, after checking both accounts exist
        (the foreign keys back that check up against a concurrent change)."""
        insert_ = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        stmt: Insert = insert_(table).values(**row).on_conflict_do_nothing()
        async with self._db.begin() as conn:
            await _require_accounts(conn, a, b)
            try:
                await conn.execute(stmt)
            except IntegrityError as exc:
                raise _account_not_found(f"@{a} or @{b}") from exc

    async def _run(self, stmt: Delete) -> None:
        async with self._db.begin() as conn:
            await conn.execute(stmt)

    async def _handles(self, stmt: Select[str]) -> list[Handle]:
        async with self._db.begin() as conn:
            return [Handle(h) for h in (await conn.execute(stmt)).scalars()]


async def _require_accounts(conn: AsyncConnection, *handles: Handle) -> None:
    stmt = select(Account.handle).where(Account.handle.in_(handles))
    found = set((await conn.execute(stmt)).scalars())
    for handle in handles:
        if handle not in found:
            raise _account_not_found(f"@{handle}")


def _account_not_found(who: str) -> PnyxError:
    return PnyxError(ErrorKind.NOT_FOUND, f"no account {who}", code="account_not_found")
