"""The web client in real browsers: a host in one Chromium, a listener in another, each
with a fake microphone playing its own tone, against a real ``pnyx serve``.

The listener's page plays the space over LL-HLS and its own WebAudio analyser must find
the host's tone in what it hears; after a raised hand is approved, the same page
publishes over WebRTC and hears the host (not itself) through its mix-minus, while the
host hears it; moved back, it plays the space again; the end shows on its page; the
replay plays the recording. No page may log an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import (
    DESKTOP,
    PHONE,
    assert_clean,
    chromiums,
    hearing,
    hears_only,
    poll,
    require_browser,
    screenshot,
    settles,
    tone_present,
    tone_wav,
)
from tests.support.pnyx_server import PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e

HOST_HZ = 440  # the host's fake microphone
GUEST_HZ = 660  # the listener's (then speaker's) fake microphone
FREQS = [HOST_HZ, GUEST_HZ]
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    with pnyx_serve(tmp_path_factory.mktemp("web-node")) as server:
        yield server


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("tones")
    return {hz: tone_wav(folder / f"tone-{hz}.wav", hz) for hz in FREQS}


def sign_up(page: Any, handle: str) -> None:
    """Create an account and sign in, through the page's own form."""
    from playwright.sync_api import expect

    page.goto("/signin?mode=signup&next=/")
    page.get_by_label("Handle").fill(handle)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_label(f"Signed in as @{handle}")).to_be_visible()


def space_info(node: PnyxProcess, space: str) -> dict[str, Any]:
    return dict(httpx.get(f"{node.url}/v1/spaces/{space}", timeout=10).json())


def test_host_and_listener_in_two_browsers(node: PnyxProcess, tones: dict[int, Path]) -> None:
    from playwright.sync_api import expect

    with chromiums(node.url, tones[HOST_HZ], tones[GUEST_HZ]) as (host_browser, guest_browser):
        # Each page speaks a pure tone: no voice processing (see Browser.page).
        host, host_watch = host_browser.page("host", voice_processing=False)
        guest, guest_watch = guest_browser.page("listener", voice_processing=False)

        # -- the host signs up and starts a recorded space --------------------------------
        sign_up(host, "hana")
        host.get_by_role("link", name="Start a space").first.click()
        host.get_by_label("Title").fill("Town hall")
        host.get_by_label("Record this space").check()
        host.get_by_role("button", name="Go live now").click()
        host.wait_for_url(re.compile(r"/s/[\w-]+$"))
        space = host.url.rsplit("/", 1)[1]
        expect(host.locator("#mic-status")).to_have_text(re.compile("You're live"), timeout=20_000)
        expect(host.locator("#stage-list")).to_contain_text("@hana")
        share_link = host.locator("#share-link").input_value()
        assert share_link.endswith(f"/s/{space}")

        # -- the listener finds it on the home page and opens the share link ---------------
        sign_up(guest, "lee")
        expect(guest.locator("#live-spaces")).to_contain_text("Town hall")
        expect(guest.locator("#live-spaces")).to_contain_text("@hana")
        guest.goto(share_link)
        expect(guest.get_by_role("heading", name="Town hall")).to_be_visible()
        guest.get_by_role("button", name="Play the space").click()

        # The listener hears the host's tone over LL-HLS, and nothing of its own.
        settles(
            lambda: hears_only(guest, HOST_HZ, GUEST_HZ, source="hls"),
            timeout=30,
            what="the host's tone (only) in the listener's LL-HLS audio",
        )
        assert guest.evaluate("pnyx.space.playerEngine") == "hls.js"
        expect(host.locator("#listener-count")).to_have_text("1 listener", timeout=15_000)
        expect(guest.locator("#stage-list li.is-speaking")).to_contain_text("@hana")

        expect(guest.locator("#player-status")).to_have_text("Playing live.")

        # -- a reaction from the listener shows on the host's page -------------------------
        guest.get_by_role("button", name="React fire").click()
        expect(host.locator("#reaction-counts")).to_contain_text("🔥")

        # -- hand raised, approved: the listener speaks ------------------------------------
        guest.get_by_role("button", name="Raise hand").click()
        expect(guest.locator("#hand-button")).to_contain_text("Lower hand")
        expect(host.locator("#hand-queue")).to_contain_text("@lee")
        for name, page in (("host", host), ("listener", guest)):
            screenshot(page, f"{name}-desktop", DESKTOP)
            screenshot(page, f"{name}-phone", PHONE)
            page.set_viewport_size(DESKTOP)
        host.get_by_role("button", name="Approve @lee").click()

        expect(guest.locator("#mic-panel")).to_be_visible()
        expect(guest.locator("#listen-panel")).to_be_hidden()
        expect(guest.locator("#mic-status")).to_have_text(re.compile("You're live"), timeout=20_000)
        # Through its mix-minus the new speaker hears the host, not itself...
        settles(
            lambda: hears_only(guest, HOST_HZ, GUEST_HZ, source="mix-minus"),
            what="the host (only) in the speaker's mix-minus",
        )
        # ...and the host hears the speaker, not itself.
        settles(
            lambda: hears_only(host, GUEST_HZ, HOST_HZ, source="mix-minus"),
            what="the speaker (only) in the host's mix-minus",
        )
        expect(host.locator('#stage-list li[data-key="lee"]')).to_have_class(
            re.compile("is-speaking")
        )
        screenshot(host, "host-with-speaker-desktop", DESKTOP)

        # -- moved back to the audience: the page plays the space again --------------------
        host.get_by_label("Actions for @lee").click()
        host.get_by_role("button", name="Move to the audience").click()
        expect(guest.locator("#listen-panel")).to_be_visible()
        expect(guest.locator("#mic-panel")).to_be_hidden()
        settles(
            lambda: hears_only(guest, HOST_HZ, GUEST_HZ, source="hls"),
            timeout=30,
            what="the space again (the host alone) after moving back",
        )

        # -- the host ends the space: the listener's page says so --------------------------
        host.get_by_role("button", name="End space").click()
        host.get_by_role("button", name="Yes, end the space").click()
        expect(guest.locator("#space-banner")).to_contain_text("This space has ended")
        expect(host.locator("#space-banner")).to_contain_text("This space has ended")
        expect(guest.locator("#reaction-buttons")).to_be_hidden()

        # -- the replay plays the recording ------------------------------------------------
        poll(
            lambda: (
                httpx.get(f"{node.url}/media/{space}/replay.m3u8", timeout=10).status_code == 200
            ),
            what="the replay playlist",
        )
        guest.get_by_role("link", name="Listen to the replay").click()
        guest.get_by_role("button", name="Play the recording").click()
        poll(
            lambda: tone_present(hearing(guest, FREQS, view="replay"), HOST_HZ),
            what="the host's tone in the replay",
        )
        assert space_info(node, space)["state"] == "ended"

        assert_clean(host_watch, guest_watch)
