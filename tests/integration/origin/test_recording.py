"""Recordings in the durable store (SQLite and PostgreSQL): written by the recorder off the
media path, idempotent per (space, msn), in order, finished only after the writer flushed,
immutable once finished; and kept through a store outage up to the bound."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from pnyx.config import Settings
from pnyx.domain.types import SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState
from pnyx.live.memory import MemoryLiveState
from pnyx.media.recording import ref_of
from pnyx.services.origin import Origin
from pnyx.services.recorder import Recorder, meta_of
from pnyx.store import Store
from pnyx.store.recordings import RecordingRepo
from pnyx.store.records import SegmentMeta
from tests.support.poll import eventually

from .stream import Stream, assert_tone, decode

SPACE = SpaceId("sp_rec-1")
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def live() -> AsyncIterator[LiveState]:
    """Recordings do not depend on the live state: the memory one is enough here."""
    state = MemoryLiveState()
    yield state
    await state.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'pnyx.db'}"
    else:
        url = request.getfixturevalue("pg_database_url")
    store = await Store.open(url)
    await store.create_schema()
    yield store
    await store.close()


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path, recording_retry_s=0.05, **overrides)


@pytest.fixture
async def recorder(store: Store, tmp_path: Path) -> AsyncIterator[Recorder]:
    rec = Recorder(settings(tmp_path), store.recordings, lambda: NOW.timestamp())
    yield rec
    await rec.close()


def seg(msn: int, *, discontinuity: bool = False) -> SegmentMeta:
    return SegmentMeta(
        msn=msn,
        duration=1.92,
        program_date_time=NOW + timedelta(seconds=1.92 * msn),
        discontinuity=discontinuity,
        parts=tuple((i, 0.32, True) for i in range(6)),
    )


async def test_what_the_recorder_stores_reads_back_whole_and_in_order(
    store: Store, recorder: Recorder, origin: Origin
) -> None:
    stream = Stream(origin, SPACE, recordings=recorder)
    await stream.start()
    await stream.segments(3)
    await stream.flushed()
    info = await store.recordings.info(SPACE)
    assert info is not None and info.finished_at is None
    refs = [ref_of(s.msn, s.duration, s.program_date_time, s.discontinuity, s.parts)
            for s in info.segments]  # fmt: skip
    assert refs == [s.ref for s in stream.segments_made]
    assert await store.recordings.init(SPACE) == stream.stored["init.mp4"]
    for s in stream.segments_made:
        assert await store.recordings.segment(SPACE, s.ref.msn) == s.data
    assert info.size == len(stream.stored["init.mp4"]) + sum(
        len(s.data) for s in stream.segments_made
    )
    whole = stream.stored["init.mp4"] + b"".join(s.data for s in stream.segments_made)
    assert_tone(decode(whole), 5.5)
    await stream.end()
    info = await store.recordings.info(SPACE)
    assert info is not None and info.finished_at == NOW
    assert [s.msn for s in info.segments] == [0, 1, 2, 3]  # the flushed encoder's short one


async def test_writes_are_idempotent_the_first_one_wins(store: Store) -> None:
    repo = store.recordings
    assert await repo.add(SPACE, init=b"head", segments=[(seg(0), b"zero")], now=NOW) == 1
    # a retried batch, a duplicate from a node taking over, another header: no change
    assert await repo.add(SPACE, init=b"other", segments=[(seg(0), b"again")], now=NOW) == 0
    assert (
        await repo.add(SPACE, init=None, segments=[(seg(0), b"x"), (seg(1), b"one")], now=NOW) == 1
    )
    assert await repo.init(SPACE) == b"head"
    assert await repo.segment(SPACE, 0) == b"zero"
    info = await repo.info(SPACE)
    assert info is not None and [s.msn for s in info.segments] == [0, 1]
    assert [s.size for s in info.segments] == [4, 3]


async def test_segments_list_in_sequence_order_with_their_discontinuities(store: Store) -> None:
    repo = store.recordings
    for msn in (7, 3, 4, 9):
        await repo.add(
            SPACE, init=b"h", segments=[(seg(msn, discontinuity=msn == 7), b"d")], now=NOW
        )
    info = await repo.info(SPACE)
    assert info is not None
    assert [(s.msn, s.discontinuity) for s in info.segments] == [
        (3, False), (4, False), (7, True), (9, False)
    ]  # fmt: skip
    assert info.segments[0] == dataclasses.replace(seg(3), size=1)
    page = await repo.segments_after(SPACE, 3, 2)
    assert [m for m, _ in page] == [4, 7]
    assert await repo.info(SpaceId("sp_other")) is None


async def test_a_finished_recording_takes_nothing_more(store: Store) -> None:
    repo = store.recordings
    await repo.add(SPACE, init=b"h", segments=[(seg(0), b"a")], now=NOW)
    assert await repo.finish(SPACE, NOW)
    assert not await repo.finish(SPACE, NOW + timedelta(seconds=5))  # already: unchanged
    with pytest.raises(PnyxError) as caught:
        await repo.add(SPACE, init=None, segments=[(seg(1), b"late")], now=NOW)
    assert caught.value.code == "recording_finished"
    info = await repo.info(SPACE)
    assert info is not None and info.finished_at == NOW and len(info.segments) == 1
    # finishing what was never written leaves an empty, finished recording
    assert await repo.finish(SpaceId("sp_empty"), NOW)
    empty = await repo.info(SpaceId("sp_empty"))
    assert empty is not None and empty.init_size == 0 and empty.segments == ()


class FlakyRepo(RecordingRepo):
    """The real repository, refusing as an unreachable database would while ``down``."""

    def __init__(self, real: RecordingRepo) -> None:
        self.real = real
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise PnyxError(
                ErrorKind.UNAVAILABLE, "database down (test)", code="database_unavailable"
            )

    async def add(self, space: SpaceId, *, init: bytes | None,
                  segments: Sequence[tuple[SegmentMeta, bytes]], now: datetime) -> int:  # fmt: skip
        self._check()
        return await self.real.add(space, init=init, segments=segments, now=now)

    async def finish(self, space: SpaceId, now: datetime) -> bool:
        self._check()
        return await self.real.finish(space, now)


def dropped(why: str) -> float:
    return REGISTRY.get_sample_value("pnyx_recording_segments_dropped_total", {"why": why}) or 0.0


async def test_a_store_outage_keeps_segments_and_finishes_only_after_the_flush(
    store: Store, tmp_path: Path, origin: Origin
) -> None:
    flaky = FlakyRepo(store.recordings)
    recorder = Recorder(settings(tmp_path), flaky, lambda: NOW.timestamp())
    try:
        stream = Stream(origin, SPACE, recordings=recorder)
        await stream.start()
        await stream.segments(1)
        await stream.flushed()
        flaky.down = True
        await stream.segments(3)  # the live stream goes on; the recorder holds them
        recorder.finish(SPACE)
        calls = flaky.calls
        await eventually(lambda: flaky.calls >= calls + 3, 5, "retries while down")
        info = await store.recordings.info(SPACE)
        assert info is not None and info.finished_at is None and len(info.segments) == 1
        assert recorder.pending(SPACE)
        flaky.down = False
        await stream.flushed()
        info = await store.recordings.info(SPACE)
        assert info is not None and info.finished_at is not None
        assert [s.msn for s in info.segments] == [s.ref.msn for s in stream.segments_made]
    finally:
        await recorder.close()


async def test_above_the_bound_the_oldest_pending_are_dropped_and_counted(
    store: Store, tmp_path: Path, origin: Origin
) -> None:
    flaky = FlakyRepo(store.recordings)
    flaky.down = True
    recorder = Recorder(
        settings(tmp_path, recording_queue_segments=2), flaky, lambda: NOW.timestamp()
    )
    before = dropped("queue_full")
    try:
        stream = Stream(origin, SPACE, recordings=recorder)
        await stream.start()
        await stream.segments(5)
        assert dropped("queue_full") - before == 3
        flaky.down = False
        await stream.flushed()
        info = await store.recordings.info(SPACE)
        assert info is not None and [s.msn for s in info.segments] == [3, 4]  # the newest
    finally:
        await recorder.close()


def test_meta_round_trips_a_segment_ref(origin: Origin) -> None:
    from pnyx.media.hls import PartRef, SegmentRef

    ref = SegmentRef(
        msn=5, duration=1.6, program_date_time=NOW,
        parts=(PartRef(5, 0, 0.32, True), PartRef(5, 1, 0.32, False)), discontinuity=True,
    )  # fmt: skip
    m = meta_of(ref)
    assert ref_of(m.msn, m.duration, m.program_date_time, m.discontinuity, m.parts) == ref
