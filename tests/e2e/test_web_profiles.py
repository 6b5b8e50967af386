"""Profiles and account settings in Chromium: following a host from its profile page
(the follower count changes), editing the display name in settings (the stage then shows
it, and the "Speaking" ring goes out when the space ends), changing the password (this
tab stays signed in), deleting the account, and far dates shown with their year."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import create_space, error_of, new_user, ok
from tests.support.browser import (
    DESKTOP,
    PHONE,
    assert_clean,
    chromiums,
    require_browser,
    screenshot,
    sign_in,
    tone_wav,
)
from tests.support.pnyx_server import PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e

HOST_HZ = 440
PASSWORD = "correct horse"  # tests/support/api.py new_user's
NEW_PASSWORD = "violet lantern harbour quietly"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    settings = {"max_live_spaces_per_account": "5"}
    with pnyx_serve(tmp_path_factory.mktemp("web-profiles"), settings=settings) as n:
        yield n


def test_follow_a_host_from_its_profile(node: PnyxProcess, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=node.url, timeout=20) as c:
        host, fan = new_user(c, "ada"), new_user(c, "fan")
        about = {"display_name": "Ada Lovelace", "bio": "Engines, numbers and poetry."}
        ok(c.patch("/v1/account", json=about, headers=host.auth))
        create_space(c, host, title="Analytical engines, live")
        create_space(c, host, title="Notes on Note G", scheduled_start="2099-06-01T18:00:00Z")
        past = create_space(c, host, title="Bernoulli numbers", record=True)
        ok(c.post(f"/v1/spaces/{past}/end", headers=host.auth))
        create_space(c, host, title="Only with a link", visibility="unlisted")

    with chromiums(node.url, tone_wav(tmp_path / "quiet.wav", HOST_HZ)) as (browser,):
        page, watch = browser.page("fan")
        sign_in(page, fan.handle, fan.token, f"/u/{host.handle}")
        expect(page.locator("#profile-name")).to_have_text("Ada Lovelace")
        expect(page.locator("#profile-bio")).to_have_text("Engines, numbers and poetry.")
        expect(page.locator("#profile-followers")).to_have_text("0 followers")
        expect(page.locator("#profile-live")).to_contain_text("Analytical engines, live")
        expect(page.locator("#profile-scheduled")).to_contain_text("Notes on Note G")
        expect(page.locator("#profile-scheduled")).to_contain_text("2099")  # not this year
        expect(page.locator("#profile-ended")).to_contain_text("Bernoulli numbers")
        expect(
            page.locator("#profile-ended").get_by_role("link", name="Listen to the replay")
        ).to_be_visible()
        expect(page.locator("main")).not_to_contain_text("Only with a link")  # unlisted

        page.get_by_role("button", name="Follow").click()
        expect(page.locator("#profile-followers")).to_have_text("1 follower")
        expect(page.locator("#follow-button")).to_have_text("Following")
        expect(page.locator("#follow-button")).to_have_attribute("aria-pressed", "true")
        with httpx.Client(base_url=node.url, timeout=20) as c:
            seen = ok(c.get(f"/v1/accounts/{host.handle}", headers=fan.auth))
            assert (seen["followers"], seen["you_follow"]) == (1, True)
        screenshot(page, "profile-desktop", DESKTOP)
        screenshot(page, "profile-phone", PHONE)
        page.set_viewport_size(DESKTOP)

        page.get_by_role("button", name="Following").click()
        expect(page.locator("#profile-followers")).to_have_text("0 followers")
        expect(page.locator("#follow-button")).to_have_text("Follow")

        # The host sees its unlisted space on its own profile, and no follow button.
        own, own_watch = browser.page("ada")
        sign_in(own, host.handle, host.token, f"/u/{host.handle}")
        expect(own.locator("#profile-live")).to_contain_text("Only with a link")
        expect(own.locator("#follow-button")).to_be_hidden()
        expect(own.get_by_role("link", name="Edit profile")).to_be_visible()
        assert_clean(watch, own_watch)


def test_settings_name_on_stage_password_and_deletion(node: PnyxProcess, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=node.url, timeout=20) as c:
        me = new_user(c, "grace")
        space = create_space(c, me, title="Compilers")

    with chromiums(node.url, tone_wav(tmp_path / "host.wav", HOST_HZ)) as (browser,):
        page, watch = browser.page("grace")
        sign_in(page, me.handle, me.token, "/")
        page.get_by_role("link", name="Settings").click()
        expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
        expect(page.get_by_label("Display name")).to_have_value(me.handle)
        page.get_by_label("Display name").fill("Grace Hopper")
        page.get_by_label("Bio").fill("Nanoseconds, in hand.")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#toasts")).to_contain_text("Your profile is saved")

        # The host goes on stage: a listener sees the new name, speaking, then not.
        page.goto(f"/s/{space}")
        expect(page.locator("#mic-status")).to_have_text(re.compile("You're live"), timeout=20_000)
        listener, listener_watch = browser.page("listener")
        listener.goto(f"/s/{space}")
        stage = listener.locator("#stage-list")
        expect(stage).to_contain_text("Grace Hopper")
        expect(stage).to_contain_text(f"@{me.handle}")
        expect(listener.locator("#host-link")).to_have_text(f"Grace Hopper (@{me.handle})")
        expect(stage.locator(".member.is-speaking")).to_have_count(1, timeout=20_000)
        with httpx.Client(base_url=node.url, timeout=20) as c:
            ok(c.post(f"/v1/spaces/{space}/end", headers=me.auth))
        expect(listener.locator("#space-badge")).to_have_text("Ended")
        expect(stage.locator(".is-speaking")).to_have_count(0)

        # A new password: this tab keeps working with the fresh token, the old one is out.
        page.goto("/settings")
        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_label("New password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Change password").click()
        expect(page.locator("#toasts")).to_contain_text("Password changed")
        with httpx.Client(base_url=node.url, timeout=20) as c:
            assert error_of(c.get("/v1/account", headers=me.auth), 401)["code"] == "signed_out"
        page.reload()
        expect(page.get_by_label("Bio")).to_have_value("Nanoseconds, in hand.")

        # Deleting the account: a wrong password first, then the right one.
        watch.expect(r"/v1/account/delete$", r"status of 422")
        watch.expect(r"/v1/accounts/\w+$", r"status of 404")
        page.get_by_label("Your password, to confirm").fill("not my password at all")
        page.get_by_role("button", name="Delete my account").click()
        expect(page.locator("#settings-delete-error")).to_contain_text("wrong")
        page.get_by_label("Your password, to confirm").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Delete my account").click()
        page.wait_for_url(re.compile(r"/$"))
        expect(page.locator("#account-nav").get_by_role("link", name="Sign in")).to_be_visible()
        with httpx.Client(base_url=node.url, timeout=20) as c:
            assert error_of(c.get(f"/v1/accounts/{me.handle}"), 404)["code"] == "no_account"
        page.goto(f"/u/{me.handle}")
        expect(page.get_by_role("heading", name="No such account")).to_be_visible()
        assert_clean(watch, listener_watch)


def test_far_dates_carry_their_year(node: PnyxProcess, tmp_path: Path) -> None:
    with chromiums(node.url, tone_wav(tmp_path / "quiet.wav", HOST_HZ)) as (browser,):
        page, watch = browser.page("dates")
        page.goto("/")
        said = page.evaluate(
            """async () => {
              const ui = await import('/web/js/ui.js');
              const now = new Date('2026-03-01T12:00:00Z');
              const far = ui.formatWhen('2027-04-05T12:00:00Z', now);
              return [far, ui.formatWhen('2026-04-05T12:00:00Z', now)];
            }"""
        )
        assert "2027" in said[0], said
        assert "2026" not in said[1], said
        assert_clean(watch)
