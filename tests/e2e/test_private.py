"""A private space end to end on one ``pnyx serve`` process: the host publishes a tone
over WebRTC (aiortc); an invited listener hears it through the signed links its join
answered with (every playlist, init and part request under the same ``/p/{exp}/{sig}/``
prefix, as a player resolves the playlist's relative URIs); unsigned and tampered
requests for the same objects get 403 from the node, and a stranger cannot join."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_audio import (
    HOST_HZ,
    LOOK_S,
    Background,
    heard_by_listener,
    hears,
    in_thread,
    wrap_up,
)
from tests.support.api import User, create_space, error_of, join, ok
from tests.support.api import new_user as user
from tests.support.hls import FetchedPart, HlsListener
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import eventually
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    with pnyx_serve(Path(tmp_path_factory.mktemp("private"))) as n:
        yield n


@pytest.fixture
def c(node: PnyxProcess) -> Iterator[httpx.Client]:
    with node.client() as client:
        yield client


def private_space_with_a_guest(c: httpx.Client) -> tuple[str, User, dict[str, str]]:
    """A live private space, its host, and the media links an invited account's join
    answered with (a stranger's join and an anonymous one refused)."""
    host, invitee, stranger = user(c, "host"), user(c, "guest"), user(c, "stranger")
    space = create_space(c, host, visibility="private")
    assert space.startswith("p-")
    invite = {"handle": invitee.handle}
    ok(c.post(f"/v1/spaces/{space}/invites", json=invite, headers=host.auth), 201)
    assert error_of(c.post(f"/v1/spaces/{space}/join"), 401)["code"] == "private_space"
    refused = error_of(c.post(f"/v1/spaces/{space}/join", headers=stranger.auth), 403)
    assert refused["code"] == "private_space"
    return space, host, join(c, space, invitee).media


async def hears_the_host(
    listener: HlsListener, within: float, what: str
) -> tuple[FetchedPart, str]:
    """Play ``listener`` (the invited one's, at its signed playlist URL) until it hears the
    host's tone; returns the newest part it got and its playlist's init URI."""
    started = time.time()
    async with Background(listener):
        await eventually(
            hears(lambda: heard_by_listener(listener, started), {HOST_HZ}),
            within=within,
            what=f"the invited listener hears {what}",
            interval=LOOK_S,
        )
        return listener.parts[-1], listener.playlists[-1].init_uri


async def test_an_invited_listener_hears_a_private_space_through_signed_links(
    node: PnyxProcess, c: httpx.Client
) -> None:
    space, host, media = await in_thread(lambda: private_space_with_a_guest(c))
    signed_hls = media["hls"]
    prefix = signed_hls.removesuffix(f"/media/{space}/live.m3u8")
    assert prefix.startswith("/p/") and prefix != signed_hls

    speaker = await publish(node.url, space, host.token, ToneTrack(HOST_HZ))
    requested: list[str] = []

    async def record(request: httpx.Request) -> None:
        requested.append(request.url.path)

    client = httpx.AsyncClient(timeout=15.0, event_hooks={"request": [record]})
    try:
        await speaker.connected()
        listener = HlsListener.at(node.url + signed_hls, client=client)
        part, init_uri = await hears_the_host(listener, 10, "the host's tone")
        assert requested, "the listener made no request"
        assert all(path.startswith(prefix + f"/media/{space}/") for path in requested), requested
        assert any("/part/" in path for path in requested)

        # The same objects without the signature, or with a wrong one: 403 from the node.
        exp, sig = prefix.split("/")[2:4]
        bad_sig = ("A" if sig[0] != "A" else "B") + sig[1:]
        for path in (
            f"/media/{space}/live.m3u8",
            f"/media/{space}/{init_uri}",
            f"/media/{space}/{part.uri}",
            f"/v1/spaces/{space}/state",
            f"/v1/spaces/{space}",
        ):
            r = await client.get(node.url + path)
            assert r.status_code == 403, (path, r.text)
            assert r.json()["error"]["code"] == "signed_link_needed"
            r = await client.get(f"{node.url}/p/{exp}/{bad_sig}{path}")
            assert r.status_code == 403, (path, r.text)
            assert r.json()["error"]["code"] == "bad_signature"
        # …while the signed ones answer
        r = await client.get(f"{node.url}{prefix}/media/{space}/{part.uri}")
        assert r.status_code == 200 and r.content == part.data
        r = await client.get(node.url + media["state"])
        assert r.status_code == 200 and r.json()["state"] == "live"
    finally:
        await client.aclose()
        await wrap_up(c, space, host, speaker)
