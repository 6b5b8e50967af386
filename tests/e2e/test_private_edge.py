"""A private space behind a real edge, both sides configured with the same link secret:
the node (``pnyx serve``) hands an invited listener signed links, the edge (nginx
``secure_link``, from ``pnyx edge-config``) checks them itself.

* the invited listener plays the space through the edge and hears the host's tone (200s
  for every playlist, init and part under the signed prefix);
* unsigned, tampered and expired reads of the same objects are refused by the edge
  (403/410) and the node sees none of them (its own request counters);
* 40 listeners holding 40 different valid links for the same part cost the node one
  request: the edge keys its cache without the prefix.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pnyx.services.links import sign
from tests.e2e.test_audio import (
    HOST_HZ,
    in_thread,
    wrap_up,
)
from tests.e2e.test_private import hears_the_host, private_space_with_a_guest
from tests.support.hls import HlsListener, SegmentEntry
from tests.support.nginx import Edge, nginx_edge
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import eventually
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

LINK_SECRET = "edge-and-node-share-this-link-secret-0123"
_COUNT = re.compile(
    r'^pnyx_http_requests_total\{method="GET",route="([^"]+)",status="\d+"\} (\S+)$'
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    settings = {"link_secret": LINK_SECRET}
    with pnyx_serve(Path(tmp_path_factory.mktemp("private-edge")), settings=settings) as n:
        yield n


@pytest.fixture(scope="module")
def edge(node: PnyxProcess) -> Iterator[Edge]:
    with nginx_edge([node.url.removeprefix("http://")], link_secret=LINK_SECRET) as e:
        yield e


async def settled_reads(node: PnyxProcess) -> dict[str, float]:
    """The node's read counts once they stop moving: a blocking playlist reload the edge
    forwarded for a listener who has since left is still answered by the node (the edge
    fills its cache with it), up to a part's duration later."""
    last: dict[str, float] = {}

    async def still() -> dict[str, float] | None:
        nonlocal last
        now = await asyncio.to_thread(reads_at_node, node)
        same, last = now == last, now
        return now if same else None

    return await eventually(still, 15, "the node's read counters to settle", interval=1.0)


def reads_at_node(node: PnyxProcess) -> dict[str, float]:
    """GETs the node answered so far, by route (its /metrics)."""
    text = httpx.get(f"{node.url}/metrics", timeout=10).text
    counts: dict[str, float] = {}
    for line in text.splitlines():
        m = _COUNT.match(line)
        if m and m.group(1) != "/metrics":
            counts[m.group(1)] = counts.get(m.group(1), 0) + float(m.group(2))
    return counts


async def test_a_private_space_through_the_edge(node: PnyxProcess, edge: Edge) -> None:
    with node.client() as c:
        space, host, media = await in_thread(lambda: private_space_with_a_guest(c))
    prefix = media["hls"].removesuffix(f"/media/{space}/live.m3u8")
    _, _, exp, sig = prefix.split("/")
    speaker = await publish(node.url, space, host.token, ToneTrack(HOST_HZ))
    async with httpx.AsyncClient(timeout=15.0) as client:
        try:
            await speaker.connected()
            listener = HlsListener.at(edge.url + media["hls"], client=client)
            part, init = await hears_the_host(listener, 15, "the host through the edge")

            async def completed_segments() -> tuple[SegmentEntry, ...]:
                return (await listener.playlist()).segments

            # The tone may be heard in the first segment, before any is complete.
            done = (await eventually(completed_segments, 15, "a completed segment"))[-1].msn
            objects = [
                f"/media/{space}/live.m3u8",
                f"/media/{space}/{init}",
                f"/media/{space}/{part.uri}",
                f"/v1/spaces/{space}/state",
                f"/v1/spaces/{space}",
            ]

            # Refused by the edge, never seen by the node.
            before = await settled_reads(node)
            bad_sig = ("A" if sig[0] != "A" else "B") + sig[1:]
            past = int(time.time()) - 60
            for path in objects:
                for url, status in (
                    (path, 403),  # unsigned
                    (f"/p/{exp}/{bad_sig}{path}", 403),  # tampered
                    (f"/p/{past}/{sign(space, past, LINK_SECRET)}{path}", 410),  # expired
                ):
                    r = await client.get(edge.url + url)
                    assert r.status_code == status, (url, r.status_code, r.text)
            assert reads_at_node(node) == before, "a refused read reached the node"

            # Forty listeners, forty different valid links, one part: one origin request.
            async def fetch(i: int) -> bytes:
                expiry = int(time.time()) + 3600 + i
                url = f"{edge.url}/p/{expiry}/{sign(space, expiry, LINK_SECRET)}"
                r = await client.get(f"{url}/media/{space}/seg/{done}.m4s")
                assert r.status_code == 200, r.text
                return r.content

            before = await settled_reads(node)
            bodies = await asyncio.gather(*(fetch(i) for i in range(40)))
            after = reads_at_node(node)
            assert len(set(bodies)) == 1 and bodies[0]
            grew = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            assert {k: v for k, v in grew.items() if v} == {"/media/{space_id}/seg/{msn}.m4s": 1}, (
                grew
            )
        finally:
            with node.client() as c:
                await wrap_up(c, space, host, speaker)
