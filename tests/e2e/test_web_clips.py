"""Clips and search in the web client (Chromium): a signed-in listener clips the live
space from the listener view, opens the clip's page and plays it (the host's tone is
heard through the page's own analyser); the home page finds the space by its title, and
lists its replay once it has ended. Screenshot: docs/screenshots/clip-desktop.png."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import create_space, new_user, ok
from tests.support.browser import (
    DESKTOP,
    assert_clean,
    chromiums,
    hearing,
    poll,
    require_browser,
    screenshot,
    sign_in,
    tone_present,
    tone_wav,
)
from tests.support.pnyx_server import PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e

HOST_HZ = 660


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    with pnyx_serve(tmp_path_factory.mktemp("web-clips")) as n:
        yield n


def test_clip_from_the_listener_view_and_play_it(node: PnyxProcess, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    word = f"Clipfest {secrets.token_hex(2)}"
    with httpx.Client(base_url=node.url, timeout=20) as c:
        host_user, fan_user = new_user(c, "webclipper"), new_user(c, "webfan")
        space = create_space(c, host_user, title=f"{word} live", record=True)

    with chromiums(node.url, tone_wav(tmp_path / "host.wav", HOST_HZ, seconds=30)) as (browser,):
        host, host_watch = browser.page("host")
        sign_in(host, host_user.handle, host_user.token, f"/s/{space}")
        expect(host.locator("#mic-status")).to_have_text(re.compile("You're live"), timeout=20_000)

        fan, fan_watch = browser.page("fan")
        # Searching from the home page finds the space by a word of its title.
        fan.goto("/")
        fan.get_by_role("searchbox", name="Search spaces").fill(word)
        fan.get_by_role("button", name="Search").click()
        expect(fan.locator("#search-results")).to_contain_text(f"{word} live")

        sign_in(fan, fan_user.handle, fan_user.token, f"/s/{space}")
        clip_button = fan.get_by_role("button", name=re.compile("Clip the last"))
        expect(clip_button).to_be_visible()
        fan.get_by_role("button", name="Play the space").click()
        poll(
            lambda: tone_present(hearing(fan, [HOST_HZ]), HOST_HZ),
            timeout=30,
            what="the listener hears the host",
        )
        # Once a few segments are finished (about 6 s), clip them.
        poll(
            lambda: (
                httpx.get(f"{node.url}/media/{space}/live.m3u8", timeout=10).text.count("#EXTINF")
                >= 3
            ),
            what="three finished segments",
        )
        clip_button.click()
        link = fan.locator("#clip-link")
        expect(link).to_be_visible(timeout=20_000)
        link.click()

        expect(fan.get_by_role("heading", name=f"{word} live")).to_be_visible()
        expect(fan.locator("#clip-space-link")).to_have_attribute("href", f"/s/{space}")
        fan.locator("#clip-audio").evaluate("(a) => a.play()")
        poll(
            lambda: fan.evaluate("() => window.pnyx?.clip?.currentTime ?? 0") > 1,
            what="the clip plays",
        )
        poll(
            lambda: tone_present(hearing(fan, [HOST_HZ], view="clip"), HOST_HZ),
            timeout=20,
            what="the clip carries the host's tone",
        )
        assert fan.evaluate("() => window.pnyx.clip.error") is None
        # The player knows the clip's length from its header, before reading it all.
        shown = fan.evaluate("() => window.pnyx.clip.duration")
        with httpx.Client(base_url=node.url, timeout=20) as c:
            clip_id = fan.url.rstrip("/").rsplit("/", 1)[-1]
            stated = ok(c.get(f"/v1/clips/{clip_id}"))["duration"]
        assert abs(shown - stated) < 0.1, (shown, stated)
        screenshot(fan, "clip-desktop", DESKTOP)

        ok(httpx.post(f"{node.url}/v1/spaces/{space}/end", headers=host_user.auth, timeout=10))

        # The ended, recorded space shows among the recent replays once its recording is
        # finished (the node seals it after letting the space go): the page, after that.
        def listed() -> bool:
            r = httpx.get(f"{node.url}/v1/replays", timeout=10)
            return space in [s["id"] for s in r.json()["spaces"]]

        poll(listed, timeout=30, what="the replay listed")
        fan.goto("/")
        expect(fan.locator("#recent-replays")).to_contain_text(f"{word} live", timeout=20_000)
        # A heartbeat or state read already on its way when the space ends is refused.
        fan_watch.expect(r"/v1/spaces/[\w-]+/heartbeat$", r"status of 409")
        host_watch.expect(r"/v1/spaces/[\w-]+/", r"status of 409")
    assert_clean(host_watch, fan_watch)
