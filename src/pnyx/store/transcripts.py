"""Transcripts in the durable store: every caption of a captioned space, as it is
recognised, so a transcript survives the node that made it (like the recording). Writes
are idempotent: a cue is keyed by (space, start in ms), and a retried batch is one row
each."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from pnyx.domain.types import SpaceId
from pnyx.store.checks import check_space_id
from pnyx.store.engine import Database
from pnyx.store.models import TranscriptCue
from pnyx.store.records import CueRecord

MAX_CUES = 100_000  # one read's bound: about 55 hours of continuous speech


class TranscriptRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, space: SpaceId, cues: Sequence[CueRecord]) -> None:
        check_space_id(space)
        if not cues:
            return
        dialect = postgresql if self._db.dialect == "postgresql" else sqlite
        rows = [
            {
                "space_id": space,
                "start_ms": round(c.start * 1000),
                "end_ms": round(c.end * 1000),
                "speaker": c.speaker,
                "text": c.text,
            }
            for c in cues
        ]
        stmt = dialect.insert(TranscriptCue).values(rows).on_conflict_do_nothing()
        async with self._db.begin() as conn:
            await conn.execute(stmt)

    async def cues(self, space: SpaceId, limit: int = MAX_CUES) -> list[CueRecord]:
        """The space's cues in time order (at most ``limit``)."""
        check_space_id(space)
        stmt = (
            select(TranscriptCue)
            .where(TranscriptCue.space_id == space)
            .order_by(TranscriptCue.start_ms)
            .limit(limit)
        )
        async with self._db.begin() as conn:
            return [
                CueRecord(r.start_ms / 1000, r.end_ms / 1000, r.speaker, r.text)
                for r in await conn.execute(stmt)
            ]

    async def delete(self, space: SpaceId) -> int:
        check_space_id(space)
        async with self._db.begin() as conn:
            result = await conn.execute(
                delete(TranscriptCue).where(TranscriptCue.space_id == space)
            )
            return int(result.rowcount or 0)
