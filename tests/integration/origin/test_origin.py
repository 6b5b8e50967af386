"""The origin over each live state, fed the way the stage node feeds it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pnyx.domain.types import SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState
from pnyx.live.keys import hls_key
from pnyx.live.redis import RedisLiveState
from pnyx.services.origin import PLAYLIST, Origin, state_version

from .conftest import BLOCK_S, make_settings
from .stream import Stream, assert_tone, decode

SPACE = "sp_origin-1"


async def started(origin: Origin, space: str = SPACE) -> Stream:
    stream = Stream(origin, space)
    await stream.start()
    return stream


async def pending(task: asyncio.Task[object], seconds: float = 0.3) -> bool:
    """True if ``task`` is still running after ``seconds`` (it is being held)."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return not done


async def test_no_audio_yet_is_not_found(origin: Origin) -> None:
    with pytest.raises(PnyxError) as err:
        await origin.playlist(SpaceId(SPACE), "ll", None, None)
    assert err.value.kind is ErrorKind.NOT_FOUND
    assert err.value.code == "no_audio"


async def test_bytes_come_back_identical_and_playlists_list_them(origin: Origin) -> None:
    stream = await started(origin)
    await stream.segments(2)
    await stream.parts(2)
    for name, data in stream.stored.items():
        assert await origin.media_object(SpaceId(SPACE), name) == data
    ll = await origin.playlist(SpaceId(SPACE), "ll", None, None)
    assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES" in ll
    assert 'URI="part/2.1.m4s"' in ll
    assert '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/2.2.m4s"' in ll
    assert "seg/1.m4s" in ll
    plain = await origin.playlist(SpaceId(SPACE), "plain", None, None)
    assert "EXT-X-PART" not in plain
    assert plain.count("#EXTINF:") == 2


async def test_what_a_listener_fetches_decodes_to_the_tone(origin: Origin) -> None:
    stream = await started(origin)
    await stream.segments(2)
    await stream.parts(3)
    space = SpaceId(SPACE)
    init = await origin.media_object(space, "init.mp4")
    segments = [await origin.media_object(space, f"seg/{m}.m4s") for m in (0, 1)]
    assert_tone(decode(init + b"".join(segments)), 3.5)
    parts = [await origin.media_object(space, f"part/2.{i}.m4s") for i in range(3)]
    assert_tone(decode(init + b"".join(parts)), 0.9)


async def test_blocking_reload_is_released_when_the_part_is_stored(origin: Origin) -> None:
    stream = await started(origin)
    await stream.parts(2)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(origin.playlist(SpaceId(SPACE), "ll", 0, 2))
    assert await pending(task), "the request for a part not yet made must wait"
    stored_at = loop.time()
    await stream.parts(1)
    text = await asyncio.wait_for(task, 2)
    assert loop.time() - stored_at < 0.5
    assert 'URI="part/0.2.m4s"' in text


async def test_blocking_reload_on_a_whole_segment(origin: Origin) -> None:
    stream = await started(origin)
    await stream.parts(5)
    task = asyncio.create_task(origin.playlist(SpaceId(SPACE), "plain", 0, None))
    assert await pending(task)
    await stream.parts(1)  # the sixth part closes segment 0
    assert "seg/0.m4s" in await asyncio.wait_for(task, 2)


async def test_blocking_reload_already_satisfied_answers_at_once(origin: Origin) -> None:
    stream = await started(origin)
    await stream.segments(1)
    text = await asyncio.wait_for(origin.playlist(SpaceId(SPACE), "ll", 0, 3), 0.5)
    assert "seg/0.m4s" in text


async def test_blocking_reload_times_out_with_unavailable(origin: Origin) -> None:
    stream = await started(origin)
    await stream.parts(1)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(PnyxError) as err:
        await origin.playlist(SpaceId(SPACE), "ll", 0, 1)
    assert err.value.kind is ErrorKind.UNAVAILABLE
    assert err.value.code == "not_ready"
    assert BLOCK_S - 0.05 <= loop.time() - began < BLOCK_S + 1.0


@pytest.mark.parametrize(
    ("msn", "part"),
    [
        (3, None),  # more than two segments past the last one
        (0, 12),  # beyond the Advance Part Limit (3 s of 0.32 s parts ≈ 9.4 parts)
        (None, 1),  # _HLS_part without _HLS_msn
        (-1, None),
    ],
)
async def test_bad_or_too_far_directives_are_malformed(
    origin: Origin, msn: int | None, part: int | None
) -> None:
    stream = await started(origin)
    await stream.parts(1)
    with pytest.raises(PnyxError) as err:
        await asyncio.wait_for(origin.playlist(SpaceId(SPACE), "ll", msn, part), 0.5)
    assert err.value.kind is ErrorKind.MALFORMED


async def test_the_captions_playlist_blocks_until_the_next_file_is_listed(
    origin: Origin,
) -> None:
    """Files of 3 parts (half a segment of 6): file 0 once 3 parts exist, file 2 (the
    next segment's first) once 9 do. A player whose playhead is ahead of a timed reload's
    last file would otherwise load no captions (render_captions)."""
    stream = Stream(origin, SPACE, captions=True)
    await stream.start()
    await stream.parts(1)
    space = SpaceId(SPACE)
    first = await origin.playlist(space, "captions", None, None)
    assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES" in first and ".vtt" not in first
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(origin.playlist(space, "captions", 0, None))
    assert await pending(task), "a reload for a file not yet listed must wait"
    await stream.parts(1)
    assert await pending(task, 0.1), "two parts of three: still not listed"
    stored_at = loop.time()
    await stream.parts(1)
    text = await asyncio.wait_for(task, 2)
    assert loop.time() - stored_at < 0.5
    assert text.splitlines()[-1] == "vtt/0.0.vtt"
    # Already listed: at once; the segment's second file comes with its sixth part.
    assert "vtt/0.0.vtt" in await asyncio.wait_for(origin.playlist(space, "captions", 0, None), 0.5)
    task = asyncio.create_task(origin.playlist(space, "captions", 2, None))
    await stream.parts(3)
    assert await pending(task, 0.1)
    await stream.parts(3)
    assert (await asyncio.wait_for(task, 2)).splitlines()[-1] == "vtt/1.0.vtt"


@pytest.mark.parametrize(
    ("msn", "part", "code"),
    [(4, None, "too_far_ahead"), (0, 0, "bad_directive"), (None, 0, "bad_directive")],
)
async def test_bad_captions_directives_are_malformed(
    origin: Origin, msn: int | None, part: int | None, code: str
) -> None:
    """Files 0 and 1 listed (7 parts): 3 is the furthest a reload may ask for; no parts."""
    stream = Stream(origin, SPACE, captions=True)
    await stream.start()
    await stream.parts(7)
    assert (await origin.playlist(SpaceId(SPACE), "captions", None, None)).count(".vtt") == 2
    with pytest.raises(PnyxError) as err:
        await asyncio.wait_for(origin.playlist(SpaceId(SPACE), "captions", msn, part), 0.5)
    assert err.value.kind is ErrorKind.MALFORMED and err.value.code == code


async def test_an_uncaptioned_space_has_no_captions_playlist(origin: Origin) -> None:
    await (await started(origin)).parts(3)
    with pytest.raises(PnyxError) as err:
        await origin.playlist(SpaceId(SPACE), "captions", 0, None)
    assert err.value.kind is ErrorKind.NOT_FOUND and err.value.code == "no_captions"


@pytest.mark.parametrize(
    "name",
    [
        "init.mp3",
        "part/0.0.m4",
        "part/00.0.m4s",  # one object, one name: no leading zeros
        "part/0.m4s",
        "seg/0.0.m4s",
        "seg/-1.m4s",
        "../init.mp4",
        "seg/../init.mp4",
        "seg/0.m4s/",
        "seg/0.m4s\n",
        "part/٣.0.m4s",  # a non-ASCII digit
        "",
    ],
)
async def test_bad_names_are_not_found(origin: Origin, name: str) -> None:
    stream = await started(origin)
    await stream.segments(1)
    with pytest.raises(PnyxError) as err:
        await origin.media_object(SpaceId(SPACE), name)
    assert err.value.kind is ErrorKind.NOT_FOUND
    assert err.value.code == "no_such_object"


@pytest.mark.parametrize("space", ["../etc", "a/b", "", "x" * 65, "sp ace"])
async def test_bad_space_ids_are_not_found(origin: Origin, space: str) -> None:
    with pytest.raises(PnyxError) as err:
        await origin.media_object(SpaceId(space), "init.mp4")
    assert err.value.kind is ErrorKind.NOT_FOUND
    with pytest.raises(PnyxError):
        await origin.playlist(SpaceId(space), "ll", None, None)


async def test_the_hinted_part_is_held_until_it_exists(origin: Origin) -> None:
    stream = await started(origin)
    await stream.parts(6)  # segment 0 closed: the hint is part/1.0.m4s
    task = asyncio.create_task(origin.media_object(SpaceId(SPACE), "part/1.0.m4s"))
    assert await pending(task)
    await stream.parts(1)
    assert await asyncio.wait_for(task, 2) == stream.stored["part/1.0.m4s"]


async def test_parts_not_hinted_are_not_waited_for(origin: Origin) -> None:
    stream = await started(origin)
    await stream.parts(1)
    for name in ("part/0.2.m4s", "seg/0.m4s", "part/5.0.m4s"):
        with pytest.raises(PnyxError) as err:
            await asyncio.wait_for(origin.media_object(SpaceId(SPACE), name), 0.3)
        assert err.value.code == "not_available"


async def test_the_hinted_part_times_out(origin: Origin) -> None:
    stream = await started(origin)
    await stream.parts(1)
    with pytest.raises(PnyxError) as err:
        await asyncio.wait_for(origin.media_object(SpaceId(SPACE), "part/0.1.m4s"), BLOCK_S + 1)
    assert err.value.code == "not_available"


async def test_a_hint_that_will_never_exist_is_let_go_when_the_stream_ends(
    origin: Origin,
) -> None:
    stream = await started(origin)
    await stream.parts(6)
    task = asyncio.create_task(origin.media_object(SpaceId(SPACE), "part/1.0.m4s"))
    assert await pending(task)
    await stream.end(flush_encoder=False)  # nothing open: the stream ends with no part 1.0
    with pytest.raises(PnyxError):
        await asyncio.wait_for(task, 0.5)


async def test_an_ended_stream_lists_endlist_and_answers_every_reload(origin: Origin) -> None:
    stream = await started(origin)
    await stream.parts(8)
    await stream.end()
    text = await asyncio.wait_for(origin.playlist(SpaceId(SPACE), "ll", 2, 0), 0.5)
    assert text.rstrip().endswith("#EXT-X-ENDLIST")
    assert "PRELOAD-HINT" not in text


async def test_a_stale_state_never_replaces_a_newer_one(origin: Origin, live: LiveState) -> None:
    stream = await started(origin)
    await stream.parts(3)
    old = stream.state
    await stream.parts(3)
    newer = stream.state
    assert state_version(newer) > state_version(old)
    await origin.store(SpaceId(SPACE), [], old)  # a late writer (it lost the lease)
    snap = await live.get_snapshot(hls_key(SPACE))
    assert snap is not None
    assert snap.parts[PLAYLIST] == json.loads(newer.to_json())


async def test_ending_without_new_media_still_publishes(origin: Origin) -> None:
    stream = await started(origin)
    await stream.segments(1)
    await stream.end(flush_encoder=False)  # nothing open: no new media, only the end
    assert "#EXT-X-ENDLIST" in await origin.playlist(SpaceId(SPACE), "plain", None, None)


async def test_any_node_serves_any_space(
    origin: Origin, live: LiveState, backend: str | None, tmp_path: Path
) -> None:
    """A second origin (another API node) on the same live state serves what the first
    stored; with Redis it is a separate connection, as on another machine."""
    stream = await started(origin)
    await stream.parts(2)
    # One process is its own only node; Redis nodes each have their own connection.
    second = live if backend is None else RedisLiveState(backend)
    other = Origin(make_settings(tmp_path), second)
    try:
        part = await other.media_object(SpaceId(SPACE), "part/0.1.m4s")
        assert part == stream.stored["part/0.1.m4s"]
        task = asyncio.create_task(other.playlist(SpaceId(SPACE), "ll", 0, 2))
        assert await pending(task)
        await stream.parts(1)
        assert 'URI="part/0.2.m4s"' in await asyncio.wait_for(task, 2)
    finally:
        if second is not live:
            await second.close()
