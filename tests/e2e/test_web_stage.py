"""The host runs the stage from the web client: an invite-only space, invitations
accepted on the listeners' pages (one of them into a full stage), a co-host, a mute the
speaker lifts themself, a pinned link, and a removal with a block, each seen on the
pages it concerns, and heard (or not) in the host's mix-minus."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import create_space, new_user
from tests.support.browser import (
    assert_clean,
    chromiums,
    hearing,
    poll,
    require_browser,
    sign_in,
    tone_present,
    tone_wav,
)
from tests.support.pnyx_server import PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e

HOST_HZ = 440
GUEST_HZ = 660
FREQS = [HOST_HZ, GUEST_HZ]
SILENT_DB = -80.0  # the analyser's dB at a frequency nobody sends


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    # One speaker seat, so that a second invitation meets a full stage.
    with pnyx_serve(tmp_path_factory.mktemp("web-stage"), settings={"max_speakers": "1"}) as n:
        yield n


def test_host_runs_the_stage(node: PnyxProcess, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=node.url, timeout=20) as c:
        hana, lee, max_ = new_user(c, "hana"), new_user(c, "lee"), new_user(c, "max")
        space = create_space(c, hana, title="Invite only", who_can_speak="nobody")

    host_tone, guest_tone = (
        tone_wav(tmp_path / "host.wav", HOST_HZ),
        tone_wav(tmp_path / "guest.wav", GUEST_HZ),
    )
    with chromiums(node.url, host_tone, guest_tone) as (hb, gb):
        # Each page speaks a pure tone: no voice processing (see Browser.page).
        host, host_watch = hb.page("host", voice_processing=False)
        lee_page, lee_watch = gb.page("lee", voice_processing=False)
        max_page, max_watch = gb.page("max", voice_processing=False)
        sign_in(host, hana.handle, hana.token, f"/s/{space}")
        expect(host.locator("#mic-status")).to_have_text(re.compile("You're live"), timeout=20_000)
        for page, user in ((lee_page, lee), (max_page, max_)):
            sign_in(page, user.handle, user.token, f"/s/{space}")
            page.get_by_role("button", name="Play the space").click()
            expect(page.locator("#player-status")).to_have_text("Playing live.", timeout=20_000)
        # Invite only: no hand to raise.
        expect(lee_page.locator("#hand-button")).to_be_disabled()
        expect(lee_page.locator("#hand-note")).to_have_text("This space is invite only.")

        # -- two invitations (the seat is checked again when one is accepted) ---------------
        for user in (lee, max_):
            host.get_by_label("Invite @").fill(user.handle)
            host.get_by_role("button", name="Invite", exact=True).click()
            expect(host.locator("#pending-invitations")).to_contain_text(f"@{user.handle}")
        expect(lee_page.locator("#invitation-panel")).to_contain_text("You're invited")
        lee_page.get_by_role("button", name="Accept").click()
        expect(lee_page.locator("#mic-status")).to_have_text(
            re.compile("You're live"), timeout=20_000
        )
        expect(host.locator("#stage-list")).to_contain_text(f"@{lee.handle}")
        poll(lambda: tone_present(hearing(host, FREQS), GUEST_HZ), what="the guest, at the host")

        # -- the second one meets a full stage: said clearly, and the audio plays on --------
        expect(max_page.locator("#invitation-panel")).to_be_visible()
        max_watch.expect(r"/invitation$")  # the 409 the browser logs for the refusal
        max_page.get_by_role("button", name="Accept").click()
        expect(max_page.locator("#toasts")).to_contain_text("The stage is full")
        expect(max_page.locator("#listen-panel")).to_be_visible()
        # Still listening (a moment of "buffering" while three pages and the node share two
        # cores has been seen once; the audio must be playing again at once).
        poll(
            lambda: max_page.evaluate("pnyx.space.playerStatus") == "playing",
            timeout=5,
            what="the refused guest's audio playing on",
        )
        max_page.get_by_role("button", name="Decline").click()
        expect(max_page.locator("#invitation-panel")).to_be_hidden()

        # -- a co-host: the host's to make; it shows on the new co-host's page ---------------
        host.get_by_label(f"Actions for @{lee.handle}").click()
        expect(host.get_by_role("button", name="Make co-host")).to_be_visible()
        host.keyboard.press("Escape")  # the menu closes from the keyboard...
        expect(host.get_by_role("button", name="Make co-host")).to_be_hidden()
        host.get_by_label(f"Actions for @{lee.handle}").click()  # ...and opens again
        host.get_by_role("button", name="Make co-host").click()
        expect(lee_page.locator(f'#stage-list li[data-key="{lee.handle}"]')).to_contain_text(
            "Co-host · you"
        )
        expect(lee_page.locator("#requests-panel")).to_be_visible()  # co-hosts moderate
        expect(host.locator(f'#stage-list li[data-key="{lee.handle}"]')).to_contain_text("Co-host")

        # -- muted by the host; only the speaker unmutes ------------------------------------
        host.get_by_label(f"Actions for @{lee.handle}").click()
        host.get_by_role("button", name=f"Mute @{lee.handle}").click()
        expect(lee_page.locator("#mic-button")).to_have_text("Unmute microphone")
        expect(host.locator(f'#stage-list li[data-key="{lee.handle}"]')).to_contain_text("Muted")
        poll(
            lambda: (h := hearing(host, FREQS)) and h["at"][str(GUEST_HZ)] < SILENT_DB,
            what="the muted speaker gone from the host's mix-minus",
        )
        lee_page.get_by_role("button", name="Unmute microphone").click()
        expect(lee_page.locator("#mic-button")).to_have_text("Mute microphone")
        poll(lambda: tone_present(hearing(host, FREQS), GUEST_HZ), what="the speaker back")

        # -- a pinned link shows on every page ----------------------------------------------
        host.get_by_label("Pin a link").fill("https://example.org/agenda")
        host.get_by_role("button", name="Pin", exact=True).click()
        for page in (lee_page, max_page):
            expect(page.get_by_role("link", name="https://example.org/agenda")).to_be_visible()

        # -- removed and blocked: the page says so and stops ---------------------------------
        lee_watch.expect(r"/join(\?|$)")  # its page tries to listen again: 403, removed
        host.get_by_label(f"Actions for @{lee.handle}").click()
        host.get_by_role("button", name="Remove and block", exact=True).click()
        expect(host.locator("#stage-list")).not_to_contain_text(f"@{lee.handle}")
        expect(lee_page.locator("#space-banner")).to_contain_text("You were removed")
        expect(lee_page.locator("#mic-panel")).to_be_hidden()
        expect(lee_page.locator("#listen-panel")).to_be_hidden()
        poll(
            lambda: (h := hearing(host, FREQS)) and h["at"][str(GUEST_HZ)] < SILENT_DB,
            what="the removed speaker gone from the host's mix-minus",
        )
        assert lee_page.evaluate("pnyx.space.micStatus") == "stopped"

        assert_clean(host_watch, lee_watch, max_watch)
