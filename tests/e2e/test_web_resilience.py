"""The web client when things go wrong: the server asks it to come back later (503 and
429 with Retry-After), the network drops for a moment, a speaker's connection is cut.
The audio keeps playing through refusals, the player picks up again by itself after a
blip, and a cut speaker publishes again by itself — without a reload."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import Heartbeats, User, create_space, join, new_user, wait_state
from tests.support.browser import (
    Browser,
    Watch,
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
FREQS = [HOST_HZ]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    # A small audience threshold, so that a handful of extra listeners moves the space
    # to standard latency.
    settings = {"low_latency_max_listeners": "4"}
    with pnyx_serve(tmp_path_factory.mktemp("web-resilience"), settings=settings) as n:
        yield n


def hears_host(page: Any) -> bool:
    return tone_present(hearing(page, FREQS), HOST_HZ)


def audio_time(page: Any) -> float:
    return float(page.evaluate("pnyx.space.currentTime"))


@dataclass
class LiveHost:
    browser: Browser
    user: User
    space: str
    page: Any
    watch: Watch


@contextmanager
def live_host(node: PnyxProcess, tmp_path: Path, handle: str, title: str) -> Iterator[LiveHost]:
    """A browser whose host page is live in a new space (speaking a tone), and the space."""
    from playwright.sync_api import expect

    with httpx.Client(base_url=node.url, timeout=20) as c:
        user = new_user(c, handle)
        space = create_space(c, user, title=title)

    with chromiums(node.url, tone_wav(tmp_path / "host.wav", HOST_HZ)) as (browser,):
        page, watch = browser.page("host")
        sign_in(page, user.handle, user.token, f"/s/{space}")
        expect(page.locator("#mic-status")).to_have_text(re.compile("You're live"), timeout=20_000)
        yield LiveHost(browser, user, space, page, watch)


def test_audio_plays_on_through_refusals_blips_and_drops(node: PnyxProcess, tmp_path: Path) -> None:
    from playwright.sync_api import Route, expect

    with live_host(node, tmp_path, "hana", "Stormy weather") as h:
        browser, hana, space, host, host_watch = h.browser, h.user, h.space, h.page, h.watch

        # -- an anonymous listener whose joins are refused twice: "retry later" -------------
        listener, watch = browser.page("listener")
        refusals = {"left": 2, "at": []}

        def busy_join(route: Route) -> None:
            if refusals["left"] > 0:
                refusals["left"] -= 1
                refusals["at"].append(time.monotonic())
                body = {"error": {"kind": "unavailable", "code": "overloaded", "message": "busy"}}
                route.fulfill(
                    status=503,
                    headers={"Retry-After": "2", "Content-Type": "application/json"},
                    body=json.dumps(body),
                )
            else:
                refusals["at"].append(time.monotonic())
                route.continue_()

        listener.route(re.compile(r"/v1/spaces/[^/]+/join(\?.*)?$"), busy_join)
        watch.expect(r"/join(\?|$)", r"status of 503")
        listener.goto(f"/s/{space}")
        expect(listener.locator("#listener-notice")).to_contain_text("The server is busy")
        listener.get_by_role("button", name="Play the space").click()
        poll(lambda: hears_host(listener), timeout=30, what="the space while joins are refused")
        expect(listener.get_by_role("button", name="React clap")).to_be_disabled()
        # Joined at last: reactions open; each retry waited at least Retry-After.
        expect(listener.get_by_role("button", name="React clap")).to_be_enabled(timeout=20_000)
        expect(listener.locator("#listener-notice")).to_be_hidden()
        gaps = [b - a for a, b in zip(refusals["at"], refusals["at"][1:], strict=False)]
        assert len(gaps) == 2 and all(g >= 1.9 for g in gaps), gaps

        # -- the audience grows past the threshold: a player that starts now uses standard
        # latency (one already playing keeps its mode), and low latency again once the
        # crowd has gone -------------------------------------------------------------------
        assert listener.evaluate("pnyx.space.playerLowLatency") is True
        play = listener.get_by_role("button", name="Play the space")
        stop = listener.get_by_role("button", name="Stop listening")
        with httpx.Client(base_url=node.url, timeout=20) as c:
            crowd = [join(c, space) for _ in range(6)]
            with Heartbeats(node.url, space, crowd, every_s=0.5):
                wait_state(c, space, lambda s: s["latency"] == "standard")
                poll(lambda: hears_host(listener), what="the host while the crowd grows")
                assert listener.evaluate("pnyx.space.playerLowLatency") is True
                stop.click()
                play.click()
                poll(
                    lambda: listener.evaluate("pnyx.space.playerLowLatency") is False,
                    what="a new player at standard latency",
                )
                poll(lambda: hears_host(listener), timeout=30, what="the host at standard latency")
            wait_state(c, space, lambda s: s["latency"] == "low", timeout=30)
        stop.click()
        play.click()
        poll(
            lambda: listener.evaluate("pnyx.space.playerLowLatency") is True,
            what="a new player at low latency",
        )
        poll(lambda: hears_host(listener), timeout=30, what="the host at low latency again")

        # -- too many reactions: 429, a clear word, and the buttons rest a moment ------------
        watch.expect(r"/reactions$", r"status of 429")
        clap = listener.get_by_role("button", name="React clap")
        rested = False
        for _ in range(40):
            clap.click(force=True)  # as fast as a finger: no waiting for it to be enabled
            if clap.is_disabled():
                rested = True
                break
        assert rested, "the reaction buttons never paused after a 429"
        expect(listener.locator("#toasts")).to_contain_text("too many reactions")
        expect(clap).to_be_enabled(timeout=10_000)
        assert hears_host(listener)
        expect(host.locator("#reaction-counts")).to_contain_text("👏")

        # -- the network drops for a moment: the player notices, then carries on -------------
        watch.expect(r".", r"ERR_INTERNET_DISCONNECTED")
        listener.context.set_offline(True)
        poll(
            lambda: listener.evaluate("pnyx.space.playerStatus") in ("buffering", "reconnecting"),
            what="the player to notice the network is gone",
        )
        listener.context.set_offline(False)
        poll(
            lambda: listener.evaluate("pnyx.space.playerStatus") == "playing",
            timeout=30,
            what="the player to pick up again by itself",
        )
        before = audio_time(listener)
        poll(lambda: audio_time(listener) > before + 2, what="the audio to move on")
        poll(lambda: hears_host(listener), what="the host after the blip")

        # -- the speaker turns voice processing off: the same session, a new track ---------
        first = host.evaluate("pnyx.space.publishResource")
        assert host.evaluate("pnyx.space.micProcessing") is True
        host.get_by_text("Microphone settings").click()
        host.get_by_label("Echo cancellation and noise suppression").uncheck()
        poll(lambda: host.evaluate("pnyx.space.micProcessing") is False, what="a raw microphone")
        assert host.evaluate("pnyx.space.publishResource") == first
        poll(lambda: hears_host(listener), what="the host's raw microphone")

        # -- the speaker's connection is cut: it publishes again by itself -------------------
        httpx.delete(first, headers=hana.auth, timeout=10).raise_for_status()  # server hangs up
        # The page notices (no mix-minus for 1.2 s) and publishes again by itself: a new
        # session, live. (Its "reconnecting" can last less than a poll: not waited for.)
        poll(
            lambda: (
                host.evaluate("pnyx.space.micStatus") == "live"
                and host.evaluate("pnyx.space.publishResource") not in (None, first)
            ),
            timeout=30,
            what="the speaker's page to notice the drop and publish again",
        )
        poll(lambda: hears_host(listener), what="the listener to hear the host again")

        assert_clean(host_watch, watch)


def test_off_and_on_stage_while_a_publish_is_in_flight(node: PnyxProcess, tmp_path: Path) -> None:
    """A speaker's page that leaves the stage and comes back (a host's quick demote and
    re-invite, or an older state answer) while its publish request is still out publishes
    again: the loop of the first start must not stand in for the second."""
    from playwright.sync_api import Route, expect

    with live_host(node, tmp_path, "hana2", "Flip flop") as h:
        host, host_watch = h.page, h.watch
        mic = host.locator("#mic-status")

        held: list[Route] = []

        def hold_first(route: Route) -> None:
            if held:
                route.continue_()
            else:
                held.append(route)  # never answered: the page gives up on it

        host.route(re.compile(r"/v1/spaces/[^/]+/publish$"), hold_first)
        host.evaluate("pnyx.space.publisher.restart()")

        def holding() -> bool:
            host.evaluate("0")  # a Playwright call: it delivers the route to hold_first
            return bool(held)

        poll(holding, timeout=10, what="the publish request to be held")
        # Off the stage and back while that request is out (what the page does when its
        # mode goes stage -> audience -> stage).
        host.evaluate(
            "(async () => { const p = pnyx.space.publisher; p.stop(); await p.start(); })()"
        )
        expect(mic).to_have_text(re.compile("You're live"), timeout=20_000)
        assert host.evaluate("pnyx.space.connectionState") == "connected"
        assert_clean(host_watch)
