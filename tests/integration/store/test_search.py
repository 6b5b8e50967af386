"""Search, recent replays and clips in the durable store, on SQLite and PostgreSQL:
matches by title and host, public spaces only, live ones first, bounded; the replays
that are finished; clips round-trip with their bytes; and PostgreSQL uses its GIN index (added
to an older database at start)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from pnyx.domain.types import Handle, SpaceId, SpaceStatus, Visibility
from pnyx.store import Store
from pnyx.store.records import ClipRecord

from .factories import NOW, add_accounts, minutes, space


@pytest.fixture
async def spaces(store: Store) -> Store:
    await add_accounts(store, "ada", "bob", "mulcher")
    rows = [
        ("live-a", "ada", "Gardening with friends", SpaceStatus.LIVE, Visibility.PUBLIC),
        ("live-b", "bob", "Jazz night", SpaceStatus.LIVE, Visibility.PUBLIC),
        ("sched", "bob", "Gardening at dawn", SpaceStatus.SCHEDULED, Visibility.PUBLIC),
        ("ended", "mulcher", "Compost questions", SpaceStatus.ENDED, Visibility.PUBLIC),
        ("gone", "ada", "Gardening cancelled", SpaceStatus.CANCELLED, Visibility.PUBLIC),
        ("unl", "ada", "Gardening secrets", SpaceStatus.LIVE, Visibility.UNLISTED),
        ("p-priv", "ada", "Gardening plans", SpaceStatus.LIVE, Visibility.PRIVATE),
        ("odd", "bob", "100% off_topic", SpaceStatus.LIVE, Visibility.PUBLIC),
    ]
    for i, (sid, host, title, status, vis) in enumerate(rows):
        rec = replace(
            space(sid, host=host, status=status, created_at=NOW + minutes(i)),
            title=title,
            visibility=vis,
            ended_at=NOW + minutes(30 + i) if status is SpaceStatus.ENDED else None,
        )
        await store.spaces.create(rec)
    return store


async def ids(store: Store, q: str, limit: int = 50) -> list[str]:
    return [r.id for r in await store.spaces.search(q, limit)]


async def test_search_matches_titles_and_hosts_of_public_spaces(spaces: Store) -> None:
    # Live first, then scheduled, then ended; never cancelled, unlisted or private.
    assert await ids(spaces, "gardening") == ["live-a", "sched"]
    assert await ids(spaces, "GARDENING") == ["live-a", "sched"]
    assert await ids(spaces, "mulcher") == ["ended"]  # a host's handle
    assert await ids(spaces, "jazz night") == ["live-b"]
    assert await ids(spaces, "jazz gardening") == []  # every word must match
    assert await ids(spaces, "gardening", limit=1) == ["live-a"]
    scheduled = await spaces.spaces.search("gardening", 1, status=SpaceStatus.SCHEDULED)
    assert [r.id for r in scheduled] == ["sched"]
    assert await ids(spaces, "   ") == []


async def test_search_words_are_words_not_patterns(spaces: Store, store_url: str) -> None:
    if store_url.startswith("sqlite"):  # substrings, literally: no wildcards
        assert await ids(spaces, "%") == ["odd"]
        assert await ids(spaces, "_") == ["odd"]
        assert await ids(spaces, "0%") == ["odd"]
        assert await ids(spaces, "n_o") == []  # "_" is no wildcard
    else:  # full text: stemmed words; punctuation is no word
        assert await ids(spaces, "%") == []
        assert await ids(spaces, "_") == []
        assert await ids(spaces, "garden") == ["live-a", "sched"]
        assert await ids(spaces, '"jazz night" -gardening') == ["live-b"]


# PostgreSQL only (SQLite scans, bounded by the limit): the store fixture on one backend.
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_postgres_search_uses_the_gin_index(spaces: Store, store_url: str) -> None:
    engine = spaces._db._engine  # the test looks at the plan, not the API
    async with engine.begin() as conn:  # a database from before search: no index
        await conn.execute(text("DROP INDEX ix_spaces_search"))
    await spaces.create_schema()  # the next start adds it
    async with engine.begin() as conn:
        names = (
            await conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename='spaces'"))
        ).scalars()
        assert "ix_spaces_search" in set(names)
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            (
                await conn.execute(
                    text(
                        "EXPLAIN SELECT id FROM spaces WHERE to_tsvector('english', "
                        "spaces.title || ' ' || spaces.host) @@ "
                        "websearch_to_tsquery('english', 'jazz')"
                    )
                )
            ).scalars()
        )
    assert "ix_spaces_search" in plan, plan


async def test_recent_replays_are_finished_public_recordings(spaces: Store) -> None:
    assert await spaces.spaces.recent_replays() == []  # no recording yet
    await spaces.recordings.add(SpaceId("ended"), init=b"init", segments=[], now=NOW)
    assert await spaces.spaces.recent_replays() == []  # not finished
    await spaces.recordings.finish(SpaceId("ended"), NOW)
    assert [r.id for r in await spaces.spaces.recent_replays()] == ["ended"]


async def test_clips_round_trip(spaces: Store) -> None:
    at = datetime(2025, 5, 1, 13, 0, tzinfo=UTC)
    clip = ClipRecord(
        id="abc_DEF-123",
        space=SpaceId("live-a"),
        creator=Handle("bob"),
        host=Handle("ada"),
        title="Gardening with friends",
        visibility=Visibility.PUBLIC,
        start_s=12.5,
        duration=30.72,
        created_at=at,
    )
    await spaces.clips.add(clip, b"\x00" * 1000)
    assert await spaces.clips.get(clip.id) == replace(clip, size=1000)
    assert await spaces.clips.data(clip.id) == b"\x00" * 1000
    assert await spaces.clips.get("nope") is None
    assert await spaces.clips.delete_of(space=SpaceId("live-a")) == 1
    assert await spaces.clips.get(clip.id) is None
