"""The listener's media routes through the real app: statuses, bytes and headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.support.hls import parse_playlist

from .conftest import BLOCK_S, AppFactory, node_of
from .stream import Stream, assert_tone, decode

SPACE = "sp_http-1"
IMMUTABLE = "public, max-age=31536000, immutable"
LIVE = "public, max-age=1, stale-while-revalidate=1"  # an edge: a second stale at most
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"


async def feed(app: FastAPI, space: str = SPACE) -> Stream:
    stream = Stream(node_of(app).origin, space)
    await stream.start()
    return stream


def assert_error(r: httpx.Response, status: int, code: str, cache: str = "no-store") -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.json()["error"]["code"] == code
    assert r.headers["cache-control"] == cache
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.fixture(params=["memory", "redis"])
async def served(
    request: pytest.FixtureRequest, app_client: AppFactory
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    redis = None if request.param == "memory" else request.getfixturevalue("redis_clean_url")
    async with app_client(redis=redis) as pair:
        yield pair


async def test_playlists_and_objects_with_their_headers(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, c = served
    stream = await feed(app)
    await stream.segments(2)
    await stream.parts(2)

    r = await c.get(f"/media/{SPACE}/live.m3u8")
    assert r.status_code == 200
    assert r.headers["content-type"] == PLAYLIST_TYPE
    assert r.headers["cache-control"] == LIVE
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.text.startswith("#EXTM3U\n")
    assert 'PRELOAD-HINT:TYPE=PART,URI="part/2.2.m4s"' in r.text

    r = await c.get(f"/media/{SPACE}/plain.m3u8")
    assert r.status_code == 200
    assert r.headers["content-type"] == PLAYLIST_TYPE
    assert "EXT-X-PART" not in r.text

    for name, data in stream.stored.items():
        r = await c.get(f"/media/{SPACE}/{name}")
        assert r.status_code == 200, name
        assert r.content == data, name
        assert r.headers["content-type"] == "audio/mp4"
        assert r.headers["cache-control"] == IMMUTABLE
        assert r.headers["access-control-allow-origin"] == "*"


async def test_a_listener_hears_the_tone(served: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, c = served
    stream = await feed(app)
    await stream.segments(2)
    await stream.parts(4)
    playlist = (await c.get(f"/media/{SPACE}/live.m3u8")).text
    uris = [line for line in playlist.splitlines() if line.startswith("seg/")]
    uris += [line.split('URI="')[1].split('"')[0] for line in playlist.splitlines()
             if line.startswith("#EXT-X-PART:") and "part/2." in line]  # fmt: skip
    assert uris == ["seg/0.m4s", "seg/1.m4s"] + [f"part/2.{i}.m4s" for i in range(4)]
    init = (await c.get(f"/media/{SPACE}/init.mp4")).content
    body = b"".join([(await c.get(f"/media/{SPACE}/{u}")).content for u in uris])
    assert_tone(decode(init + body), 5.0)


async def test_blocking_reload_over_http(served: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, c = served
    stream = await feed(app)
    await stream.parts(3)
    loop = asyncio.get_running_loop()
    url = f"/media/{SPACE}/live.m3u8?_HLS_msn=0&_HLS_part=3"
    task = asyncio.create_task(c.get(url))
    done, _ = await asyncio.wait({task}, timeout=0.3)
    assert not done, "a reload for a part not yet made must be held"
    stored_at = loop.time()
    await stream.parts(1)
    r = await asyncio.wait_for(task, 2)
    assert loop.time() - stored_at < 0.5
    assert r.status_code == 200
    assert r.headers["cache-control"] == LIVE  # one URL for every listener
    assert 'URI="part/0.3.m4s"' in r.text

    began = loop.time()
    r = await c.get(f"/media/{SPACE}/live.m3u8?_HLS_msn=0&_HLS_part=5")
    assert BLOCK_S - 0.05 <= loop.time() - began < BLOCK_S + 1
    assert_error(r, 503, "not_ready", cache="public, max-age=1")
    assert r.headers["retry-after"] == "1"

    r = await c.get(f"/media/{SPACE}/live.m3u8?_HLS_msn=9")
    assert_error(r, 400, "too_far_ahead")
    r = await c.get(f"/media/{SPACE}/live.m3u8?_HLS_part=1")
    assert_error(r, 400, "bad_directive")


async def test_a_delta_update_over_http(served: tuple[FastAPI, httpx.AsyncClient]) -> None:
    """``_HLS_skip=YES`` (and v2) on live.m3u8: the same playlist with the segments that
    ended 12 s or more before the edge as one EXT-X-SKIP; with blocking reload too."""
    app, c = served
    stream = await feed(app)
    await stream.segments(10)  # 19.2 s: window of 10 segments, 0.32 s parts
    await stream.parts(2)
    full_r = await c.get(f"/media/{SPACE}/live.m3u8")
    full = parse_playlist(full_r.text)
    assert full.can_skip_until == 12.0 and full.skipped_segments == 0
    for value in ("YES", "v2"):
        r = await c.get(f"/media/{SPACE}/live.m3u8?_HLS_skip={value}")
        assert r.status_code == 200
        assert r.headers["cache-control"] == LIVE
        assert r.headers["content-type"] == PLAYLIST_TYPE
        delta = parse_playlist(r.text)
        # segments 0-3 ended 12.16 s or more before the last part (at 19.84 s): skipped
        assert delta.skipped_segments == 4
        assert delta.media_sequence == full.media_sequence == 0
        assert delta.next_msn == full.next_msn == 10
        assert delta.segments == full.segments[4:]
        assert delta.open_parts == full.open_parts
        assert delta.preload_hint == full.preload_hint == "part/10.2.m4s"
        assert len(r.content) < len(full_r.content)

    # Combined with blocking reload: held until the part exists, then the delta.
    url = f"/media/{SPACE}/live.m3u8?_HLS_msn=10&_HLS_part=2&_HLS_skip=YES"
    task = asyncio.create_task(c.get(url))
    done, _ = await asyncio.wait({task}, timeout=0.3)
    assert not done, "a delta reload for a part not yet made must be held"
    await stream.parts(1)
    r = await asyncio.wait_for(task, 2)
    assert r.status_code == 200
    delta = parse_playlist(r.text)
    assert delta.skipped_segments == 4 and delta.open_parts[-1].uri == "part/10.2.m4s"
    assert delta.preload_hint == "part/10.3.m4s"
    r = await c.get(f"/media/{SPACE}/live.m3u8?_HLS_msn=90&_HLS_skip=YES")
    assert_error(r, 400, "too_far_ahead")


async def test_bad_delta_directives_are_400s(served: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, c = served
    stream = await feed(app)
    await stream.segments(1)
    for value in ("yes", "NO", "", "v3", "YES,YES", "%00", "YES%20"):
        r = await c.get(f"/media/{SPACE}/live.m3u8?_HLS_skip={value}")
        assert_error(r, 400, "bad_directive")
        assert "_HLS_skip must be YES or v2" in r.json()["error"]["message"], value
    r = await c.get(f"/media/{SPACE}/live.m3u8?_HLS_skip={'x' * 5000}")
    assert_error(r, 400, "bad_directive")
    assert len(r.json()["error"]["message"]) < 200  # the value is not echoed whole
    for kind in ("plain", "captions"):
        r = await c.get(f"/media/{SPACE}/{kind}.m3u8?_HLS_skip=YES")
        assert r.status_code == 400, (kind, r.text)
        assert r.json()["error"]["code"] == "bad_directive"
    r = await c.get(f"/media/{SPACE}/plain.m3u8?_HLS_skip=YES")
    assert "only live.m3u8 makes delta updates" in r.json()["error"]["message"]


async def test_the_hinted_part_is_held_over_http(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, c = served
    stream = await feed(app)
    await stream.parts(2)
    task = asyncio.create_task(c.get(f"/media/{SPACE}/part/0.2.m4s"))
    done, _ = await asyncio.wait({task}, timeout=0.3)
    assert not done
    await stream.parts(1)
    r = await asyncio.wait_for(task, 2)
    assert r.status_code == 200
    assert r.content == stream.stored["part/0.2.m4s"]
    assert r.headers["cache-control"] == IMMUTABLE


async def test_not_yet_and_not_found(served: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, c = served
    for kind in ("live", "plain"):
        r = await c.get(f"/media/{SPACE}/{kind}.m3u8")
        assert_error(r, 404, "no_audio", cache="public, max-age=1")
    stream = await feed(app)
    await stream.parts(1)
    r = await c.get(f"/media/{SPACE}/seg/7.m4s")  # not produced (yet): short-lived
    assert_error(r, 404, "not_available", cache="public, max-age=1")
    for path in ("part/00.0.m4s", "part/0.x.m4s", "seg/x.m4s", "part/1.2.3.m4s"):
        r = await c.get(f"/media/{SPACE}/{path}")
        assert_error(r, 404, "no_such_object")
    for path in ("init.mp3", "part/0.0.m4s/x", "%2e%2e/init.mp4", "seg/%2e%2e%2finit.mp4"):
        r = await c.get(f"/media/{SPACE}/{path}")
        assert r.status_code == 404, path
    r = await c.get("/media/not%2Fa-space/init.mp4")
    assert r.status_code == 404


async def test_media_needs_no_token_and_ignores_one(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, c = served
    stream = await feed(app)
    await stream.parts(1)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        r = await c.get(f"/media/{SPACE}/live.m3u8", headers=headers)
        assert r.status_code == 200
        r = await c.get(f"/media/{SPACE}/part/0.0.m4s", headers=headers)
        assert r.status_code == 200


async def test_the_routes_are_in_the_openapi_contract(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, c = served
    paths = (await c.get("/openapi.json")).json()["paths"]
    for path in (
        "/media/{space_id}/live.m3u8",
        "/media/{space_id}/plain.m3u8",
        "/media/{space_id}/init.mp4",
        "/media/{space_id}/part/{msn}.{part}.m4s",
        "/media/{space_id}/seg/{msn}.m4s",
        "/media/{space_id}/replay.m3u8",
        "/media/{space_id}/rec/{name}",
        "/v1/spaces/{space_id}/recording.m4a",
    ):
        assert path in paths, path
    params = {p["name"] for p in paths["/media/{space_id}/live.m3u8"]["get"]["parameters"]}
    assert {"_HLS_msn", "_HLS_part", "_HLS_skip"} <= params
    live = paths["/media/{space_id}/live.m3u8"]["get"]
    assert "_HLS_skip" in live["responses"]["400"]["description"]
    for kind in ("plain", "captions"):
        get = paths[f"/media/{{space_id}}/{kind}.m3u8"]["get"]
        assert "_HLS_skip" in {p["name"] for p in get["parameters"]}, kind


async def test_plain_playlist_waits_for_a_whole_segment(app_client: AppFactory) -> None:
    """Old players need a whole segment to start: until there is one, the plain
    playlist says "no audio yet" (the LL-HLS one already lists parts)."""
    async with app_client() as (app, c):
        stream = Stream(node_of(app).origin, "sp_plain-1")
        await stream.start()
        await stream.parts(2)
        assert (await c.get("/media/sp_plain-1/live.m3u8")).status_code == 200
        assert_error(
            await c.get("/media/sp_plain-1/plain.m3u8"), 404, "no_audio", cache="public, max-age=1"
        )
        await stream.segments(1)
        r = await c.get("/media/sp_plain-1/plain.m3u8")
        assert r.status_code == 200
        assert "seg/0.m4s" in r.text
