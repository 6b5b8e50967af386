"""Spaces and their durable room. ``update_room`` is a compare-and-swap on the room's
version: the one way several API processes serialise commands on one space.

Per-host caps (:class:`~pnyx.store.records.HostCap`: live or scheduled spaces one
account hosts at once) are checked in the transaction that adds a space to the capped
status, after a no-op write to the host's account row: that row lock (PostgreSQL) or the
write lock (SQLite) makes two nodes creating or starting at once for one host take
turns, so the count each sees includes the other's space and the cap holds.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    and_,
    case,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pnyx.domain.types import Audience, Handle, SpaceId, SpaceStatus, Visibility
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store.checks import check_limit, check_space_id
from pnyx.store.engine import Database
from pnyx.store.models import (
    SEARCH_CONFIG,
    Account,
    Follow,
    Recording,
    Space,
    TranscriptCue,
    search_document,
    transcript_document,
)
from pnyx.store.records import HostCap, OutboxMessage, SpaceRecord
from pnyx.store.webhooks import write_outbox

# How each status lists: live spaces newest first, scheduled ones soonest first, ended
# and cancelled ones most recently finished first. The id breaks ties, so paging is stable.
_ORDER: dict[SpaceStatus, tuple[ColumnElement[Any], ...]] = {
    SpaceStatus.LIVE: (func.coalesce(Space.started_at, Space.created_at).desc(), Space.id.asc()),
    SpaceStatus.SCHEDULED: (Space.scheduled_start.asc().nulls_last(), Space.id.asc()),
    SpaceStatus.ENDED: (func.coalesce(Space.ended_at, Space.created_at).desc(), Space.id.asc()),
    SpaceStatus.CANCELLED: (func.coalesce(Space.ended_at, Space.created_at).desc(), Space.id.asc()),
}


def _escape(word: str) -> str:
    """``word`` as a LIKE pattern's literal part (``\\`` escapes)."""
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SpaceRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        record: SpaceRecord,
        cap: HostCap | None = None,
        outbox: Sequence[OutboxMessage] = (),
    ) -> None:
        """Store a new space, and ``outbox`` (its webhook messages) in the same
        transaction. Unknown host → NOT_FOUND "account_not_found"; an id already
        used → CONFLICT "space_exists"; the host at ``cap`` already (for the record's
        status) → CONFLICT "too_many_live_spaces" / "too_many_scheduled_spaces"."""
        check_space_id(record.id)
        stmt = insert(Space).values(
            id=record.id,
            host=record.host,
            title=record.title,
            status=record.status.value,
            record=record.record,
            scheduled_start=record.scheduled_start,
            created_at=record.created_at,
            started_at=record.started_at,
            ended_at=record.ended_at,
            room=record.room,
            room_version=record.room_version,
            visibility=record.visibility.value,
            audience=record.audience.value,
            captions=record.captions,
        )
        async with self._db.begin() as conn:
            if not await _lock_host(conn, record.host):
                raise PnyxError(
                    ErrorKind.NOT_FOUND, f"no account @{record.host}", code="account_not_found"
                )
            if cap is not None and cap.status is record.status:
                await _check_cap(conn, record.host, cap)
            try:
                await conn.execute(stmt)
            except IntegrityError as exc:
                raise PnyxError(
                    ErrorKind.CONFLICT, f"a space {record.id!r} exists", code="space_exists"
                ) from exc
            await write_outbox(conn, outbox, record.created_at)

    async def get(self, space_id: SpaceId) -> SpaceRecord | None:
        async with self._db.begin() as conn:
            row = (await conn.execute(select(Space).where(Space.id == space_id))).first()
        return None if row is None else record_of(row)

    async def list(
        self, status: SpaceStatus, limit: int = 50, *, visibility: Visibility | None = None
    ) -> builtins.list[SpaceRecord]:
        """Spaces in ``status``: live ones newest first, scheduled ones soonest first,
        ended or cancelled ones most recently ended first; only those of ``visibility``
        when given (the public lists pass PUBLIC)."""
        check_limit(limit)
        stmt = select(Space).where(Space.status == status.value)
        if visibility is not None:
            stmt = stmt.where(Space.visibility == visibility.value)
        stmt = stmt.order_by(*_ORDER[status]).limit(limit)
        async with self._db.begin() as conn:
            return [record_of(row) for row in await conn.execute(stmt)]

    async def search(
        self, query: str, limit: int = 50, *, status: SpaceStatus | None = None
    ) -> builtins.list[SpaceRecord]:
        """Public spaces whose title, host's handle or transcript match ``query``: live ones first,
        then scheduled, then ended (most recent first within each), at most ``limit``.
        PostgreSQL: full text (``websearch_to_tsquery`` against the GIN-indexed
        ``SEARCH_DOCUMENT``: stemmed words, quoted phrases, ``-word``). SQLite: every word
        is a substring of the title or the handle (case-insensitive for ASCII). Only
        spaces in ``status`` when given."""
        check_limit(limit)
        words = query.split()
        if not words:
            return []

        def spoken(words_match: ColumnElement[bool]) -> ColumnElement[bool]:
            """Said in one of the space's captions (its transcript)."""
            return exists().where(TranscriptCue.space_id == Space.id, words_match)

        if self._db.dialect == "postgresql":
            document: ColumnElement[Any] = literal_column(search_document("spaces."))
            tsquery = func.websearch_to_tsquery(literal_column(f"'{SEARCH_CONFIG}'"), query)
            said: ColumnElement[Any] = literal_column(transcript_document("transcript_cues."))
            match: ColumnElement[bool] = or_(
                document.op("@@")(tsquery), spoken(said.op("@@")(tsquery))
            )
        else:
            match = and_(
                *(
                    or_(
                        Space.title.like(f"%{_escape(w)}%", escape="\\"),
                        Space.host.like(f"%{_escape(w)}%", escape="\\"),
                        spoken(TranscriptCue.text.like(f"%{_escape(w)}%", escape="\\")),
                    )
                    for w in words
                )
            )
        rank = case(
            (Space.status == SpaceStatus.LIVE.value, 0),
            (Space.status == SpaceStatus.SCHEDULED.value, 1),
            else_=2,
        )
        stmt = (
            select(Space)
            .where(match, Space.visibility == Visibility.PUBLIC.value)
            .where(Space.status != SpaceStatus.CANCELLED.value)
            .where(Space.status == status.value if status is not None else true())
            .order_by(
                rank,
                func.coalesce(Space.ended_at, Space.started_at, Space.created_at).desc(),
                Space.id.asc(),
            )
            .limit(limit)
        )
        async with self._db.begin() as conn:
            return [record_of(row) for row in await conn.execute(stmt)]

    async def recent_replays(self, limit: int = 20) -> builtins.list[SpaceRecord]:
        """Ended public spaces whose recording is finished, most recently ended first."""
        check_limit(limit)
        stmt = (
            select(Space)
            .join(Recording, Recording.space_id == Space.id)
            .where(
                Space.status == SpaceStatus.ENDED.value,
                Space.visibility == Visibility.PUBLIC.value,
                Recording.finished_at.is_not(None),
                Space.recording_deleted.is_(False),
            )
            .order_by(*_ORDER[SpaceStatus.ENDED])
            .limit(limit)
        )
        async with self._db.begin() as conn:
            return [record_of(row) for row in await conn.execute(stmt)]

    async def hosted_by(
        self,
        host: Handle,
        status: SpaceStatus,
        limit: int = 20,
        *,
        offset: int = 0,
        visibilities: frozenset[Visibility] | None = None,
    ) -> builtins.list[SpaceRecord]:
        """Spaces ``host`` hosts in ``status``, ordered as ``list`` orders them (the host
        index), ``offset`` of them skipped; only those of ``visibilities`` when given."""
        check_limit(limit)
        stmt = select(Space).where(Space.host == host, Space.status == status.value)
        if visibilities is not None:
            stmt = stmt.where(Space.visibility.in_(sorted(v.value for v in visibilities)))
        stmt = stmt.order_by(*_ORDER[status]).offset(max(0, offset)).limit(limit)
        async with self._db.begin() as conn:
            return [record_of(row) for row in await conn.execute(stmt)]

    async def followed_by(
        self,
        handle: Handle,
        status: SpaceStatus,
        limit: int = 50,
        *,
        followers_may_see: bool = False,
    ) -> builtins.list[SpaceRecord]:
        """Spaces in ``status`` whose host ``handle`` follows, ordered as ``list`` orders
        them (one join on the follows index; no list of hosts crosses the wire). Public
        spaces only, and with ``followers_may_see`` the private ones whose audience is
        the host's followers too; never unlisted ones."""
        check_limit(limit)
        followed = select(Follow.followee).where(Follow.follower == handle)
        seen: ColumnElement[bool] = Space.visibility == Visibility.PUBLIC.value
        if followers_may_see:
            seen = or_(
                seen,
                and_(
                    Space.visibility == Visibility.PRIVATE.value,
                    Space.audience == Audience.FOLLOWERS.value,
                ),
            )
        stmt = select(Space).where(Space.status == status.value, Space.host.in_(followed), seen)
        stmt = stmt.order_by(*_ORDER[status]).limit(limit)
        async with self._db.begin() as conn:
            return [record_of(row) for row in await conn.execute(stmt)]

    async def update_room(
        self,
        space_id: SpaceId,
        room: dict[str, Any],
        *,
        expected_version: int,
        new_version: int,
        status: SpaceStatus,
        started_at: datetime | None,
        ended_at: datetime | None,
        cap: tuple[Handle, HostCap] | None = None,
        outbox: Sequence[OutboxMessage] = (),
        now: datetime | None = None,
    ) -> bool:
        """Replace the room, its version and the status if, and only if, the stored
        version is still ``expected_version`` (one atomic UPDATE). True when this call
        won; False when another writer changed the space first (re-read and retry).

        ``started_at``/``ended_at`` are set once: None leaves the stored value as it is.
        An unknown space → NOT_FOUND "space_not_found". ``cap``: the space's host and a
        cap on ``status`` to check first (a space going live), in the same transaction:
        CONFLICT "too_many_live_spaces" when the host is at it. ``outbox``: webhook
        messages of the change, written (due ``now``) only if this call won, in the same
        transaction."""
        if new_version <= expected_version:
            raise PnyxError(
                ErrorKind.INVALID,
                f"new_version {new_version} must exceed expected_version {expected_version}",
                code="bad_version",
            )
        values: dict[str, Any] = {"room": room, "room_version": new_version, "status": status.value}
        if started_at is not None:
            values["started_at"] = started_at
        if ended_at is not None:
            values["ended_at"] = ended_at
        stmt = (
            update(Space)
            .where(Space.id == space_id, Space.room_version == expected_version)
            .values(**values)
        )
        async with self._db.begin() as conn:
            if cap is not None:
                host, host_cap = cap
                await _lock_host(conn, host)
                await _check_cap(conn, host, host_cap, other_than=space_id)
            changed = (await conn.execute(stmt)).rowcount
            if changed == 1:
                if outbox:
                    assert now is not None, "outbox messages need the time they are due"
                    await write_outbox(conn, outbox, now)
                return True
            exists = await conn.execute(select(Space.id).where(Space.id == space_id))
            if exists.first() is None:
                raise PnyxError(
                    ErrorKind.NOT_FOUND, f"no space {space_id!r}", code="space_not_found"
                )
            return False

    async def bump_room(
        self, space_id: SpaceId, room: dict[str, Any], expected_version: int
    ) -> bool:
        """Store ``room`` as version ``expected_version + 1`` if the stored version is
        still ``expected_version`` (status and times unchanged); False otherwise."""
        stmt = (
            update(Space)
            .where(Space.id == space_id, Space.room_version == expected_version)
            .values(room=room, room_version=expected_version + 1)
        )
        async with self._db.begin() as conn:
            return bool((await conn.execute(stmt)).rowcount == 1)

    async def edit(
        self,
        space_id: SpaceId,
        room: dict[str, Any],
        *,
        expected_version: int,
        new_version: int,
        title: str,
        scheduled_start: datetime | None,
    ) -> bool:
        """Change a scheduled space's title and start (and its room, which carries the
        title) if the stored version is still ``expected_version``; True when this call
        won. Only a space still scheduled is changed."""
        stmt = (
            update(Space)
            .where(
                Space.id == space_id,
                Space.room_version == expected_version,
                Space.status == SpaceStatus.SCHEDULED.value,
            )
            .values(
                room=room, room_version=new_version, title=title, scheduled_start=scheduled_start
            )
        )
        async with self._db.begin() as conn:
            return bool((await conn.execute(stmt)).rowcount == 1)

    async def set_cancel_reason(self, space_id: SpaceId, reason: str) -> None:
        stmt = update(Space).where(Space.id == space_id).values(cancel_reason=reason)
        async with self._db.begin() as conn:
            await conn.execute(stmt)


def record_of(row: Row[Any]) -> SpaceRecord:
    return SpaceRecord(
        id=SpaceId(row.id),
        host=Handle(row.host),
        title=row.title,
        status=SpaceStatus(row.status),
        record=row.record,
        scheduled_start=row.scheduled_start,
        created_at=row.created_at,
        room=row.room,
        room_version=row.room_version,
        started_at=row.started_at,
        ended_at=row.ended_at,
        visibility=Visibility(row.visibility),
        audience=Audience(row.audience),
        cancel_reason=row.cancel_reason or "",
        captions=bool(row.captions),
        recording_deleted=bool(row.recording_deleted),
    )


async def _lock_host(conn: AsyncConnection, host: Handle) -> bool:
    """Write-lock the host's account row (a no-op update); False when there is none."""
    stmt = update(Account).where(Account.handle == host).values(display_name=Account.display_name)
    return bool((await conn.execute(stmt)).rowcount == 1)


_CAP_CODES = {
    SpaceStatus.LIVE: ("too_many_live_spaces", "live", "end one before starting another"),
    SpaceStatus.SCHEDULED: (
        "too_many_scheduled_spaces",
        "scheduled",
        "cancel one, or wait until one has started, before scheduling another",
    ),
}


async def _check_cap(
    conn: AsyncConnection, host: Handle, cap: HostCap, other_than: str | None = None
) -> None:
    where = [Space.host == host, Space.status == cap.status.value]
    if other_than is not None:
        where.append(Space.id != other_than)
    count = (await conn.execute(select(func.count()).select_from(Space).where(*where))).scalar()
    if (count or 0) >= cap.limit:
        code, what, fix = _CAP_CODES.get(
            cap.status, (f"too_many_{cap.status.value}_spaces", cap.status.value, "")
        )
        raise PnyxError(
            ErrorKind.CONFLICT,
            f"@{host} already hosts {count} {what} space{'s' if count != 1 else ''}, "
            f"the most one account may have at once: {fix}",
            code=code,
        )
