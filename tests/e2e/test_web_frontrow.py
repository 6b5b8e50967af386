"""The web player's front row in real Chromium, through a real nginx edge with nchan: a
host publishes a tone (aiortc); the page plays the push path (WebSocket, WebCodecs,
AudioWorklet); the edge is reloaded to refuse the front row, which closes the page's
socket for real: the page switches to LL-HLS; the edge lets it back, and the page
returns to the push path. The page's own output meter (an AudioWorklet on what it
plays) says the tone was heard throughout and the longest silence was at most 0.5 s."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from pnyx.edge import render
from pnyx.edge_frontrow import FrontRow
from tests.e2e.test_frontrow import require_nchan
from tests.support.api import create_space, new_user
from tests.support.browser import (
    assert_clean,
    chromiums,
    hearing,
    poll,
    require_browser,
    tone_present,
    tone_wav,
)
from tests.support.nginx import Edge, _children, nginx_edge
from tests.support.pnyx_server import pnyx_serve
from tests.support.poll import wait_until
from tests.support.procs import free_port, require_binary
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

HOST_HZ = 440
MAX_GAP_MS = 500.0


@contextmanager
def speaking(url: str, space: str, token: str) -> Iterator[None]:
    """An aiortc host publishing a tone from its own thread and event loop."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    done: asyncio.Future[None] | None = None
    failed: list[BaseException] = []

    async def run() -> None:
        nonlocal done
        done = loop.create_future()
        try:
            speaker = await publish(url, space, token, ToneTrack(HOST_HZ, 0.3))
        except BaseException as exc:
            failed.append(exc)
            ready.set()
            return
        ready.set()
        try:
            await done
        finally:
            await speaker.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(30), "the host did not publish within 30 s"
    if failed:
        raise failed[0]
    try:
        yield
    finally:
        loop.call_soon_threadsafe(lambda: done is not None and done.set_result(None))
        thread.join(15)
        loop.close()


def reload_edge(edge: Edge, frontrow: FrontRow) -> None:
    """Rewrite the edge's config with ``frontrow`` and reload nginx (nchan closes the
    sockets the old workers held)."""
    edge.spec = dataclasses.replace(edge.spec, frontrow=frontrow)
    edge.conf.write_text(render(edge.spec))
    before = _children(edge.proc.pid)
    done = edge.signal("reload")
    assert done.returncode == 0, done.stderr
    wait_until(lambda: _children(edge.proc.pid) - before, 20, "nginx workers with the new config")


def front_row(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("pnyx.space.frontRow"))


def hears(page: Any) -> bool:
    return tone_present(hearing(page, [HOST_HZ]), HOST_HZ)


def test_the_player_plays_the_front_row_falls_back_to_ll_hls_and_returns(
    tmp_path: Path,
) -> None:
    require_browser()
    require_nchan()
    require_binary("nginx", "/usr/sbin")
    edge_port = free_port()
    settings = {"frontrow_publish_urls": f"http://127.0.0.1:{edge_port}/frontrow/pub/"}
    with (
        pnyx_serve(tmp_path / "node", settings=settings) as node,
        nginx_edge([node.url.removeprefix("http://")], frontrow=FrontRow(), port=edge_port) as edge,
    ):
        with httpx.Client(base_url=node.url, timeout=20) as c:
            host = new_user(c, "fr_web")
            space = create_space(c, host)
        with (
            speaking(node.url, space, host.token),
            chromiums(edge.url, tone_wav(tmp_path / "mic.wav", 1000)) as (browser,),
        ):
            page, watch = browser.page("listener")
            # the refused reconnections while the edge drains the front row
            watch.expect(r".*", r"WebSocket connection to .*/frontrow/")
            page.goto(f"/s/{space}")
            page.get_by_role("button", name="Play the space").click()

            poll(lambda: front_row(page)["path"] == "frontrow", timeout=30, what="the push path")
            poll(lambda: hears(page), timeout=10, what="the tone through the push path")
            button = page.locator("#frontrow-button")
            assert button.is_visible() and button.get_attribute("aria-pressed") == "true"
            push = front_row(page)["push"]
            assert push["state"] == "playing" and push["messages"] > 0, push
            page.evaluate("pnyx.space.resetMeter()")
            poll(
                lambda: front_row(page)["meter"]["heardMs"] > 2000,
                timeout=10,
                what="two seconds of the push path",
            )

            # -- the edge refuses the front row: the socket is closed, LL-HLS takes over
            reload_edge(edge, FrontRow(listeners=False))
            poll(lambda: front_row(page)["path"] == "hls", timeout=10, what="the LL-HLS path")
            poll(lambda: hears(page), timeout=10, what="the tone through LL-HLS")
            heard_before = front_row(page)["meter"]["heardMs"]
            poll(
                lambda: front_row(page)["meter"]["heardMs"] > heard_before + 3000,
                timeout=15,
                what="three seconds of LL-HLS",
            )
            assert front_row(page)["path"] == "hls"  # refused: it stayed on LL-HLS

            # -- the edge lets it back: the page returns to the push path by itself
            reload_edge(edge, FrontRow())
            poll(lambda: front_row(page)["path"] == "frontrow", timeout=30, what="the push again")
            poll(lambda: hears(page), timeout=10, what="the tone through the push path again")
            heard_before = front_row(page)["meter"]["heardMs"]
            poll(
                lambda: front_row(page)["meter"]["heardMs"] > heard_before + 2000,
                timeout=10,
                what="two more seconds of the push path",
            )
            state = front_row(page)
            switches = state["switches"]
            assert switches[-3:] == ["frontrow", "hls", "frontrow"], switches
            assert state["meter"]["longestGapMs"] <= MAX_GAP_MS, state
            assert abs(state["meter"]["freqHz"] - HOST_HZ) < 40, json.dumps(state)
            # -- the listener turns it off: LL-HLS only, remembered, without a gap either
            page.evaluate("pnyx.space.resetMeter()")
            button.click()
            poll(lambda: front_row(page)["path"] == "hls", timeout=15, what="LL-HLS on request")
            assert button.get_attribute("aria-pressed") == "false"
            assert front_row(page)["url"] is None
            assert page.evaluate("localStorage.getItem('pnyx.frontrow')") == "off"
            poll(lambda: hears(page), timeout=10, what="the tone through LL-HLS, asked for")
            off = front_row(page)["meter"]
            assert off["longestGapMs"] <= MAX_GAP_MS, off
            assert_clean(watch)
            print(json.dumps(state))
