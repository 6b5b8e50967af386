"""Recordings in the durable store, so every node serves the same replay: the header and
every finished segment of a recorded space, keyed by (space, msn), and whether it is
finished. Writes are idempotent (a retried or duplicated segment is one row; the first
write wins, and every writer has the same bytes for a given msn). A finished recording is
immutable: ``add`` refuses with CONFLICT "recording_finished". ``delete`` (its host's
choice) drops the header and every segment and marks the space, for good: the row stays,
finished, so no late writer or sealing reader can bring any of it back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from pnyx.domain.types import SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store.checks import check_space_id
from pnyx.store.engine import Database
from pnyx.store.models import Recording, RecordingSegment, Space
from pnyx.store.records import RecordingInfo, SegmentMeta


class RecordingRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _insert(self, table: Any) -> Any:
        """An INSERT … ON CONFLICT DO NOTHING builder for this database."""
        dialect = postgresql if self._db.dialect == "postgresql" else sqlite
        return dialect.insert(table)

    async def add(
        self,
        space: SpaceId,
        *,
        init: bytes | None,
        segments: Sequence[tuple[SegmentMeta, bytes]],
        now: datetime,
    ) -> int:
        """Store the header (if given and none is stored yet) and ``segments``, in one
        transaction; returns how many segments were new. CONFLICT "recording_finished"
        once the recording is finished (nothing is written)."""
        check_space_id(space)
        async with self._db.begin() as conn:
            await self._ensure(conn, space, now)
            # The row is locked (PostgreSQL; SQLite's write lock is already held by the
            # insert above), so a concurrent finish waits for this write or wins before it.
            head = select(Recording.finished_at, Recording.init.is_(None).label("no_init"))
            head = head.where(Recording.space_id == space)
            if self._db.dialect == "postgresql":
                head = head.with_for_update()
            row = (await conn.execute(head)).one()
            if row.finished_at is not None:
                raise PnyxError(
                    ErrorKind.CONFLICT,
                    f"the recording of space {space} is finished: it takes no more media",
                    code="recording_finished",
                )
            if init is not None and row.no_init:
                await conn.execute(
                    update(Recording).where(Recording.space_id == space).values(init=init)
                )
            if not segments:
                return 0
            stmt = (
                self._insert(RecordingSegment)
                .values(
                    [
                        {
                            "space_id": space,
                            "msn": meta.msn,
                            "duration": meta.duration,
                            "program_date_time": meta.program_date_time,
                            "discontinuity": meta.discontinuity,
                            "parts": [list(p) for p in meta.parts],
                            "data": data,
                        }
                        for meta, data in segments
                    ]
                )
                .on_conflict_do_nothing(index_elements=["space_id", "msn"])
            )
            result = await conn.execute(stmt)
            return max(0, result.rowcount)

    async def _ensure(self, conn: AsyncConnection, space: SpaceId, now: datetime) -> None:
        stmt = self._insert(Recording).values(space_id=space, init=None, created_at=now)
        await conn.execute(stmt.on_conflict_do_nothing(index_elements=["space_id"]))

    async def finish(self, space: SpaceId, now: datetime) -> bool:
        """Mark the recording finished (creating it empty if nothing was ever written).
        True if this call finished it, False if it already was."""
        check_space_id(space)
        async with self._db.begin() as conn:
            await self._ensure(conn, space, now)
            result = await conn.execute(
                update(Recording)
                .where(Recording.space_id == space, Recording.finished_at.is_(None))
                .values(finished_at=now)
            )
            return result.rowcount == 1

    async def delete(self, space: SpaceId, now: datetime) -> bool:
        """Delete the recording of ``space``: its header and segments go, the space is
        marked ``recording_deleted``, and the recording row stays as a finished, empty
        tombstone (a writer still flushing is refused from now on, ``recording_finished``,
        and a reader never seals it again). One transaction. True if this call deleted it,
        False if it already was."""
        check_space_id(space)
        async with self._db.begin() as conn:
            marked = await conn.execute(
                update(Space)
                .where(Space.id == space, Space.recording_deleted.is_(False))
                .values(recording_deleted=True)
            )
            if marked.rowcount != 1:
                return False
            await self._ensure(conn, space, now)
            mine = Recording.space_id == space
            await conn.execute(update(Recording).where(mine).values(init=None))
            unfinished = Recording.finished_at.is_(None)
            await conn.execute(update(Recording).where(mine, unfinished).values(finished_at=now))
            await conn.execute(delete(RecordingSegment).where(RecordingSegment.space_id == space))
            return True

    async def info(self, space: SpaceId) -> RecordingInfo | None:
        """The recording's header size, finish time and segments (no bytes); None when
        nothing was ever recorded for ``space``."""
        async with self._db.begin() as conn:
            head = (
                await conn.execute(
                    select(
                        func.coalesce(func.length(Recording.init), 0).label("init_size"),
                        Recording.finished_at,
                    ).where(Recording.space_id == space)
                )
            ).first()
            if head is None:
                return None
            rows = await conn.execute(
                select(
                    RecordingSegment.msn,
                    RecordingSegment.duration,
                    RecordingSegment.program_date_time,
                    RecordingSegment.discontinuity,
                    RecordingSegment.parts,
                    func.length(RecordingSegment.data).label("size"),
                )
                .where(RecordingSegment.space_id == space)
                .order_by(RecordingSegment.msn)
            )
            segments = tuple(
                SegmentMeta(
                    msn=r.msn,
                    duration=r.duration,
                    program_date_time=r.program_date_time,
                    discontinuity=r.discontinuity,
                    parts=tuple((int(i), float(d), bool(ind)) for i, d, ind in r.parts),
                    size=r.size,
                )
                for r in rows
            )
        return RecordingInfo(space, int(head.init_size), head.finished_at, segments)

    async def init(self, space: SpaceId) -> bytes | None:
        async with self._db.begin() as conn:
            return (
                await conn.execute(select(Recording.init).where(Recording.space_id == space))
            ).scalar_one_or_none()

    async def segment(self, space: SpaceId, msn: int) -> bytes | None:
        async with self._db.begin() as conn:
            return (
                await conn.execute(
                    select(RecordingSegment.data).where(
                        RecordingSegment.space_id == space, RecordingSegment.msn == msn
                    )
                )
            ).scalar_one_or_none()

    async def segments_after(
        self, space: SpaceId, after: int, limit: int
    ) -> list[tuple[int, bytes]]:
        """Up to ``limit`` segments' (msn, bytes) with msn > ``after``, in order (paging
        the export so it never holds a whole recording in memory)."""
        async with self._db.begin() as conn:
            rows = await conn.execute(
                select(RecordingSegment.msn, RecordingSegment.data)
                .where(RecordingSegment.space_id == space, RecordingSegment.msn > after)
                .order_by(RecordingSegment.msn)
                .limit(limit)
            )
            return [(r.msn, r.data) for r in rows]
