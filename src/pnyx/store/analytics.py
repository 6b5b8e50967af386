"""Space analytics in the durable store: one row per space, written when the space ends
(the figures its ticker kept) and counted into as its replay is played or downloaded.
Every write is one upsert, so it needs no read first and two nodes cannot lose a count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pnyx.domain.types import SpaceId
from pnyx.store.checks import check_space_id
from pnyx.store.engine import Database
from pnyx.store.models import SpaceAnalytics


@dataclass(frozen=True, slots=True)
class AnalyticsRecord:
    doc: dict[str, Any] | None  # None until the space ended
    replay_plays: int
    replay_downloads: int


class AnalyticsRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _insert(self) -> Any:
        return (pg_insert if self._db.dialect == "postgresql" else sqlite_insert)(SpaceAnalytics)

    async def save(self, space: SpaceId, doc: dict[str, Any]) -> None:
        """Keep ``doc`` as the space's figures (replacing an earlier one)."""
        check_space_id(space)
        stmt = self._insert().values(space_id=space, doc=doc)
        stmt = stmt.on_conflict_do_update(index_elements=["space_id"], set_={"doc": doc})
        async with self._db.begin() as conn:
            await conn.execute(stmt)

    async def count(self, space: SpaceId, what: Literal["play", "download"]) -> None:
        """One more replay play or download."""
        check_space_id(space)
        column = SpaceAnalytics.replay_plays if what == "play" else SpaceAnalytics.replay_downloads
        stmt = self._insert().values(space_id=space, **{column.key: 1})
        stmt = stmt.on_conflict_do_update(
            index_elements=["space_id"], set_={column.key: column + 1}
        )
        async with self._db.begin() as conn:
            await conn.execute(stmt)

    async def get(self, space: SpaceId) -> AnalyticsRecord | None:
        check_space_id(space)
        query = select(
            SpaceAnalytics.doc, SpaceAnalytics.replay_plays, SpaceAnalytics.replay_downloads
        ).where(SpaceAnalytics.space_id == space)
        async with self._db.begin() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        return AnalyticsRecord(row.doc, int(row.replay_plays), int(row.replay_downloads))
