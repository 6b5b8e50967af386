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
        "max_live_spaces_per_account": "3",  # a blocked listener tries the host's next space
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


def test_host_blocks_a_listener_from_the_list(node: PnyxProcess, tmp_path: Path) -> None:
    """Block (remove and block) from the list: the listener is out of the list and the
    count, their heartbeats are refused, and they cannot join again, neither this space
    nor another of the host's."""
    from playwright.sync_api import expect

    with httpx.Client(base_url=node.url, timeout=20) as c:
        hana = new_user(c, "hana")
        kim, lee = new_user(c, "kim"), new_user(c, "lee")
        space = create_space(c, hana, title="Blocking")
        tickets = [join(c, space, kim), join(c, space, lee)]
        with (
            Heartbeats(node.url, space, tickets, every_s=0.5) as beats,
            chromiums(node.url, tone_wav(tmp_path / "host.wav", 440)) as (browser,),
        ):
            wait_until(lambda: state(c, space)["listeners"] == 2, 15, "two listeners")
            host, watch = browser.page("host", voice_processing=False)
            sign_in(host, hana.handle, hana.token, f"/s/{space}")
            expect(host.locator("#mic-status")).to_have_text(
                re.compile("You're live"), timeout=20_000
            )
            listed = host.locator("#listener-list .member-name")
            expect(listed).to_have_text([f"@{lee.handle}", f"@{kim.handle}"])

            host.get_by_role("button", name=f"@{lee.handle}: remove and block", exact=True).click()
            expect(listed).to_have_text([f"@{kim.handle}"])
            wait_until(lambda: state(c, space)["listeners"] == 1, 5, "the count without lee")
            wait_until(
                lambda: tickets[1].listener_id in beats.refused, 5, "lee's heartbeats refused"
            )
            assert tickets[0].listener_id not in beats.refused

            # Out for good: this space refuses a new join, and so does the host's next one.
            again = c.post(f"/v1/spaces/{space}/join", headers=lee.auth)
            assert again.status_code == 403, again.text
            assert again.json()["error"]["code"] in {"removed", "blocked"}
            other = create_space(c, hana, title="Another day")
            refused = c.post(f"/v1/spaces/{other}/join", headers=lee.auth)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "blocked"
            ok(c.post(f"/v1/spaces/{other}/join", headers=kim.auth))  # others still may
            ok(c.post(f"/v1/spaces/{other}/end", headers=hana.auth))
            expect(listed).to_have_text([f"@{kim.handle}"])  # the list did not bring lee back
            assert_clean(watch)


def test_replay_page_reports_plays_and_downloads(node: PnyxProcess, tmp_path: Path) -> None:
    """The replay page tells the server when playback starts and when the download link is
    clicked (the replay itself may come from an edge's cache): each page's first play
    counts once, and the host's figures show it."""
    with httpx.Client(base_url=node.url, timeout=20) as c:
        hana = new_user(c, "hana")
        space = create_space(c, hana, title="Replayed", record=True)
        wait_until(
            lambda: c.get(f"/media/{space}/live.m3u8").text.count("#EXTINF") >= 2,
            20,
            "two recorded segments",
        )
        ok(c.post(f"/v1/spaces/{space}/end", headers=hana.auth))
        wait_until(
            lambda: c.get(f"/media/{space}/replay.m3u8").status_code == 200, 30, "the replay"
        )

        def replay() -> dict[str, int]:
            path = f"/v1/spaces/{space}/analytics"
            return dict(ok(c.get(path, headers=hana.auth))["replay"])

        with chromiums(node.url, tone_wav(tmp_path / "quiet.wav", 440)) as (browser,):
            guest, watch = browser.page("guest")
            for _ in range(2):  # two visits, each playing (and pausing and playing again)
                guest.goto(f"/replay/{space}")
                guest.get_by_role("button", name="Play the recording").click()
                wait_until(
                    lambda: guest.evaluate("window.pnyx.replay.playerStatus") == "playing",
                    20,
                    "the replay playing",
                )
                guest.evaluate("document.querySelector('audio').pause()")
                guest.evaluate("document.querySelector('audio').play()")
            wait_until(lambda: replay()["plays"] == 2, 10, "two plays counted")
            with guest.expect_download():
                guest.get_by_role("link", name="Download the recording (.m4a)").click()
            wait_until(lambda: replay() == {"plays": 2, "downloads": 1}, 10, "one download")
            assert_clean(watch)
