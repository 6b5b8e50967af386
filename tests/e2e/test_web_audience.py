"""The host's view of the audience in Chromium: the signed-in listeners (listed as they
join, removed and invited from the list) and, when the space ends, how it went: the
figures and the chart of listeners over time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import Heartbeats, create_space, join, new_user, ok, state
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
        "presence_window_s": "30",  # only a removal takes a listener out this soon
        "analytics_flush_s": "0.5",
        "analytics_sample_s": "1",
    }
    with pnyx_serve(tmp_path_factory.mktemp("web-audience"), settings=settings) as n:
        yield n


def test_host_sees_the_audience_and_how_it_went(node: PnyxProcess, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=node.url, timeout=20) as c:
        hana = new_user(c, "hana")
        fans = [new_user(c, name) for name in ("ada", "bea", "cyd")]
        space = create_space(c, hana, title="Town hall")
        tickets = [join(c, space, fan) for fan in fans]
        with (
            Heartbeats(node.url, space, tickets, every_s=0.5),
            chromiums(node.url, tone_wav(tmp_path / "host.wav", 440)) as (browser,),
        ):
            wait_until(lambda: state(c, space)["listeners"] == 3, 15, "three listeners")
            for ticket, emoji in zip(tickets, ["👏", "👏", "🔥"], strict=True):
                path = f"/v1/spaces/{space}/reactions"
                ok(c.post(path, json={"emoji": emoji}, headers=ticket.auth), 202)

            host, watch = browser.page("host", voice_processing=False)
            sign_in(host, hana.handle, hana.token, f"/s/{space}")
            expect(host.locator("#mic-status")).to_have_text(
                re.compile("You're live"), timeout=20_000
            )
            panel = host.locator("#listeners-panel")
            expect(panel).to_be_visible()
            listed = host.locator("#listener-list .member-name")
            newest_first = [f"@{fan.handle}" for fan in reversed(fans)]
            expect(listed).to_have_text(newest_first)
            expect(host.locator("#listeners-note")).to_contain_text("3 signed-in listeners")
            screenshot(host, "host-listeners-desktop", DESKTOP)

            # Remove one from the list: gone from it, and from the count.
            ada, bea = fans[0], fans[1]
            host.get_by_role("button", name=f"@{ada.handle}: remove", exact=True).click()
            expect(listed).to_have_text([f"@{fans[2].handle}", f"@{bea.handle}"])
            wait_until(lambda: state(c, space)["listeners"] == 2, 5, "the count without ada")
            # Invite one to speak from the list: the invitation is pending.
            host.get_by_role("button", name=f"@{bea.handle}: invite to speak").click()
            expect(host.locator("#pending-invitations")).to_contain_text(f"@{bea.handle}")

            # The figures follow the count (the chart will show the drop).
            def last_point() -> int:
                path = f"/v1/spaces/{space}/analytics"
                timeline = ok(c.get(path, headers=hana.auth))["timeline"]
                return int(timeline[-1]["listeners"]) if timeline else -1

            wait_until(lambda: last_point() == 2, 10, "the timeline at two listeners")
            # End it: the host is shown how it went.
            host.get_by_role("button", name="End space").click()
            host.get_by_role("button", name="Yes, end the space").click()
            figures = host.locator("#analytics-panel")
            expect(figures).to_be_visible(timeout=20_000)
            expect(host.locator("#stat-peak dd")).to_have_text(re.compile(r"^3 at "))
            expect(host.locator("#stat-unique dd")).to_have_text("3")
            expect(host.locator("#stat-joins dd")).to_have_text("3")
            expect(host.locator("#reaction-totals")).to_have_text(re.compile("👏 2.*🔥 1"))
            expect(host.locator("#speaker-times")).to_contain_text(f"@{hana.handle}")
            chart = host.locator("svg.timeline-chart")
            expect(chart).to_have_attribute("aria-label", re.compile("at most 3"))
            assert host.locator("svg.timeline-chart polyline").count() == 1
            expect(panel).to_be_hidden()
            screenshot(host, "host-analytics-desktop", DESKTOP)

            # The past space's page (the replay page) shows the host the same figures.
            host.goto(f"/replay/{space}")
            expect(host.locator("#stat-unique dd")).to_have_text("3")
            assert_clean(watch)
