"""The web client's other pages, by keyboard: signing in, the home page's lists, a
scheduled space that its host starts, listening by keyboard alone, the replay page of a
space that was not recorded, and a space that does not exist. Every control has a name
a screen reader can say."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import create_space, new_user, ok
from tests.support.browser import (
    DESKTOP,
    PHONE,
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

HOST_HZ = 440


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    with pnyx_serve(tmp_path_factory.mktemp("web-pages")) as n:
        yield n


def unnamed_controls(page: Any) -> list[str]:
    """Buttons, links and form fields that a screen reader would announce without a
    name, from the page's accessibility tree (Playwright's ARIA snapshot)."""
    snapshot = page.locator("body").aria_snapshot()
    roles = ("button", "link", "textbox", "combobox", "checkbox", "radio")
    return [
        line.strip()
        for line in snapshot.splitlines()
        if re.fullmatch(rf"\s*- ({'|'.join(roles)})(:.*)?", line)
    ]


def press_until_focused(page: Any, selector: str, *, limit: int = 40) -> None:
    """Press Tab until ``selector`` has the focus (as a keyboard user would)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_pages_by_keyboard(node: PnyxProcess, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=node.url, timeout=20) as c:
        ola = new_user(c, "ola")
        ok(c.post("/v1/accounts", json={"handle": "kim", "password": "correct horse battery"}), 201)
        live = create_space(c, ola, title="Morning show")

    with chromiums(node.url, tone_wav(tmp_path / "host.wav", HOST_HZ)) as (browser,):
        # -- signing in by keyboard, a wrong password first ----------------------------------
        kim, kim_watch = browser.page("kim")
        kim_watch.expect(r"/v1/sessions$", r"status of 401")
        kim.goto("/")
        press_until_focused(kim, "#account-nav a")
        kim.keyboard.press("Enter")
        expect(kim.get_by_role("heading", name="Sign in")).to_be_visible()
        kim.keyboard.type("kim")
        kim.keyboard.press("Tab")
        kim.keyboard.type("not the password")
        kim.keyboard.press("Enter")
        expect(kim.locator("#auth-error")).to_contain_text("don't match")
        kim.get_by_label("Password").fill("correct horse battery")
        kim.keyboard.press("Enter")
        expect(kim.get_by_label("Signed in as @kim")).to_be_visible()

        # -- a scheduled space, created from the form ---------------------------------------
        kim.get_by_role("link", name="Start a space").first.click()
        kim.get_by_label("Title").fill("Evening talk")
        kim.get_by_label("Later, at").check()
        later = datetime.now(UTC).astimezone() + timedelta(hours=2)
        kim.get_by_label("Start time").fill(later.strftime("%Y-%m-%dT%H:%M"))
        kim.get_by_label("Who may ask to speak").select_option("followed")
        kim.get_by_role("button", name="Schedule").click()
        kim.wait_for_url(re.compile(r"/s/[\w-]+$"))
        expect(kim.locator("#space-banner")).to_contain_text("This space is scheduled")
        expect(kim.locator("#space-badge")).to_have_text("Scheduled")

        # -- the home page lists it, and the live one with who is speaking -------------------
        host, host_watch = browser.page("host")
        sign_in(host, ola.handle, ola.token, f"/s/{live}")
        expect(host.locator("#mic-status")).to_have_text(re.compile("You're live"), timeout=20_000)
        visitor, visitor_watch = browser.page("visitor")
        visitor.goto("/")
        expect(visitor.locator("#scheduled-spaces")).to_contain_text("Evening talk")
        expect(visitor.locator("#live-spaces")).to_contain_text("Morning show")
        expect(visitor.locator("#live-spaces")).to_contain_text(f"Speaking now: @{ola.handle}")
        assert unnamed_controls(visitor) == []
        screenshot(visitor, "home-desktop", DESKTOP)
        screenshot(visitor, "home-phone", PHONE)
        visitor.set_viewport_size(DESKTOP)

        # -- listening by keyboard alone -------------------------------------------------------
        visitor.get_by_role("link", name="Morning show").focus()
        visitor.keyboard.press("Enter")
        expect(visitor.get_by_role("heading", name="Morning show")).to_be_focused()
        # The listen panel appears once the page has joined the audience (a loaded
        # machine can take longer than 40 key presses): a keyboard user tabs once it is there.
        expect(visitor.locator("#play-button")).to_be_visible()
        press_until_focused(visitor, "#play-button")
        visitor.keyboard.press("Enter")
        poll(
            lambda: tone_present(hearing(visitor, [HOST_HZ]), HOST_HZ),
            timeout=30,
            what="the space, played from the keyboard",
        )
        expect(visitor.locator("button[data-emoji]").first).to_be_visible()
        press_until_focused(visitor, "button[data-emoji]")
        visitor.keyboard.press("Space")
        expect(host.locator("#reaction-counts")).to_contain_text("👏")
        assert unnamed_controls(visitor) == []
        assert unnamed_controls(host) == []
        # An anonymous listener is asked to sign in to raise a hand.
        expect(visitor.locator("#hand-note")).to_contain_text("Sign in to ask to speak")

        # -- the scheduled space starts: its host's page goes live without a reload ----------
        kim.get_by_role("button", name="Start the space now").click()
        expect(kim.locator("#space-badge")).to_have_text("Live")
        expect(kim.locator("#mic-status")).to_have_text(re.compile("You're live"), timeout=20_000)

        # -- the replay of an unrecorded space, and a space that does not exist --------------
        # A heartbeat already on its way when the space ends is refused (409 space_over)
        # before the page hears of the end from the state: that is the right answer.
        visitor_watch.expect(r"/v1/spaces/[\w-]+/heartbeat$", r"status of 409")
        ok(httpx.post(f"{node.url}/v1/spaces/{live}/end", headers=ola.auth, timeout=10))
        expect(visitor.locator("#space-banner")).to_contain_text("This space has ended")
        expect(visitor.get_by_role("link", name="Listen to the replay")).to_have_count(0)
        visitor.goto(f"/replay/{live}")
        expect(visitor.get_by_text("This space was not recorded")).to_be_visible()
        visitor_watch.expect(r"/v1/spaces/nope-nope$", r"status of 404")
        visitor.goto("/s/nope-nope")
        expect(visitor.get_by_role("heading", name="There is no such space")).to_be_visible()

        assert_clean(kim_watch, host_watch, visitor_watch)
