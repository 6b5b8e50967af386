"""Clips in the durable store: one row per clip with its bytes (a whole short .m4a, some
hundreds of kilobytes), written once and never changed."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from pnyx.domain.types import Handle, SpaceId, Visibility
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store.engine import Database
from pnyx.store.models import Clip
from pnyx.store.records import ClipRecord

_META = (
    Clip.id,
    Clip.space_id,
    Clip.creator,
    Clip.host,
    Clip.title,
    Clip.visibility,
    Clip.start_s,
    Clip.duration,
    Clip.created_at,
    func.length(Clip.data).label("size"),
)


class ClipRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, clip: ClipRecord, data: bytes) -> None:
        """Store a new clip; an id already taken → CONFLICT "clip_exists"."""
        stmt = insert(Clip).values(
            id=clip.id,
            space_id=clip.space,
            creator=clip.creator,
            host=clip.host,
            title=clip.title,
            visibility=clip.visibility.value,
            start_s=clip.start_s,
            duration=clip.duration,
            created_at=clip.created_at,
            data=data,
        )
        async with self._db.begin() as conn:
            try:
                await conn.execute(stmt)
            except IntegrityError as exc:
                raise PnyxError(
                    ErrorKind.CONFLICT, f"a clip {clip.id!r} exists", code="clip_exists"
                ) from exc

    async def get(self, clip_id: str) -> ClipRecord | None:
        async with self._db.begin() as conn:
            row = (await conn.execute(select(*_META).where(Clip.id == clip_id))).first()
        if row is None:
            return None
        return ClipRecord(
            id=row.id,
            space=SpaceId(row.space_id),
            creator=Handle(row.creator),
            host=Handle(row.host),
            title=row.title,
            visibility=Visibility(row.visibility),
            start_s=row.start_s,
            duration=row.duration,
            created_at=row.created_at,
            size=int(row.size),
        )

    async def data(self, clip_id: str) -> bytes | None:
        async with self._db.begin() as conn:
            return (
                await conn.execute(select(Clip.data).where(Clip.id == clip_id))
            ).scalar_one_or_none()

    async def delete_of(
        self, *, space: SpaceId | None = None, creator: Handle | None = None
    ) -> int:
        """Delete the clips of a space or made by an account (for deletions of either)."""
        if space is None and creator is None:
            return 0
        conds = []
        if space is not None:
            conds.append(Clip.space_id == space)
        if creator is not None:
            conds.append(Clip.creator == creator)
        async with self._db.begin() as conn:
            result = await conn.execute(delete(Clip).where(or_(*conds)))
            return int(result.rowcount)
