"""Publishing through any node, never to a dead one, and speakers who come back by
themselves (issue #11). Real ``pnyx serve`` nodes sharing a real Redis and PostgreSQL, a
real nginx edge, Chromium as the speaker (a fake microphone playing a tone) and an LL-HLS
listener decoding what the audience hears.

* Through the edge, with only the API node behind it: every publish of the web client
  reaches a node that does not run the stage and is relayed; the audience hears it.
* A SIGKILLed lease holder: a WHIP client publishing to the survivor gets a 201 from it
  within a few seconds (a 503 with Retry-After at worst), never a 307, never the dead
  node.
* The web client behind the edge, its stage node SIGKILLed: it publishes again by itself
  and the audience hears it again, with no user action. The time is printed.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_audio import HOST_HZ, Background, heard_by_listener, hears
from tests.e2e.test_takeover import LEASES, last_part, lease, media_spaces, node_id, playlist
from tests.support import tones
from tests.support.api import User, create_space, new_user
from tests.support.browser import (
    Watch,
    assert_clean,
    chromiums,
    poll,
    require_browser,
    sign_in,
    tone_wav,
)
from tests.support.hls import HlsListener, decode_fmp4
from tests.support.nginx import nginx_edge
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import eventually, wait_until
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

PUBLISH_BOUND_S = 4.0  # SIGKILL of the stage node → 201 from the survivor
COMEBACK_BOUND_S = 10.0  # SIGKILL of the stage node → the web speaker heard again
TONE_HZ = 440.0
SETTLE = 2048  # samples skipped after a fresh AAC decoder start


class ListenerThread:
    """An :class:`HlsListener` following a space in its own thread and event loop (the
    browser tests drive Playwright synchronously)."""

    def __init__(self, base_url: str, space: str) -> None:
        self.listener = HlsListener(base_url, space)
        self.failed: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="hls-listener", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await self.listener.start(within=30)
            await self.listener.follow()
        except Exception as exc:
            self.failed = exc
        finally:
            await self.listener.aclose()

    def __enter__(self) -> ListenerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.listener.stop)
        self._thread.join(timeout=30)

    def first_heard(self, freq: float, after: tuple[int, int] = (-1, -1)) -> float | None:
        """When the first part after position ``after`` (msn, index) carrying ``freq``
        arrived (``time.time()``), or None."""
        if self.failed is not None:
            raise AssertionError(f"the listener failed: {self.failed!r}")
        init = self.listener.init
        for part in list(self.listener.parts):
            if init is None or (part.msn, part.index) <= after:
                continue
            samples = decode_fmp4(init + part.data).samples[SETTLE:]
            if freq in tones.dominant_tones(samples, tones.RATE, [freq]):
                return part.arrived
        return None


def live_status(page: Any) -> str:
    return str(page.evaluate("pnyx.space.micStatus"))


def tolerate_a_dying_node(watch: Watch) -> None:
    """What Chromium logs while an upstream dies under the edge: a request cut mid-way
    (502) and the stage socket's close. Anything else (a JavaScript error) still fails."""
    watch.expect(r".*", r"status of 50[234]")
    watch.expect(r".*", r"WebSocket connection to .* failed")


def host_page_live(browser: Any, user: User, space: str) -> tuple[Any, Watch]:
    from playwright.sync_api import expect

    page, watch = browser.page("host", voice_processing=False)
    sign_in(page, user.handle, user.token, f"/s/{space}")
    expect(page.locator("#mic-status")).to_have_text(re.compile("You're live"), timeout=30_000)
    return page, watch


# -- (b) the web client through an edge in front of the API node only --------------------
def test_the_web_client_publishes_through_an_edge_to_a_node_without_the_stage(
    tmp_path: Path, redis_clean_url: str, pg_database_url: str
) -> None:
    require_browser()
    shared = {"database": pg_database_url, "redis": redis_clean_url}
    with (
        pnyx_serve(tmp_path / "stage", settings={"role": "stage"}, **shared) as stage_node,
        pnyx_serve(tmp_path / "api", settings={"role": "api"}, **shared) as api_node,
        nginx_edge([api_node.url.removeprefix("http://")]) as edge,
    ):
        with httpx.Client(base_url=edge.url, timeout=20) as c:
            host = new_user(c, "host")
            space = create_space(c, host, title="Through the edge")
        with chromiums(edge.url, tone_wav(tmp_path / "tone.wav", TONE_HZ)) as (browser,):
            page, watch = host_page_live(browser, host, space)
            # The session's URL is on the page's own origin (the edge): no other origin.
            resource = page.evaluate("pnyx.space.publishResource")
            assert resource.startswith(f"{edge.url}/v1/spaces/{space}/publish/"), resource
            assert media_spaces(stage_node) == 1 and media_spaces(api_node) == 0
            with ListenerThread(edge.url, space) as listener:
                started = time.time()
                heard = poll(
                    lambda: listener.first_heard(TONE_HZ),
                    timeout=30,
                    what="the web speaker's tone at a listener through the edge",
                )
                print(f"through the edge: heard {heard - started:.2f}s after listening")
            # Publish again (what the client does after any loss): relayed each time.
            for _ in range(2):
                page.evaluate("pnyx.space.publisher.reconnect(true)")
                previous = resource
                poll(
                    lambda p=previous: page.evaluate("pnyx.space.publishResource") not in (None, p)
                )
                resource = page.evaluate("pnyx.space.publishResource")
                assert resource.startswith(f"{edge.url}/v1/spaces/{space}/publish/")
                poll(lambda: live_status(page) == "live", what="live again")
            assert_clean(watch)


# -- (c) never a dead node -------------------------------------------------------------
@contextmanager
def two_stage_nodes(tmp_path: Path, redis_url: str, database: str) -> Iterator[list[PnyxProcess]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                pnyx_serve(tmp_path / name, database=database, redis=redis_url, settings=LEASES)
            )
            for name in ("a", "b")
        ]


def holder_of(nodes: list[PnyxProcess], redis_url: str, space: str) -> PnyxProcess:
    wait_until(lambda: lease(redis_url, space) is not None, 20, "a stage lease")
    held = lease(redis_url, space)
    assert held is not None
    (holder,) = [n for n in nodes if node_id(n) == held[0]]
    wait_until(lambda: media_spaces(holder) == 1, 20, "the holder to run the media")
    return holder


async def test_a_publish_after_the_stage_node_dies_reaches_the_survivor(
    tmp_path: Path, redis_clean_url: str, pg_database_url: str
) -> None:
    with two_stage_nodes(tmp_path, redis_clean_url, pg_database_url) as nodes:
        with nodes[0].client() as c:
            host = new_user(c, "host")
            space = create_space(c, host)
        holder = holder_of(nodes, redis_clean_url, space)
        (survivor,) = [n for n in nodes if n is not holder]
        # Before: a publish to the survivor is relayed to the holder (201 from the survivor).
        me = await publish(survivor.url, space, host.token, ToneTrack(HOST_HZ))
        assert me.redirects == [] and me.resource is not None
        assert me.resource.startswith(f"{survivor.url}/v1/spaces/{space}/publish/")
        await me.connected()
        await me.close()
        assert me.delete_status == 204  # the DELETE is relayed as well

        holder.proc.kill()  # SIGKILL: its lease stays in Redis until it lapses
        killed = time.monotonic()
        holder.proc.wait(timeout=10)
        me = await publish(survivor.url, space, host.token, ToneTrack(HOST_HZ), retry_for=10)
        took = time.monotonic() - killed
        try:
            print(f"publish after SIGKILL: 201 from the survivor {took:.2f}s later, "
                  f"after {me.retries} answer(s) 503")  # fmt: skip
            assert me.redirects == [], "a 307"
            assert me.resource is not None
            assert me.resource.startswith(f"{survivor.url}/v1/spaces/{space}/publish/")
            assert took <= PUBLISH_BOUND_S, f"201 only {took:.2f}s after the kill"
            await me.connected()
            assert media_spaces(survivor) == 1
            started = time.time()
            async with Background(HlsListener(survivor.url, space)) as listener:
                await eventually(
                    hears(lambda: heard_by_listener(listener, started), {HOST_HZ}),
                    within=15,
                    what="the speaker on the survivor, at a listener",
                    interval=0.2,
                )
        finally:
            await me.close()
        assert me.delete_status == 204
        refused = "did not answer a relayed publish" in survivor.output()
        print(f"the survivor tried the dead node once first: {refused}")


# -- (d) the web speaker comes back by itself ------------------------------------------
def test_the_web_speaker_comes_back_by_itself_after_its_stage_node_dies(
    tmp_path: Path, redis_clean_url: str, pg_database_url: str
) -> None:
    require_browser()
    with (
        two_stage_nodes(tmp_path, redis_clean_url, pg_database_url) as nodes,
        nginx_edge([n.url.removeprefix("http://") for n in nodes]) as edge,
    ):
        with httpx.Client(base_url=edge.url, timeout=20) as c:
            host = new_user(c, "host")
            space = create_space(c, host, title="Comes back")
        holder = holder_of(nodes, redis_clean_url, space)
        (survivor,) = [n for n in nodes if n is not holder]
        with chromiums(edge.url, tone_wav(tmp_path / "tone.wav", TONE_HZ)) as (browser,):
            page, watch = host_page_live(browser, host, space)
            tolerate_a_dying_node(watch)
            before_resource = page.evaluate("pnyx.space.publishResource")
            with ListenerThread(survivor.url, space) as warmup:
                poll(lambda: warmup.first_heard(TONE_HZ), timeout=30, what="the tone, before")

            holder.proc.kill()
            killed_wall, killed = time.time(), time.monotonic()
            holder.proc.wait(timeout=10)
            last_dead = last_part(playlist(survivor, space))  # all the dead node wrote
            with ListenerThread(survivor.url, space) as listener:
                poll(
                    lambda: (
                        live_status(page) != "live"
                        or page.evaluate("pnyx.space.publishResource") != before_resource
                    ),
                    timeout=COMEBACK_BOUND_S,
                    interval=0.05,
                    what="the web client to notice",
                )
                noticed = time.monotonic() - killed
                poll(
                    lambda: (
                        live_status(page) == "live"
                        and page.evaluate("pnyx.space.publishResource") != before_resource
                    ),
                    timeout=COMEBACK_BOUND_S,
                    interval=0.05,
                    what="the web client live again",
                )
                live_again = time.monotonic() - killed
                heard = poll(
                    lambda: listener.first_heard(TONE_HZ, after=last_dead),
                    timeout=COMEBACK_BOUND_S + 10,
                    what="the tone again, at a listener",
                )
            comeback = heard - killed_wall
            print(
                f"web speaker after SIGKILL of its stage node: noticed {noticed:.2f}s, "
                f"live again {live_again:.2f}s, tone heard again {comeback:.2f}s"
            )
            assert comeback <= COMEBACK_BOUND_S, f"heard again only {comeback:.2f}s after"
            assert media_spaces(survivor) == 1
            assert_clean(watch)
