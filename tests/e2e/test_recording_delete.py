"""Deleting a recording end to end: a real node records an aiortc speaker's tone; once
the space has ended its host deletes the recording. The replay routes answer 410 with a
body saying the host deleted it, the space stops offering a replay, a clip made before
stays playable, and a ``recording.deleted`` webhook is queued. Through a real nginx edge
(``pnyx edge-config``, with its Varnish), replay objects cached before the deletion are
served at most ``replay_edge_ttl_s`` (shortened here) more; then the edge answers 410.
Refusals: while live (409), by anyone but the host (403), an unrecorded space (404).
On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_clips import clip_when_ready, decoded, heard
from tests.e2e.test_profiles import meta
from tests.support.api import create_space, error_of, ok
from tests.support.api import new_user as user
from tests.support.nginx import nginx_edge
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import Seen, eventually
from tests.support.postgres_server import PostgresServer
from tests.support.procs import free_port
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

TONE_HZ = 523.0
EDGE_TTL_S = 4  # replay_edge_ttl_s, shortened from 10 minutes


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PnyxProcess]:
    """A node on SQLite (its data folder's) or on a fresh PostgreSQL database."""
    settings = {"replay_edge_ttl_s": str(EDGE_TTL_S), "webhook_allow_private": "true"}
    database = None
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"test_{secrets.token_hex(6)}"
        server.psql(f"CREATE DATABASE {name}")
        database = server.url(name)
    try:
        folder = Path(tmp_path_factory.mktemp("recdel"))
        with pnyx_serve(folder, database=database, settings=settings) as n:
            yield n
    finally:
        if database is not None:
            server.psql(f"DROP DATABASE {name} WITH (FORCE)")


async def get(c: httpx.Client, url: str, **kw: Any) -> httpx.Response:
    return await asyncio.to_thread(c.get, url, **kw)


async def post(c: httpx.Client, url: str, **kw: Any) -> httpx.Response:
    return await asyncio.to_thread(c.post, url, **kw)


async def delete(c: httpx.Client, url: str, **kw: Any) -> httpx.Response:
    return await asyncio.to_thread(c.delete, url, **kw)


def gone(r: httpx.Response) -> None:
    body = error_of(r, 410)
    assert body["code"] == "recording_deleted", body
    assert "host deleted" in body["message"], body
    assert r.headers["cache-control"] == "no-store"


async def test_the_host_deletes_a_recording_and_the_edge_forgets_it(
    node: PnyxProcess, c: httpx.Client, tmp_path: Path
) -> None:
    host, fan = user(c, "rechost"), user(c, "recfan")
    hook = ok(
        await post(
            c,
            "/v1/webhooks",
            json={"url": f"http://127.0.0.1:{free_port()}/hook"},  # nobody answers: queued
            headers=host.auth,
        ),
        201,
    )
    space = create_space(c, host, title="To be forgotten", record=True)
    url = f"/v1/spaces/{space}/recording"
    me = await publish(node.url, space, host.token, ToneTrack(TONE_HZ))
    try:
        await me.connected()

        async def segments() -> bool:
            r = await get(c, f"/media/{space}/live.m3u8")
            return r.status_code == 200 and r.text.count("#EXTINF") >= 3

        await eventually(segments, 30, "three finished segments")
        live = error_of(await delete(c, url, headers=host.auth), 409)
        assert live["code"] == "still_live", live
    finally:
        await me.close()
    ok(await post(c, f"/v1/spaces/{space}/end", headers=host.auth))
    clip = await clip_when_ready(c, space, fan, seconds=2, at=0)  # before the deletion

    async def replay_ready() -> httpx.Response | None:
        r = await get(c, f"/media/{space}/replay.m3u8")
        return r if r.status_code == 200 else None

    playlist = await eventually(replay_ready, 30, "the replay")
    first = re.search(r"^rec/(\d+)\.m4s$", playlist.text, re.M)
    assert first is not None, playlist.text
    objects = [
        f"/media/{space}/replay.m3u8",
        f"/media/{space}/rec/init.mp4",
        f"/media/{space}/rec/{first[1]}.m4s",
        f"/v1/spaces/{space}/recording.m4a",
    ]
    assert ok(await get(c, f"/v1/spaces/{space}"))["recording_deleted"] is False
    assert space in [s["id"] for s in ok(await get(c, "/v1/replays"))["spaces"]]

    with nginx_edge([node.url.removeprefix("http://")]) as edge:
        async with httpx.AsyncClient(base_url=edge.url, timeout=30) as via:
            cached_at = time.monotonic()
            for path in objects:
                a, b = await via.get(path), await via.get(path)
                assert (a.status_code, b.status_code) == (200, 200), (path, a.text)
                assert [a.headers["x-cache-status"], b.headers["x-cache-status"]] == [
                    "MISS",
                    "HIT",
                ], path
                # Browsers keep it a year; edges only replay_edge_ttl_s.
                cache = b.headers["cache-control"]
                assert "max-age=31536000" in cache and f"s-maxage={EDGE_TTL_S}" in cache, cache
                # The origin answers a conditional read of the same bytes with 304.
                same = await get(c, path, headers={"If-None-Match": b.headers["etag"]})
                assert same.status_code == 304 and not same.content, (path, same.text)
                assert same.headers["etag"] == b.headers["etag"]
                assert f"s-maxage={EDGE_TTL_S}" in same.headers["cache-control"]

            # Past the TTL the edge asks again, conditionally: 304, no bytes (REVALIDATED).
            seen: set[str] = set()

            async def revalidated() -> Seen:
                for path in objects:
                    if path not in seen:
                        r = await via.get(path)
                        assert r.status_code == 200, (path, r.text)
                        if r.headers["x-cache-status"] == "REVALIDATED":
                            seen.add(path)
                return Seen(seen == set(objects), f"revalidated so far: {sorted(seen)}")

            await eventually(revalidated, EDGE_TTL_S + 10, "revalidated copies", interval=0.5)
            cached_at = time.monotonic()  # valid for another TTL from here

            refused = error_of(await delete(c, url, headers=fan.auth), 403)
            assert refused["code"] == "host_only", refused
            assert error_of(await delete(c, url), 401)
            assert error_of(await delete(c, "/v1/spaces/nope/recording", headers=host.auth), 404)
            deleted = await delete(c, url, headers=host.auth)
            assert deleted.status_code == 204, deleted.text
            deleted_at = time.monotonic()

            # The origin: 410 at once, for every replay route.
            for path in objects:
                gone(await get(c, path))
            # An edge may serve its copy until its TTL runs out, never longer.
            if deleted_at - cached_at < EDGE_TTL_S - 1:
                still = await via.get(objects[0])
                assert still.status_code == 200 and still.headers["x-cache-status"] == "HIT"

            async def edge_says_gone() -> bool:
                answers = [await via.get(path) for path in objects]
                return all(r.status_code == 410 for r in answers)

            await eventually(edge_says_gone, EDGE_TTL_S + 15, "the edge answers 410", interval=0.5)
            assert time.monotonic() - cached_at >= EDGE_TTL_S - 0.5  # not before the TTL
            for path in objects:  # and the 410 itself is never kept
                r = await via.get(path)
                gone(r)
                assert r.headers["x-cache-status"] in ("MISS", "EXPIRED"), r.headers

    # Deleting again changes nothing.
    assert (await delete(c, url, headers=host.auth)).status_code == 204
    # The space no longer offers a replay anywhere.
    doc = ok(await get(c, f"/v1/spaces/{space}"))
    assert doc["recording_deleted"] is True and doc["record"] is True
    assert space not in [s["id"] for s in ok(await get(c, "/v1/replays"))["spaces"]]
    hosted = ok(await get(c, f"/v1/accounts/{host.handle}/spaces?state=ended"))["spaces"]
    assert [s["recording_deleted"] for s in hosted if s["id"] == space] == [True]
    tags = meta((await get(c, f"/s/{space}")).text)
    assert "replay" not in tags["og:description"], tags
    # Nobody clips what is gone; the clip made before stays, and plays.
    again = error_of(
        await post(c, f"/v1/spaces/{space}/clips", json={"at": 0}, headers=fan.auth), 410
    )
    assert again["code"] == "recording_deleted"
    media = await get(c, clip["links"]["media"])
    assert media.status_code == 200, media.text
    assert heard(await decoded(media.content, tmp_path))[TONE_HZ]
    # The host's endpoint is told, once.
    out = ok(await get(c, f"/v1/webhooks/{hook['id']}/deliveries", headers=host.auth))
    events = [d["event"] for d in out["deliveries"]]
    assert events.count("recording.deleted") == 1, events


def test_deleting_needs_a_recorded_space_that_is_over(node: PnyxProcess, c: httpx.Client) -> None:
    host = user(c, "rechost")
    plain = create_space(c, host, title="Not recorded")  # live at once
    ok(c.post(f"/v1/spaces/{plain}/end", headers=host.auth))
    body = error_of(c.delete(f"/v1/spaces/{plain}/recording", headers=host.auth), 404)
    assert body["code"] == "no_recording"
    soon = create_space(c, host, title="Later", record=True, scheduled_start="2099-01-01T00:00:00Z")
    body = error_of(c.delete(f"/v1/spaces/{soon}/recording", headers=host.auth), 409)
    assert body["code"] == "still_live"
