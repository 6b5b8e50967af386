"""A private space's front row through a real nginx edge with nchan, node and edge
sharing one link secret: the stage node pushes the private space's program like any
other, the join hands its invited listener a signed front-row URL (the prefix and expiry
of its signed media links), and the edge checks that link itself, as it checks the
signed media reads.

* the invited listener subscribes at the signed URL and decodes the host's tone;
* unsigned, tampered, foreign (another space's signature) and expired subscriptions
  are refused by the edge (403, 403, 403, 410) with the media reads' bodies;
* a public space's join still offers the plain ``/frontrow/{id}``;
* ``GET …/links`` hands the front row out by the same rule (a page renews its signed
  URL there without joining again): signed for the private space's audience, who hear
  the tone at it; refused to an account that may not listen; plain for a public space;
* an edge without a link secret refuses every signed subscription (403).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from pnyx.edge_frontrow import PRIVATE, FrontRow
from pnyx.edge_reads import BAD_LINK, EXPIRED, NO_LINKS
from pnyx.services.links import sign
from tests.e2e.test_frontrow import HOST_HZ, OTHER_HZ, RATE, require_nchan
from tests.support import tones
from tests.support.api import create_space, error_of, new_user, ok
from tests.support.frontrow import FrontRowClient
from tests.support.nginx import Edge, nginx_edge
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.procs import free_port, require_binary
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

LINK_SECRET = "edge-and-node-share-this-front-row-secret"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PnyxProcess, Edge]]:
    require_binary("nginx", "/usr/sbin")
    require_nchan()
    edge_port = free_port()
    settings = {
        "frontrow_publish_urls": f"http://127.0.0.1:{edge_port}/frontrow/pub/",
        "link_secret": LINK_SECRET,
    }
    with pnyx_serve(Path(tmp_path_factory.mktemp("frontrow-private")), settings=settings) as node:
        upstream = node.url.removeprefix("http://")
        with nginx_edge(
            [upstream], frontrow=FrontRow(), link_secret=LINK_SECRET, port=edge_port
        ) as edge:
            yield node, edge


async def refusal(url: str) -> tuple[int, str]:
    """The status and body of a subscription the edge refuses (101: it was accepted)."""
    try:
        async with websockets.connect(url, open_timeout=5):
            return 101, ""
    except websockets.InvalidStatus as exc:
        return exc.response.status_code, (exc.response.body or b"").decode()


async def first_messages(url: str) -> FrontRowClient:
    """Subscribe at ``url`` and keep 4 s of messages; the channel exists once the stage
    node has posted its first message (before that nchan answers 403), so retry a while."""
    client = FrontRowClient(url)
    for _ in range(50):
        client = FrontRowClient(url)
        await client.run(seconds=4.0)
        if client.arrivals or (client.failed is not None and "403" not in str(client.failed)):
            break
        await asyncio.sleep(0.2)
    return client


def test_a_private_space_s_listener_hears_its_front_row_through_a_signed_link(
    stack: tuple[PnyxProcess, Edge],
) -> None:
    node, edge = stack
    with node.client() as c:
        host = new_user(c, "frp_host")
        guest = new_user(c, "frp_guest")
        space = create_space(c, host, visibility="private")
        assert space.startswith("p-")
        invite = {"handle": guest.handle}
        ok(c.post(f"/v1/spaces/{space}/invites", json=invite, headers=host.auth), 201)
        joined = ok(c.post(f"/v1/spaces/{space}/join", headers=guest.auth))
        public = create_space(c, new_user(c, "frp_pub"))
        plain = ok(c.post(f"/v1/spaces/{public}/join"))

    # the signed URL: the very prefix (and expiry) of the listener's signed media links
    prefix = joined["media"]["hls"].removesuffix(f"/media/{space}/live.m3u8")
    assert prefix.startswith("/p/") and prefix.count("/") == 3
    assert joined["frontrow"] == {"url": f"{prefix}/frontrow/{space}", "default": True}
    _, exp, sig = prefix.split("/")[1:]
    assert sig == sign(space, int(exp), LINK_SECRET)
    assert plain["frontrow"] == {"url": f"/frontrow/{public}", "default": True}

    ws = edge.http_url.replace("http://", "ws://")

    async def scenario() -> tuple[FrontRowClient, list[tuple[int, str]]]:
        speaker = await publish(node.url, space, host.token, ToneTrack(HOST_HZ, 0.2))
        try:
            heard = await first_messages(ws + joined["frontrow"]["url"])
            # refused while the channel exists: the link is what the edge refuses
            past = int(time.time()) - 60
            other = sign("p-someoneelse", int(exp), LINK_SECRET)
            # the first character: the last one of 22 carries only 2 of the MD5's bits
            tampered = ("A" if sig[0] != "A" else "B") + sig[1:]
            refused = [
                await refusal(f"{ws}/frontrow/{space}"),
                await refusal(f"{ws}/p/{exp}/{tampered}/frontrow/{space}"),
                await refusal(f"{ws}/p/{exp}/{other}/frontrow/{space}"),
                await refusal(f"{ws}/p/{past}/{sign(space, past, LINK_SECRET)}/frontrow/{space}"),
                await refusal(f"{ws}/p/{exp}/not-a-signature/frontrow/{space}"),
            ]
            return heard, refused
        finally:
            await speaker.close()

    client, refused = asyncio.run(scenario())
    assert client.failed is None, repr(client.failed)
    seqs = [a.message.seq for a in client.arrivals]
    assert len(seqs) > 50, len(seqs)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # in order, none lost
    _, samples, _ = client.decode()
    assert len(samples) >= 3 * RATE
    tail = samples[-2 * RATE :]
    heard = tones.dominant_tones(tail, RATE, (HOST_HZ, OTHER_HZ))
    assert heard == {HOST_HZ}, tones.describe(tail, (HOST_HZ, OTHER_HZ))

    unsigned, tampered, foreign, expired, malformed = refused
    assert unsigned == (403, PRIVATE + "\n")
    assert "signed link" in unsigned[1]
    assert tampered == (403, BAD_LINK + "\n")
    assert foreign == (403, BAD_LINK + "\n")
    assert expired == (410, EXPIRED + "\n")
    assert malformed == (403, BAD_LINK + "\n")


def test_links_hand_out_a_private_space_s_signed_front_row_to_its_audience_only(
    stack: tuple[PnyxProcess, Edge],
) -> None:
    node, edge = stack
    with node.client() as c:
        host = new_user(c, "frl_host")
        guest = new_user(c, "frl_guest")
        stranger = new_user(c, "frl_out")
        space = create_space(c, host, visibility="private")
        invite = {"handle": guest.handle}
        ok(c.post(f"/v1/spaces/{space}/invites", json=invite, headers=host.auth), 201)
        links = ok(c.get(f"/v1/spaces/{space}/links", headers=guest.auth))
        refused = error_of(c.get(f"/v1/spaces/{space}/links", headers=stranger.auth), 403)
        joined = ok(c.post(f"/v1/spaces/{space}/join", headers=guest.auth))
        public = create_space(c, new_user(c, "frl_pub"))
        plain = ok(c.get(f"/v1/spaces/{public}/links", headers=stranger.auth))

    # signed with the prefix and expiry of the other links, like the join's URL
    exp = links["expires_at"]
    prefix = f"/p/{exp}/{sign(space, exp, LINK_SECRET)}"
    assert links["links"]["frontrow"] == f"{prefix}/frontrow/{space}", links
    assert links["links"]["hls"] == f"{prefix}/media/{space}/live.m3u8", links
    offered = joined["frontrow"]["url"]
    assert offered.startswith("/p/") and offered.endswith(f"/frontrow/{space}"), joined
    assert refused["code"] == "private_space", refused
    assert plain["links"]["frontrow"] == f"/frontrow/{public}", plain
    assert plain["expires_at"] is None

    ws = edge.http_url.replace("http://", "ws://")

    async def scenario() -> FrontRowClient:
        speaker = await publish(node.url, space, host.token, ToneTrack(HOST_HZ, 0.2))
        try:
            return await first_messages(ws + links["links"]["frontrow"])
        finally:
            await speaker.close()

    client = asyncio.run(scenario())
    assert client.failed is None, repr(client.failed)
    assert len(client.arrivals) > 50, len(client.arrivals)
    _, samples, _ = client.decode()
    tail = samples[-2 * RATE :]
    heard = tones.dominant_tones(tail, RATE, (HOST_HZ, OTHER_HZ))
    assert heard == {HOST_HZ}, tones.describe(tail, (HOST_HZ, OTHER_HZ))


def test_the_stage_node_pushes_a_private_space_only_the_signed_path_reads_it(
    stack: tuple[PnyxProcess, Edge],
) -> None:
    """A signed link is good for the space it names, whether it is live yet or not: an
    unknown space's valid link reaches nchan, which has no such channel (403 from nchan,
    not the link check)."""
    _, edge = stack
    ws = edge.http_url.replace("http://", "ws://")
    exp = int(time.time()) + 600
    space = "p-nobodypublishes"
    status, body = asyncio.run(
        refusal(f"{ws}/p/{exp}/{sign(space, exp, LINK_SECRET)}/frontrow/{space}")
    )
    assert status == 403 and body != BAD_LINK + "\n" and body != PRIVATE + "\n", body


def test_an_edge_without_a_link_secret_refuses_signed_subscriptions() -> None:
    require_nchan()
    with nginx_edge(["127.0.0.1:9"], frontrow=FrontRow()) as edge:
        ws = edge.http_url.replace("http://", "ws://")
        exp = int(time.time()) + 600
        signed = f"{ws}/p/{exp}/{sign('p-abc', exp, LINK_SECRET)}/frontrow/p-abc"
        assert asyncio.run(refusal(signed)) == (403, NO_LINKS + "\n")
        assert asyncio.run(refusal(f"{ws}/frontrow/p-abc")) == (403, PRIVATE + "\n")
