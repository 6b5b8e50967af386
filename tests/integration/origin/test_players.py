"""What real players do, against a real HTTP server: FFmpeg's HLS demuxer on the live and
replay playlists, and the single-file download (decoded by FFmpeg, found to hold the tone).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import numpy.typing as npt
from fastapi import FastAPI

from pnyx.domain import commands as cmd
from pnyx.domain.types import Handle, SpaceId
from pnyx.services.spaces import NewSpace
from tests.support.procs import require_binary

from .conftest import AppFactory, node_of, serving
from .stream import RATE, Stream, assert_tone

# A replay's objects: a year for browsers, replay_edge_ttl_s (600) for edges (a host may
# delete the recording).
REPLAY = "public, max-age=31536000, s-maxage=600, immutable"


async def ffmpeg_decode(source: str, *args: str) -> npt.NDArray[np.float32]:
    """Run ``ffmpeg -v error -i source`` to raw float samples; it must exit 0 and say
    nothing on stderr. (Async: the server under test runs on this same event loop.)"""
    ffmpeg = require_binary("ffmpeg")
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-nostdin", "-v", "error", *args, "-i", source,
        "-f", "f32le", "-ac", "1", "-ar", str(RATE), "-",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")
    assert err == b"", err.decode(errors="replace")
    return np.frombuffer(out, dtype=np.float32)


async def ffmpeg_null(source: str) -> None:
    """``ffmpeg -v error -i source -f null -``: exit 0, nothing on stderr."""
    proc = await asyncio.create_subprocess_exec(
        require_binary("ffmpeg"), "-nostdin", "-v", "error", "-i", source, "-f", "null", "-",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode(errors="replace")
    assert err == b"", err.decode(errors="replace")


async def ended_space(app: FastAPI, *, segments: int, record: bool = True) -> Stream:
    """A space that had ``segments`` segments and a bit of audio, recorded, then ended."""
    node = node_of(app)
    host = Handle(f"host{segments}")
    await node.accounts.register(host, "correct horse battery staple", None, client="127.0.0.1")
    rec = await node.spaces.create(host, NewSpace(title="Replay", record=record))
    recordings = node.recorder if record else None
    stream = Stream(node.origin, rec.id, recordings=recordings)
    await stream.start()
    await stream.segments(segments)
    await stream.parts(2)
    await stream.end()
    await node.spaces.execute(SpaceId(rec.id), cmd.EndSpace(host))
    return stream


async def test_ffmpeg_plays_an_ended_live_stream(app_client: AppFactory) -> None:
    async with app_client() as (app, _), serving(app) as url:
        stream = Stream(node_of(app).origin, "sp_ffmpeg-1")
        await stream.start()
        await stream.segments(3)
        await stream.parts(3)
        await stream.end()
        for kind in ("live", "plain"):
            playlist = f"{url}/media/sp_ffmpeg-1/{kind}.m3u8"
            await ffmpeg_null(playlist)
            assert_tone(await ffmpeg_decode(playlist), 6.5)


async def test_ffmpeg_plays_a_live_stream_while_it_grows(app_client: AppFactory) -> None:
    async with app_client() as (app, _), serving(app) as url:
        stream = Stream(node_of(app).origin, "sp_ffmpeg-2")
        await stream.start()
        await stream.segments(4)

        async def produce() -> None:  # one part every 50 ms: faster than real time
            while True:
                await stream.parts(1)
                await asyncio.sleep(0.05)

        producer = asyncio.create_task(produce())
        try:
            # Live: FFmpeg starts three segments from the end and keeps reloading.
            samples = await ffmpeg_decode(f"{url}/media/sp_ffmpeg-2/live.m3u8", "-t", "8")
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        assert_tone(samples, 7.5)
        assert stream.segments_made[-1].ref.msn >= 5  # it had to wait for new segments


async def test_replay_and_download_after_the_space_ended(
    app_client: AppFactory, tmp_path: Path
) -> None:
    async with app_client() as (app, c), serving(app) as url:
        stream = await ended_space(app, segments=4)
        space = stream.space
        recorded = 4 * 1.92 + 2 * 0.32 + 0.02  # the flushed encoder adds a little

        r = await c.get(f"/media/{space}/replay.m3u8")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/vnd.apple.mpegurl"
        assert r.headers["access-control-allow-origin"] == "*"
        lines = r.text.splitlines()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in lines
        assert '#EXT-X-MAP:URI="rec/init.mp4"' in lines
        assert [x for x in lines if not x.startswith("#")] == [f"rec/{m}.m4s" for m in range(5)]
        assert lines[-1] == "#EXT-X-ENDLIST"
        r = await c.get(f"/media/{space}/rec/1.m4s")
        assert r.status_code == 200
        assert r.content == stream.stored["seg/1.m4s"]
        assert r.headers["cache-control"] == REPLAY
        assert r.headers["content-type"] == "audio/mp4"

        replay = f"{url}/media/{space}/replay.m3u8"
        await ffmpeg_null(replay)
        assert_tone(await ffmpeg_decode(replay), recorded - 0.1)

        r = await c.get(f"/v1/spaces/{space}/recording.m4a")
        assert r.status_code == 200
        assert r.headers["content-type"] == "audio/mp4"
        assert r.headers["content-disposition"] == f'attachment; filename="pnyx-{space}.m4a"'
        assert r.headers["cache-control"] == REPLAY
        assert int(r.headers["content-length"]) == len(r.content)
        segments = [stream.stored[f"seg/{m}.m4s"] for m in range(5)]
        assert r.content == stream.stored["init.mp4"] + b"".join(segments)
        download = tmp_path / "recording.m4a"
        download.write_bytes(r.content)
        await ffmpeg_null(str(download))
        await ffmpeg_null(f"{url}/v1/spaces/{space}/recording.m4a")
        assert_tone(await ffmpeg_decode(str(download)), recorded - 0.1)


async def test_no_replay_before_the_end_or_without_a_recording(app_client: AppFactory) -> None:
    async with app_client() as (app, c):
        node = node_of(app)
        await node.accounts.register(
            "livehost", "correct horse battery staple", None, client="127.0.0.1"
        )
        rec = await node.spaces.create(Handle("livehost"), NewSpace(title="On air", record=True))
        stream = Stream(node.origin, rec.id, recordings=node.recorder)
        await stream.start()
        await stream.segments(1)
        for path in (f"/media/{rec.id}/replay.m3u8", f"/v1/spaces/{rec.id}/recording.m4a"):
            r = await c.get(path)
            assert r.status_code == 409, r.text
            assert r.json()["error"]["code"] == "still_live"
            assert "once it has ended" in r.json()["error"]["message"]
            assert r.headers["cache-control"] == "no-store"

        unrecorded = await ended_space(app, segments=1, record=False)
        for space in (unrecorded.space, "nosuchspace"):
            for path in (f"/media/{space}/replay.m3u8", f"/v1/spaces/{space}/recording.m4a"):
                r = await c.get(path)
                assert r.status_code == 404, r.text
        for name in ("init.mp4", "0.m4s"):
            assert (await c.get(f"/media/{unrecorded.space}/rec/{name}")).status_code == 404
        for name in ("x.m4s", "00.m4s", "index.jsonl", "finished", "..%2Findex.jsonl"):
            assert (await c.get(f"/media/{rec.id}/rec/{name}")).status_code == 404, name


async def test_a_recording_survives_the_node(app_client: AppFactory) -> None:
    """The node restarts (a new process on the same data dir): the replay is all there."""
    async with app_client() as (app, _):
        stream = await ended_space(app, segments=2)
    async with app_client() as (app, c):
        r = await c.get(f"/media/{stream.space}/replay.m3u8")
        assert r.status_code == 200, r.text
        assert r.text.count("#EXTINF:") == 3
        r = await c.get(f"/v1/spaces/{stream.space}/recording.m4a")
        assert r.content.startswith(stream.stored["init.mp4"])


async def test_the_replay_is_served_only_once_final(app_client: AppFactory) -> None:
    """The space has ended in the store, but its stage node is still finishing the
    recording: the replay and the download must not be served (and cached for a day or
    a year) truncated. Until the recording is marked finished: a short-lived 503."""
    async with app_client() as (app, c):
        node = node_of(app)
        await node.accounts.register(
            "finhost", "correct horse battery staple", None, client="127.0.0.1"
        )
        rec = await node.spaces.create(Handle("finhost"), NewSpace(title="Fin", record=True))
        stream = Stream(node.origin, rec.id, recordings=node.recorder)
        await stream.start()
        await stream.segments(2)
        await stream.flushed()  # every segment is stored; the recording is not finished
        await node.spaces.execute(SpaceId(rec.id), cmd.EndSpace(Handle("finhost")))
        paths = (f"/media/{rec.id}/replay.m3u8", f"/v1/spaces/{rec.id}/recording.m4a")
        for path in paths:
            r = await c.get(path)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "not_ready"
            assert r.headers["cache-control"] == "public, max-age=1"
            assert r.headers["retry-after"] == "1"
        await stream.end()  # the stage node flushes and finishes the recording
        replay = await c.get(paths[0])
        assert replay.status_code == 200, replay.text
        assert replay.text.count("#EXTINF:") == 3
        assert (await c.get(paths[1])).status_code == 200
