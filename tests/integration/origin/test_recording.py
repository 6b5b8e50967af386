"""Recordings on disk: durable segment by segment, readable after a restart and a crash."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pnyx.errors import PnyxError
from pnyx.live.base import LiveState
from pnyx.live.memory import MemoryLiveState
from pnyx.media.hls import SegmentRef
from pnyx.media.recording import INDEX, Recordings
from pnyx.services.origin import Origin

from .stream import Stream, assert_tone, decode

SPACE = "sp_rec-1"


async def recorded(origin_live: Stream, segments: int) -> list[SegmentRef]:
    await origin_live.start()
    await origin_live.segments(segments)
    return [s.ref for s in origin_live.segments_made]


@pytest.fixture
async def live() -> AsyncIterator[LiveState]:
    """Recordings do not depend on the live state: the memory one is enough here."""
    state = MemoryLiveState()
    yield state
    await state.close()


@pytest.fixture
def stream(origin: Origin, recordings: Recordings) -> Stream:
    return Stream(origin, SPACE, recordings=recordings)


async def test_a_restart_loses_no_finished_segment(stream: Stream, recordings: Recordings) -> None:
    refs = await recorded(stream, 3)
    again = Recordings(recordings.root)  # a new process, the same folder
    assert again.exists(SPACE)
    assert not again.finished(SPACE)
    assert again.refs(SPACE) == refs
    for seg in stream.segments_made:
        assert again.segment_path(SPACE, seg.ref.msn).read_bytes() == seg.data
    assert again.init_path(SPACE).read_bytes() == stream.stored["init.mp4"]
    again.finish(SPACE)
    assert Recordings(recordings.root).finished(SPACE)


async def test_a_torn_last_index_line_is_skipped_and_appending_goes_on(
    stream: Stream, recordings: Recordings
) -> None:
    refs = await recorded(stream, 2)
    index = recordings.folder(SPACE) / INDEX
    with index.open("ab") as out:  # a crash in the middle of appending entry 2
        out.write(b'{"msn":2,"duration":1.9')
    assert Recordings(recordings.root).refs(SPACE) == refs
    await stream.segments(1)  # the next append ends the torn line first
    assert Recordings(recordings.root).refs(SPACE) == [s.ref for s in stream.segments_made]
    lines = index.read_text().splitlines()
    assert len(lines) == 4  # three entries and the torn one, alone on its line


async def test_an_entry_whose_file_is_gone_is_not_listed(
    stream: Stream, recordings: Recordings
) -> None:
    refs = await recorded(stream, 3)
    os.remove(recordings.segment_path(SPACE, 1))
    assert recordings.refs(SPACE) == [refs[0], refs[2]]


async def test_a_rewritten_segment_replaces_its_entry(
    stream: Stream, recordings: Recordings
) -> None:
    """A failover may record the segment its predecessor left open: the last one wins."""
    refs = await recorded(stream, 2)
    recordings.add_segment(SPACE, refs[1], b"other bytes")
    assert recordings.refs(SPACE) == refs
    assert recordings.segment_path(SPACE, 1).read_bytes() == b"other bytes"


async def test_no_temporary_files_are_left(stream: Stream, recordings: Recordings) -> None:
    await recorded(stream, 2)
    names = {p.name for p in recordings.folder(SPACE).rglob("*")}
    assert names == {"init.mp4", "seg", "0.m4s", "1.m4s", INDEX}


async def test_the_export_is_one_decodable_file(stream: Stream, recordings: Recordings) -> None:
    refs = await recorded(stream, 3)
    chunks = list(recordings.export(SPACE, refs))
    data = b"".join(chunks)
    assert len(data) == recordings.export_size(SPACE, refs)
    assert_tone(decode(data), 5.5)


@pytest.mark.parametrize("space", ["..", "../x", "a/b", "/abs", "", "a" * 65, "a.b", "ü"])
def test_space_ids_cannot_escape_the_root(tmp_path: Path, space: str) -> None:
    recordings = Recordings(tmp_path)
    for call in (
        lambda: recordings.write_init(space, b"x"),
        lambda: recordings.finish(space),
        lambda: recordings.refs(space),
        lambda: recordings.exists(space),
    ):
        with pytest.raises(PnyxError):
            call()
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_space_has_no_recording(tmp_path: Path) -> None:
    recordings = Recordings(tmp_path / "none")
    assert not recordings.exists("nobody")
    assert not recordings.finished("nobody")
    assert recordings.refs("nobody") == []
