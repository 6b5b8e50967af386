"""The listener's media routes through the real app: statuses, bytes and headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from .conftest import BLOCK_S, AppFactory, node_of
from .stream import Stream, assert_tone, decode

SPACE = "sp_http-1"
IMMUTABLE = "public, max-age=31536000, immutable"
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
    assert r.headers["cache-control"] == "public, max-age=1"
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
    assert r.headers["cache-control"] == "public, max-age=1"  # one URL for every listener
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
    assert {"_HLS_msn", "_HLS_part"} <= params


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
