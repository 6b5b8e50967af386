"""Webhooks in the web client (Chromium): a host adds an endpoint in the settings page,
copies its signing secret (shown once, gone after a reload), sends a test event that a
receiver this test runs gets correctly signed, sees the delivery in the page, and
deletes the endpoint; bad URLs are refused with a message, and the section fits a phone's
width. Screenshot: docs/screenshots/webhooks-desktop.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import new_user, ok
from tests.support.browser import (
    DESKTOP,
    PHONE,
    assert_clean,
    chromiums,
    poll,
    require_browser,
    screenshot,
    sign_in,
    tone_wav,
)
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.procs import free_port
from tests.support.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver(free_port()) as r:
        yield r


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    settings = {"webhook_allow_private": "true", "webhook_poll_s": "0.2"}  # receiver: loopback
    with pnyx_serve(tmp_path_factory.mktemp("web-webhooks"), settings=settings) as n:
        yield n


def subscribable(document: dict[str, Any]) -> list[str]:
    """The event names the API's document allows in ``POST /v1/webhooks``."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            found.extend(node.get("enum", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document["components"]["schemas"]["NewWebhook"]["properties"]["events"])
    return found


def test_add_test_and_delete_a_webhook_in_settings(
    node: PnyxProcess, receiver: Receiver, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=node.url, timeout=20) as c:
        me = new_user(c, "hookhost")
        events = subscribable(ok(c.get("/openapi.json")))
    path = f"/hooks/{me.handle}"

    with chromiums(node.url, tone_wav(tmp_path / "quiet.wav", 440)) as (browser,):
        page, watch = browser.page("host")
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        sign_in(page, me.handle, me.token, "/settings")
        section = page.locator("#webhooks")
        expect(section.get_by_role("heading", name="Webhooks")).to_be_visible()
        expect(page.locator("#webhooks-empty")).to_have_text("No endpoints yet.")
        # The page offers exactly the events the API takes, all ticked.
        boxes = section.locator("input[name=webhook-event]")
        assert boxes.evaluate_all("(els) => els.map((e) => e.value)") == events
        assert all(boxes.evaluate_all("(els) => els.map((e) => e.checked)"))

        # Refused: not a URL (in the page), then a host that does not resolve (the server).
        url = page.get_by_label("Endpoint URL")
        url.fill("ftp://example.com/x")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#webhook-form-error")).to_contain_text("starting with https://")
        watch.expect(r"/v1/webhooks$", r"status of 422")
        url.fill("http://no-such-host.invalid/x")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#webhook-form-error")).to_contain_text("resolve")

        # Added, by keyboard: the URL, one event left out, a description, Enter.
        url.fill(receiver.url + path)
        section.get_by_label("A recording is ready").uncheck()
        page.get_by_label("Description (optional)").fill("Chat bot")
        page.get_by_label("Description (optional)").press("Enter")
        secret_box = page.locator("#webhook-secret-value")
        expect(secret_box).to_be_visible()
        expect(secret_box).to_be_focused()
        secret = secret_box.input_value()
        assert secret.startswith("whsec_")
        receiver.secrets[path] = secret
        page.get_by_role("button", name="Copy").click()
        expect(page.locator("#toasts")).to_contain_text("Secret copied")
        assert page.evaluate("() => navigator.clipboard.readText()") == secret
        with httpx.Client(base_url=node.url, timeout=20) as c:
            (made,) = ok(c.get("/v1/webhooks", headers=me.auth))["webhooks"]
        assert made["url"] == receiver.url + path and made["description"] == "Chat bot"
        assert made["events"] == [e for e in events if e != "recording.ready"]
        item = page.locator(f"li.webhook[data-id='{made['id']}']")
        expect(item).to_contain_text(receiver.url + path)
        expect(item).to_contain_text(f"{len(events) - 1} events")

        # The secret is shown once: gone when put away, and nowhere after a reload.
        page.get_by_role("button", name="I have saved it").click()
        expect(page.locator("#webhook-secret")).to_be_hidden()
        assert secret_box.input_value() == ""
        page.reload()
        expect(item).to_be_visible()
        assert secret not in page.content()

        # A test event: the receiver gets it signed with that secret; the page shows it.
        send = item.get_by_role("button", name="Send test")
        send.focus()
        page.keyboard.press("Enter")
        got = poll(lambda: receiver.delivered(path), what="the test event at the receiver")
        (attempt,) = got
        assert attempt.signature_ok is True
        assert attempt.payload["type"] == "webhook.test"
        assert attempt.payload["data"] == {"endpoint": made["id"]}
        deliveries = item.locator(".delivery-list")
        expect(item.get_by_role("button", name="Deliveries")).to_have_attribute(
            "aria-expanded", "true"
        )
        expect(deliveries.locator(".delivery")).to_have_count(1)
        expect(deliveries).to_contain_text("webhook.test")
        expect(deliveries.locator(".delivery-state")).to_have_text("Delivered")
        expect(deliveries).to_contain_text("1 attempt · HTTP 204")
        page.evaluate("window.scrollTo(0, 0)")  # the sticky bar at the top, where it belongs
        screenshot(page, "webhooks-desktop", DESKTOP)

        # A phone's width: nothing wider than the screen.
        page.set_viewport_size(PHONE)
        wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"the settings page is {wide} px wider than a phone's screen"
        page.set_viewport_size(DESKTOP)

        # Deleted, after a confirmation (and "Keep it" first keeps it).
        item.get_by_role("button", name="Delete", exact=True).click()
        item.get_by_role("button", name="Keep it").click()
        expect(item).to_be_visible()
        item.get_by_role("button", name="Delete", exact=True).click()
        item.get_by_role("button", name="Delete endpoint").click()
        expect(item).to_have_count(0)
        expect(page.locator("#webhooks-empty")).to_be_visible()
        with httpx.Client(base_url=node.url, timeout=20) as c:
            assert ok(c.get("/v1/webhooks", headers=me.auth))["webhooks"] == []
        assert_clean(watch)
