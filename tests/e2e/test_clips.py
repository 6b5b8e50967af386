"""Clips end to end on one ``pnyx serve``: an aiortc speaker publishes a tone, a listener
clips the last seconds of the live space, and ffmpeg decodes the clip: it holds the tone
that was live in those seconds (and not the one before). Then clips of the recording
(``at``), the clip's page with its OpenGraph tags, privacy, bad input and the rate limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.e2e.test_audio import run
from tests.e2e.test_profiles import meta
from tests.support import tones
from tests.support.api import create_space, error_of, ok
from tests.support.api import new_user as user
from tests.support.hls import HlsListener
from tests.support.nginx import nginx_edge
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.procs import require_binary
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

RATE = 48_000
FIRST_HZ, SECOND_HZ = 523.0, 1229.0
SEGMENT_S = 1.92
SITE = "https://pnyx.example"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    # share_base_url: the site's public address, for absolute preview URLs (og:audio)
    settings = {"clip_burst": "3", "clips_per_hour": "1", "share_base_url": SITE}
    with pnyx_serve(Path(tmp_path_factory.mktemp("clips")), settings=settings) as n:
        yield n


async def post(c: httpx.Client, url: str, **kw: Any) -> httpx.Response:
    return await asyncio.to_thread(c.post, url, **kw)


async def get(c: httpx.Client, url: str, **kw: Any) -> httpx.Response:
    return await asyncio.to_thread(c.get, url, **kw)


async def clip_when_ready(c: httpx.Client, space: str, user: Any, **body: Any) -> Any:
    """POST a clip, again while there is nothing to clip yet (409) or its recording is
    being finished (503)."""
    deadline = time.monotonic() + 20
    while True:
        r = await post(c, f"/v1/spaces/{space}/clips", json=body, headers=user.auth)
        if r.status_code not in (409, 503):
            return ok(r, 201)
        assert time.monotonic() < deadline, r.text
        await asyncio.sleep(0.3)


async def decoded(data: bytes, folder: Path) -> np.ndarray:
    """The clip as ffmpeg decodes it: mono float samples at 48 kHz."""
    ffmpeg = require_binary("ffmpeg")
    path = folder / f"clip-{time.monotonic_ns()}.m4a"
    path.write_bytes(data)
    raw = folder / f"{path.stem}.f32"
    code, _, err = await run(
        ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1",
        "-ar", str(RATE), "-y", str(raw),
    )  # fmt: skip
    assert (code, err) == (0, ""), f"ffmpeg could not decode the clip: exit {code}\n{err}"
    return np.frombuffer(raw.read_bytes(), dtype=np.float32)


def heard(samples: np.ndarray) -> dict[float, bool]:
    body = samples[4096:]  # past the decoder's start
    levels = tones.tone_levels(body, (FIRST_HZ, SECOND_HZ))
    return {f: level.present() for f, level in levels.items()}


async def audio_for(listener: HlsListener, seconds: float) -> None:
    """Step the listener until the live stream has advanced ``seconds`` more."""
    await listener.step()
    start = listener.parts[-1].decode_time
    deadline = time.monotonic() + seconds + 15
    while listener.parts[-1].decode_time - start < seconds * RATE:
        assert time.monotonic() < deadline, "the stream does not advance"
        await listener.step()


async def test_a_live_clip_holds_the_tone_of_its_seconds(
    node: PnyxProcess, c: httpx.Client, tmp_path: Path
) -> None:
    host, fan = user(c, "cliphost"), user(c, "clipfan")
    space = create_space(c, host, title="Clipped live", record=True)
    track = ToneTrack(FIRST_HZ)
    me = await publish(node.url, space, host.token, track)
    try:
        await me.connected()
        async with HlsListener(node.url, space) as listener:
            await listener.start()
            await audio_for(listener, 8)
            track.freq_hz = SECOND_HZ  # from now on the other tone
            await audio_for(listener, 9)
            r = await post(c, f"/v1/spaces/{space}/clips", json={"seconds": 5}, headers=fan.auth)
            clip = ok(r, 201)
            assert r.headers["location"] == f"/v1/clips/{clip['id']}"
            assert clip["space"] == space and clip["creator"] == fan.handle
            assert clip["title"] == "Clipped live" and clip["visibility"] == "public"
            assert 5 <= clip["duration"] < 5 + SEGMENT_S + 0.01, clip
            assert clip["start_s"] > 8, clip  # after the first tone's stretch
            # The last 5 s were all the second tone.
            media = await get(c, clip["links"]["media"])
            assert media.status_code == 200, media.text
            assert media.headers["content-type"] == "audio/mp4"
            assert "immutable" in media.headers["cache-control"]
            samples = await decoded(media.content, tmp_path)
            assert abs(len(samples) / RATE - clip["duration"]) < 0.1, len(samples) / RATE
            assert heard(samples) == {FIRST_HZ: False, SECOND_HZ: True}, tones.describe(
                samples[4096:], (FIRST_HZ, SECOND_HZ)
            )
            # A longer one reaches back into the first tone: both are in it.
            longer = ok(
                await post(c, f"/v1/spaces/{space}/clips", json={"seconds": 14}, headers=host.auth),
                201,
            )
            both = await decoded((await get(c, longer["links"]["media"])).content, tmp_path)
            assert heard(both) == {FIRST_HZ: True, SECOND_HZ: True}
            # Its page previews it (escaped OpenGraph tags, api/pages.py).
            tags = meta((await get(c, longer["links"]["page"])).text)
            assert tags["og:type"] == "music.song" and "(clip)" in tags["og:title"], tags
            assert tags["og:title"].startswith(longer["title"]), tags
            # The default, 30 s, reaches past the live playlist's window (19.2 s) into
            # the older segments the live state still keeps.
            await audio_for(listener, 15)
            default = ok(
                await post(c, f"/v1/spaces/{space}/clips", json={}, headers=host.auth), 201
            )
            assert 30 <= default["duration"] < 30 + SEGMENT_S, default
            whole = await decoded((await get(c, default["links"]["media"])).content, tmp_path)
            assert abs(len(whole) / RATE - default["duration"]) < 0.1, len(whole) / RATE
            assert heard(whole) == {FIRST_HZ: True, SECOND_HZ: True}
            # Not while live: `at` is for recordings.
            body = error_of(
                await post(c, f"/v1/spaces/{space}/clips", json={"at": 1}, headers=fan.auth),
                422,
            )
            assert body["code"] == "at_needs_replay"
    finally:
        await me.close()
    ok(await post(c, f"/v1/spaces/{space}/end", headers=host.auth))

    # The clip reads the same afterwards; its page previews it.
    got = ok(await get(c, f"/v1/clips/{clip['id']}"))
    assert got == clip
    page = await get(c, f"/c/{clip['id']}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert meta(page.text)["og:title"] == "Clipped live (clip) · Pnyx"
    assert f'content="@{host.handle}' not in page.text  # the description names the host…
    assert f"@{host.handle}&#x27;s space" in page.text  # …escaped
    assert meta(page.text)["og:audio"] == f"{SITE}/v1/clips/{clip['id']}/clip.m4a"

    # The recording, once finished: a clip from `at`, the first tone only.
    deadline = time.monotonic() + 20
    while True:
        r = await post(
            c, f"/v1/spaces/{space}/clips", json={"seconds": 4, "at": 1}, headers=fan.auth
        )
        if r.status_code != 503:
            break
        assert time.monotonic() < deadline, r.text
        await asyncio.sleep(0.2)
    replayed = ok(r, 201)
    # A finished public recording: among the recent replays.
    replays = ok(await get(c, "/v1/replays"))["spaces"]
    assert space in [s["id"] for s in replays]
    assert 1 - SEGMENT_S <= replayed["start_s"] <= 1, replayed
    samples = await decoded((await get(c, replayed["links"]["media"])).content, tmp_path)
    assert heard(samples) == {FIRST_HZ: True, SECOND_HZ: False}
    error_of(await post(c, f"/v1/spaces/{space}/clips", json={"at": 3600}, headers=fan.auth), 422)

    # The rate limit: a burst of 3 per account (refused requests take none).
    ok(
        await post(c, f"/v1/spaces/{space}/clips", json={"at": 0, "seconds": 2}, headers=fan.auth),
        201,
    )
    limited = await post(c, f"/v1/spaces/{space}/clips", json={"at": 0}, headers=fan.auth)
    assert limited.status_code == 429 and "retry-after" in limited.headers, limited.text
    assert limited.json()["error"]["code"] == "clip_limited"


async def test_clips_refuse_bad_input(node: PnyxProcess, c: httpx.Client) -> None:
    host, fan = user(c, "cliphost"), user(c, "clipfan")
    space = create_space(c, host)
    assert error_of(await post(c, f"/v1/spaces/{space}/clips", json={}), 401)
    body = error_of(await post(c, f"/v1/spaces/{space}/clips", json={}, headers=fan.auth), 409)
    assert body["code"] == "nothing_to_clip"  # scheduled
    error_of(
        await post(c, f"/v1/spaces/{space}/clips", json={"seconds": 61}, headers=fan.auth), 422
    )
    error_of(await post(c, f"/v1/spaces/{space}/clips", json={"junk": 1}, headers=fan.auth), 422)
    assert error_of(await post(c, "/v1/spaces/nope/clips", json={}, headers=fan.auth), 404)
    assert error_of(await get(c, "/v1/clips/nope"), 404)["code"] == "no_clip"
    assert error_of(await get(c, "/v1/clips/nope/clip.m4a"), 404)["code"] == "no_clip"
    page = await get(c, "/c/nope")  # the client says so; no preview tags
    assert page.status_code == 200 and meta(page.text)["og:title"] == "A clip on Pnyx"


async def test_a_private_space_clip_is_private(
    node: PnyxProcess, c: httpx.Client, tmp_path: Path
) -> None:
    host, guest, outsider = user(c, "privhost"), user(c, "privguest"), user(c, "outsider")
    space = create_space(c, host, title="Secret plans", visibility="private")
    ok(
        await post(
            c, f"/v1/spaces/{space}/invites", json={"handle": guest.handle}, headers=host.auth
        ),
        201,
    )
    me = await publish(node.url, space, host.token, ToneTrack(FIRST_HZ))
    try:
        await me.connected()
        refused = error_of(
            await post(c, f"/v1/spaces/{space}/clips", json={}, headers=outsider.auth), 403
        )
        assert refused["code"] == "private_space"
        deadline = time.monotonic() + 20
        while True:
            r = await post(c, f"/v1/spaces/{space}/clips", json={"seconds": 2}, headers=guest.auth)
            if r.status_code != 409:
                break
            assert time.monotonic() < deadline, r.text
            await asyncio.sleep(0.3)
        clip = ok(r, 201)
    finally:
        await me.close()
        ok(await post(c, f"/v1/spaces/{space}/end", headers=host.auth))
    assert clip["visibility"] == "private"
    url, media = f"/v1/clips/{clip['id']}", clip["links"]["media"]
    assert error_of(await get(c, url), 401)["code"] == "private_space"
    assert error_of(await get(c, media, headers=outsider.auth), 403)["code"] == "private_space"
    got = await get(c, media, headers=guest.auth)
    assert got.status_code == 200 and got.headers["cache-control"].startswith("private")
    assert heard(await decoded(got.content, tmp_path))[FIRST_HZ]
    page = await get(c, f"/c/{clip['id']}")
    assert "Secret plans" not in page.text and meta(page.text)["og:title"] == "A clip on Pnyx"


async def test_the_edge_caches_public_clips_only(
    node: PnyxProcess, c: httpx.Client, tmp_path: Path
) -> None:
    host, guest = user(c, "edgehost"), user(c, "edgeguest")
    public = create_space(c, host, title="Cached")
    me = await publish(node.url, public, host.token, ToneTrack(FIRST_HZ))
    try:
        await me.connected()
        clip = await clip_when_ready(c, public, guest, seconds=2)
    finally:
        await me.close()
        ok(await post(c, f"/v1/spaces/{public}/end", headers=host.auth))
    private = create_space(c, host, title="Uncached", visibility="private")
    me = await publish(node.url, private, host.token, ToneTrack(FIRST_HZ))
    try:
        await me.connected()
        secret = await clip_when_ready(c, private, host, seconds=2)
    finally:
        await me.close()
        ok(await post(c, f"/v1/spaces/{private}/end", headers=host.auth))

    with nginx_edge([node.url.removeprefix("http://")]) as edge:
        async with httpx.AsyncClient(base_url=edge.url, timeout=30) as via_edge:
            media = clip["links"]["media"]
            first, second = await via_edge.get(media), await via_edge.get(media)
            assert first.status_code == second.status_code == 200
            assert first.content == second.content and len(first.content) == clip["size"]
            status = [r.headers["x-cache-status"] for r in (first, second)]
            assert status == ["MISS", "HIT"]
            hidden = secret["links"]["media"]
            for _ in range(2):  # refused, and the refusal is not kept
                r = await via_edge.get(hidden)
                assert r.status_code == 401 and r.headers["x-cache-status"] == "MISS"
            for _ in range(2):  # the host's own read: never stored or shared
                r = await via_edge.get(hidden, headers=host.auth)
                assert r.status_code == 200 and r.headers["x-cache-status"] == "BYPASS"
            assert (await via_edge.get(hidden)).status_code == 401
            junk = await via_edge.get(f"{media}?junk=1")
            assert junk.status_code == 200 and junk.headers["x-cache-status"] == "HIT"
            refused = await via_edge.post(media)
            assert refused.status_code == 403
