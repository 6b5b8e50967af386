"""A private space in the web client, in real browsers against a real ``pnyx serve``: the
host creates it from the "new space" page (it shows a Private badge), invites a listener
by handle from the space page; the invited listener opens the share link and hears the
host's tone, every media request going through the signed links; a signed-in stranger
and an anonymous visitor see "This space is private" and hear nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import new_user
from tests.support.browser import (
    assert_clean,
    chromiums,
    hears_only,
    require_browser,
    settles,
    sign_in,
    tone_wav,
)
from tests.support.pnyx_server import PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e

HOST_HZ = 440
GUEST_HZ = 660  # the guest's fake microphone, never published
# what a listener reads: media, the state, the space's description
LISTENER_READ = re.compile(r"/media/|/v1/spaces/[^/?]+(/state)?(\?|$)")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    with pnyx_serve(tmp_path_factory.mktemp("web-private")) as server:
        yield server


def test_an_invited_user_hears_a_private_space_and_others_are_refused(
    node: PnyxProcess, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with node.client() as c:
        host_user, guest_user, stranger_user = (
            new_user(c, "host"),
            new_user(c, "guest"),
            new_user(c, "stranger"),
        )
    tones = [tone_wav(tmp_path / f"{hz}.wav", hz) for hz in (HOST_HZ, GUEST_HZ)]
    with chromiums(node.url, *tones) as (host_browser, guest_browser):
        host, host_watch = host_browser.page("host", voice_processing=False)
        guest, guest_watch = guest_browser.page("guest")
        stranger, stranger_watch = guest_browser.page("stranger")
        anonymous, anonymous_watch = guest_browser.page("anonymous")

        # -- the host creates a private space and invites the guest ----------------------
        sign_in(host, host_user.handle, host_user.token, "/new")
        host.get_by_label("Title").fill("Board meeting")
        host.get_by_label("Who can find it").select_option("private")
        expect(host.get_by_label("Who can listen")).to_have_value("invited")
        host.get_by_role("button", name="Go live now").click()
        host.wait_for_url(re.compile(r"/s/p-[\w-]+$"))
        space = host.url.rsplit("/", 1)[1]
        expect(host.locator("#mic-status")).to_have_text(re.compile("You're live"), timeout=20_000)
        expect(host.locator("#visibility-badge")).to_have_text("Private")
        expect(host.locator("#audience-panel")).to_be_visible()
        host.locator("#audience-handle").fill(f"@{guest_user.handle}")
        host.locator("#audience-form").get_by_role("button", name="Invite").click()
        expect(host.locator("#audience-list")).to_contain_text(f"@{guest_user.handle}")
        share_link = host.locator("#share-link").input_value()
        assert share_link.endswith(f"/s/{space}")

        # -- the invited guest opens the link and hears the host over signed links --------
        media: list[str] = []

        def seen(request: Any) -> None:
            path = re.sub(r"^https?://[^/]+", "", request.url)
            if LISTENER_READ.search(path):
                media.append(path)

        guest.on("request", seen)
        sign_in(guest, guest_user.handle, guest_user.token, f"/s/{space}")
        expect(guest.get_by_role("heading", name="Board meeting")).to_be_visible()
        expect(guest.locator("#visibility-badge")).to_have_text("Private")
        expect(guest.locator("#audience-panel")).to_be_hidden()
        guest.get_by_role("button", name="Play the space").click()
        settles(
            lambda: hears_only(guest, HOST_HZ, GUEST_HZ, source="hls"),
            timeout=30,
            what="the host's tone in the invited guest's LL-HLS audio",
        )
        expect(host.locator("#listener-count")).to_have_text("1 listener", timeout=15_000)
        assert any("/part/" in p for p in media), media
        assert all(p.startswith("/p/") for p in media), [
            p for p in media if not p.startswith("/p/")
        ]

        # -- a signed-in stranger is refused, clearly --------------------------------------
        stranger_watch.expect(r"/v1/spaces/p-[\w-]+/links", r"status of 403")
        sign_in(stranger, stranger_user.handle, stranger_user.token, f"/s/{space}")
        expect(stranger.get_by_role("heading", name="This space is private")).to_be_visible()
        expect(stranger.locator("#space-banner")).to_contain_text("is not invited")
        expect(stranger.get_by_role("button", name="Play the space")).to_be_hidden()

        # -- so is an anonymous visitor, who is asked to sign in ---------------------------
        anonymous.goto(f"/s/{space}")
        expect(anonymous.get_by_role("heading", name="This space is private")).to_be_visible()
        expect(
            anonymous.locator("#space-banner").get_by_role("link", name="Sign in")
        ).to_be_visible()

        assert_clean(host_watch, guest_watch, stranger_watch, anonymous_watch)
