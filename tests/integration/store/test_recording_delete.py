"""Deleting a recording in the durable store, on SQLite and PostgreSQL: its header and
segments go, the space is marked, the finished row stays as a tombstone (a late writer is
refused, nothing can finish it again), it leaves the recent replays, deleting again is a
no-op; and an older database gains the column at start."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text

from pnyx.domain.types import SpaceId, SpaceStatus
from pnyx.errors import PnyxError
from pnyx.store import Store
from pnyx.store.records import SegmentMeta

from .factories import NOW, add_accounts, space

ENDED = SpaceId("ended")
OTHER = SpaceId("other")


def seg(msn: int) -> tuple[SegmentMeta, bytes]:
    meta = SegmentMeta(msn, 1.92, NOW + timedelta(seconds=1.92 * msn), False, ((0, 1.92, True),))
    return meta, bytes([msn % 256]) * 100


@pytest.fixture
async def recorded(store: Store) -> Store:
    await add_accounts(store, "host")
    for sid in (ENDED, OTHER):
        await store.spaces.create(replace(space(sid, status=SpaceStatus.ENDED), ended_at=NOW))
        await store.recordings.add(sid, init=b"init", segments=[seg(0), seg(1), seg(2)], now=NOW)
        await store.recordings.finish(sid, NOW)
    return store


async def test_delete_drops_the_bytes_and_keeps_a_tombstone(recorded: Store) -> None:
    later = NOW + timedelta(hours=1)
    assert sorted(r.id for r in await recorded.spaces.recent_replays()) == [ENDED, OTHER]
    assert await recorded.recordings.delete(ENDED, later) is True

    info = await recorded.recordings.info(ENDED)
    assert info is not None
    assert (info.init_size, info.segments, info.finished_at) == (0, (), NOW)  # finished as was
    assert await recorded.recordings.init(ENDED) is None
    assert await recorded.recordings.segment(ENDED, 1) is None
    rec = await recorded.spaces.get(ENDED)
    assert rec is not None and rec.recording_deleted and rec.record
    assert [r.id for r in await recorded.spaces.recent_replays()] == [OTHER]

    # Nothing brings it back: a late writer is refused, finishing is a no-op.
    with pytest.raises(PnyxError) as refused:
        await recorded.recordings.add(ENDED, init=b"init", segments=[seg(3)], now=later)
    assert refused.value.code == "recording_finished"
    assert await recorded.recordings.finish(ENDED, later) is False
    assert await recorded.recordings.segment(ENDED, 3) is None
    assert await recorded.recordings.delete(ENDED, later) is False  # again: nothing to do

    # The other space's recording is untouched.
    other = await recorded.recordings.info(OTHER)
    assert other is not None and [s.msn for s in other.segments] == [0, 1, 2]
    assert await recorded.recordings.segment(OTHER, 1) == seg(1)[1]
    got = await recorded.spaces.get(OTHER)
    assert got is not None and not got.recording_deleted


async def test_deleting_a_recording_still_being_written_finishes_it(store: Store) -> None:
    await add_accounts(store, "host")
    await store.spaces.create(replace(space(ENDED, status=SpaceStatus.ENDED), ended_at=NOW))
    await store.recordings.add(ENDED, init=b"init", segments=[seg(0)], now=NOW)  # not finished
    later = NOW + timedelta(seconds=2)
    assert await store.recordings.delete(ENDED, later) is True
    info = await store.recordings.info(ENDED)
    assert info is not None and info.finished_at == later and info.segments == ()
    with pytest.raises(PnyxError) as refused:  # the writer's next batch
        await store.recordings.add(ENDED, init=None, segments=[seg(1)], now=later)
    assert refused.value.code == "recording_finished"


async def test_deleting_what_was_never_written_leaves_an_empty_tombstone(store: Store) -> None:
    await add_accounts(store, "host")
    await store.spaces.create(replace(space(ENDED, status=SpaceStatus.ENDED), ended_at=NOW))
    assert await store.recordings.delete(ENDED, NOW) is True
    info = await store.recordings.info(ENDED)
    assert info is not None and info.finished_at == NOW and info.init_size == 0
    assert await store.recordings.delete(SpaceId("unknown"), NOW) is False  # no such space


async def test_an_older_database_gains_the_recording_deleted_column(store_url: str) -> None:
    store = await Store.open(store_url)
    await store.create_schema()
    await add_accounts(store, "host")
    await store.spaces.create(space("old"))
    async with store._db.begin() as conn:  # what an older Pnyx left behind
        await conn.execute(text("ALTER TABLE spaces DROP COLUMN recording_deleted"))
    await store.create_schema()
    rec = await store.spaces.get(SpaceId("old"))
    assert rec is not None and rec.recording_deleted is False
    await store.close()
