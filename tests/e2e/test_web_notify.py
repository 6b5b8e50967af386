"""Notifications in the web client, in Chromium against a real ``pnyx serve``: a follower's
page shows a toast, the bell's unread count and the "following: live now" row when the
followed host goes live; opening the bell marks them read. "Remind me" on a scheduled
space by someone who does not follow its host; the host reschedules it from the page,
and the reminded account's bell shows the new time, then "starting soon"."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.api import create_space, new_user, ok
from tests.support.browser import (
    DESKTOP,
    assert_clean,
    chromiums,
    require_browser,
    screenshot,
    sign_in,
    tone_wav,
)
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    settings = {
        "notify_poll_s": "2",
        "remind_before_s": "3600",
        "max_live_spaces_per_account": "5",
    }
    with pnyx_serve(tmp_path_factory.mktemp("web-notify"), settings=settings) as server:
        yield server


def test_a_follower_sees_the_toast_and_the_bell_when_the_host_goes_live(
    node: PnyxProcess, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with node.client() as c:
        host, fan = new_user(c, "host"), new_user(c, "fan")
        ok(c.post(f"/v1/accounts/{host.handle}/follow", headers=fan.auth), 204)
    with chromiums(node.url, tone_wav(tmp_path / "t.wav", 440)) as (browser,):
        page, watch = browser.page("fan")
        sign_in(page, fan.handle, fan.token, "/")
        expect(page.locator("#bell")).to_be_visible()
        expect(page.locator("#bell-count")).to_be_hidden()

        with node.client() as c:
            space = create_space(c, host, title="Friday night jazz")

        toast = page.locator(".toast-live")
        expect(toast).to_contain_text(f"@{host.handle} is live: Friday night jazz")
        expect(toast.get_by_role("link")).to_have_attribute("href", f"/s/{space}")
        expect(page.locator("#bell-count")).to_have_text("1")
        expect(page.locator("#bell")).to_have_attribute("aria-label", "Notifications, 1 unread")
        expect(page.locator("#following-live")).to_contain_text("Friday night jazz", timeout=20_000)

        page.locator("#bell").click()
        panel = page.locator("#bell-panel")
        expect(panel).to_be_visible()
        item = panel.locator('.bell-item[data-kind="space_live"]')
        expect(item).to_contain_text(f"@{host.handle} is live: Friday night jazz")
        expect(page.locator("#bell-count")).to_be_hidden()
        with node.client() as c:
            assert ok(c.get("/v1/notifications", headers=fan.auth))["unread"] == 0
        screenshot(page, "notifications-desktop", DESKTOP)

        item.get_by_role("link").click()
        page.wait_for_url(re.compile(rf"/s/{space}$"))
        expect(page.locator("#space-title")).to_have_text("Friday night jazz")
        assert_clean(watch)


def test_remind_me_then_the_host_reschedules(node: PnyxProcess, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with node.client() as c:
        host, someone = new_user(c, "host"), new_user(c, "someone")
        start = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
        space = create_space(c, host, title="Book club", scheduled_start=start)
    with chromiums(node.url, tone_wav(tmp_path / "t.wav", 440)) as (browser,):
        page, watch = browser.page("someone")
        sign_in(page, someone.handle, someone.token, f"/s/{space}")
        remind = page.locator("#remind-me")
        expect(remind).to_have_text("🔔 Remind me")
        remind.click()
        expect(remind).to_have_attribute("aria-pressed", "true")
        expect(remind).to_have_text("🔔 Reminder set")
        with node.client() as c:
            assert ok(c.get(f"/v1/spaces/{space}/reminder", headers=someone.auth))["reminded"]

        # The host moves it to within the hour from the page, and renames it.
        host_page, host_watch = browser.page("host")
        sign_in(host_page, host.handle, host.token, f"/s/{space}")
        form = host_page.locator("#edit-form")
        expect(form).to_be_visible()
        expect(host_page.locator("#remind-panel")).to_be_hidden()
        soon = datetime.now() + timedelta(minutes=30)  # the browser's zone is the machine's
        host_page.locator("#edit-title").fill("Book club, earlier")
        host_page.locator("#edit-start").fill(soon.strftime("%Y-%m-%dT%H:%M"))
        form.get_by_role("button", name="Save changes").click()
        expect(host_page.locator("#space-title")).to_have_text("Book club, earlier")

        # The reminded account's bell: the new time, then "starting soon".
        bell = page.locator("#bell")
        expect(page.locator("#bell-count")).to_have_text(re.compile(r"[12]"), timeout=20_000)
        bell.click()
        panel = page.locator("#bell-panel")
        expect(panel.locator('[data-kind="space_rescheduled"]')).to_contain_text(
            "Book club, earlier"
        )
        bell.click()
        bell.click()  # reopen: the list is the latest poll's
        expect(panel.locator('[data-kind="space_soon"]')).to_contain_text(
            "Starting soon: Book club, earlier", timeout=30_000
        )

        # Cancelled from the page with a reason.
        host_page.locator("#end-space").click()
        host_page.locator("#end-reason").fill("double-booked")
        host_page.get_by_role("button", name="Yes, cancel it").click()
        expect(page.locator('[data-kind="space_cancelled"]')).to_contain_text(
            "double-booked", timeout=20_000
        )
        assert_clean(watch, host_watch)


def test_the_service_worker_shows_a_pushed_notification(node: PnyxProcess, tmp_path: Path) -> None:
    """Chromium reaches no real push service here, so the message is handed to the
    registered service worker through the DevTools protocol, as the browser would after
    decrypting it; the worker must show it, titled for its kind."""
    with node.client() as c:
        fan = new_user(c, "fan")
    with chromiums(node.url, tone_wav(tmp_path / "t.wav", 440)) as (browser,):
        page, watch = browser.page("fan")
        page.context.grant_permissions(["notifications"])
        sign_in(page, fan.handle, fan.token, "/")
        page.evaluate("navigator.serviceWorker.register('/web/sw.js', { scope: '/web/' })")
        active = (
            "async () => Boolean((await navigator.serviceWorker.getRegistration('/web/'))?.active)"
        )
        wait_until(lambda: page.evaluate(active), 10, "the service worker active")
        cdp = page.context.new_cdp_session(page)
        registrations: list[dict[str, str]] = []
        cdp.on(
            "ServiceWorker.workerRegistrationUpdated",
            lambda e: registrations.extend(e["registrations"]),
        )
        cdp.send("ServiceWorker.enable")
        # Playwright hands over CDP events while it is called: wait through it.
        wait_until(
            lambda: page.wait_for_timeout(100) or registrations,
            10,
            "the service worker's registration",
        )
        message = {
            "kind": "space_live",
            "space": "abc123",
            "host": "jazzhost",
            "title": "Friday night jazz",
            "at": datetime.now(UTC).isoformat(),
            "detail": "",
        }
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": node.url,
                "registrationId": registrations[0]["registrationId"],
                "data": json.dumps(message),
            },
        )
        shown = "async () => (await (await navigator.serviceWorker.getRegistration('/web/'))"
        shown += ".getNotifications())"
        shown += ".map((n) => [n.title, n.body, n.data.url])"
        wait_until(lambda: page.evaluate(shown), 10, "a notification shown")
        assert page.evaluate(shown) == [["@jazzhost is live", "Friday night jazz", "/s/abc123"]]
        assert_clean(watch)
