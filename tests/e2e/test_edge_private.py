"""Private spaces checked by the edge itself (nginx ``secure_link``), against a real nginx
and a counting stand-in origin: an unsigned read of a private id, a bad or foreign
signature and an expired link are answered by the edge and reach no node; a valid link
is forwarded whole, and listeners with different links share one origin request.

The signature is computed here from the contract (base64url, unpadded, of the MD5 of
``"{exp}{space_id} {secret}"``), independently of the node's implementation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time

import httpx
import pytest

from tests.support.nginx import nginx_edge
from tests.support.upstream import counting_upstream

pytestmark = pytest.mark.e2e

SECRET = "s3cret-for-edge-tests+/=0123456789"
SPACE = "p-9fK2xQ"


def sign(space: str, exp: int, secret: str = SECRET) -> str:
    digest = hashlib.md5(f"{exp}{space} {secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def link(space: str, exp: int, secret: str = SECRET) -> str:
    return f"/p/{exp}/{sign(space, exp, secret)}"


LISTENER_READS = [
    f"/media/{SPACE}/live.m3u8?_HLS_msn=5&_HLS_part=1",
    f"/media/{SPACE}/plain.m3u8",
    f"/media/{SPACE}/init.mp4",
    f"/media/{SPACE}/part/5.1.m4s",
    f"/media/{SPACE}/seg/4.m4s",
    f"/media/{SPACE}/replay.m3u8",
    f"/v1/spaces/{SPACE}/state?after=7",
    f"/v1/spaces/{SPACE}/recording.m4a",
    f"/v1/spaces/{SPACE}",
]


def test_unsigned_and_badly_signed_private_reads_never_reach_a_node() -> None:
    soon = int(time.time()) + 600
    gone = int(time.time()) - 5
    with (
        counting_upstream() as node,
        nginx_edge([node.address], link_secret=SECRET) as edge,
        httpx.Client(base_url=edge.url, timeout=10) as c,
    ):
        for path in LISTENER_READS:
            r = c.get(path)
            assert r.status_code == 403, (path, r.status_code, r.text)
            assert "signed link" in r.text
            # a signature for another space, a forged one, a malformed expiry
            for bad in (link("p-other", soon), f"/p/{soon}/AAAAAAAAAAAAAAAAAAAAAA", "/p/x/y"):
                r = c.get(bad + path)
                assert r.status_code == 403, (bad + path, r.status_code, r.text)
                assert "not valid" in r.text
            # a good signature made for another expiry than the one in the URL
            r = c.get(f"/p/{soon + 1}/{sign(SPACE, soon)}{path}")
            assert r.status_code == 403
            r = c.get(link(SPACE, gone) + path)
            assert r.status_code == 410, (path, r.status_code, r.text)
            assert "expired" in r.text
        # Signed links are for listener reads only.
        assert c.get(link(SPACE, soon) + f"/v1/spaces/{SPACE}/hand").status_code == 404
        assert node.count() == 0, node.paths()

        # An account token is no way around the signature: still refused by the edge.
        for path in LISTENER_READS:
            r = c.get(path, headers={"Authorization": "Bearer t"})
            assert r.status_code == 403, (path, r.status_code, r.text)
            assert "signed link" in r.text
        assert node.count() == 0, node.paths()
        # With a valid link and a token (a stage member's view of the state), the read goes
        # to the node (which checks both), uncached.
        signed = link(SPACE, soon)
        r = c.get(f"{signed}/v1/spaces/{SPACE}/state", headers={"Authorization": "Bearer t"})
        assert r.status_code == 200 and r.headers["x-cache-status"] == "BYPASS"
        assert node.paths() == [f"{signed}/v1/spaces/{SPACE}/state"]


def test_an_edge_without_a_link_secret_refuses_every_signed_url() -> None:
    soon = int(time.time()) + 600
    with (
        counting_upstream() as node,
        nginx_edge([node.address]) as edge,
        httpx.Client(base_url=edge.url, timeout=10) as c,
    ):
        for path in LISTENER_READS:
            r = c.get(link(SPACE, soon) + path)
            assert r.status_code == 403, (path, r.status_code)
            assert "no signed links" in r.text
            assert c.get(path).status_code == 403
        # Public spaces are untouched.
        assert c.get("/media/pub1/init.mp4").status_code == 200
        assert node.paths() == ["/media/pub1/init.mp4"]


def test_a_valid_link_is_forwarded_whole_and_cached_apart_from_public_keys() -> None:
    exp = int(time.time()) + 600
    signed = link(SPACE, exp)
    with (
        counting_upstream() as node,
        nginx_edge([node.address], link_secret=SECRET) as edge,
        httpx.Client(base_url=edge.url, timeout=10) as c,
    ):
        r = c.get(f"{signed}/media/{SPACE}/live.m3u8?_HLS_msn=05&_HLS_part=1&junk=9")
        assert r.status_code == 200 and r.headers["x-cache-status"] == "MISS"
        # The node gets the whole signed URI (it checks the signature again), junk dropped.
        assert node.paths() == [f"{signed}/media/{SPACE}/live.m3u8?_HLS_msn=5&_HLS_part=1"]
        # Another valid link for the same object is the same cache entry.
        other = link(SPACE, exp + 1)
        r = c.get(f"{other}/media/{SPACE}/live.m3u8?_HLS_msn=5&_HLS_part=1")
        assert r.headers["x-cache-status"] == "HIT"
        for path in LISTENER_READS:
            assert c.get(signed + path).status_code == 200
        # A public space's object read through a signed link and without one: two keys.
        assert c.get(link("pub1", exp) + "/media/pub1/init.mp4").headers["x-cache-status"] == (
            "MISS"
        )
        assert c.get("/media/pub1/init.mp4").headers["x-cache-status"] == "MISS"
        assert node.count("/media/pub1/") == 1 and node.count("/p/") == len(LISTENER_READS) + 1


LISTENERS = 50


def test_listeners_with_different_links_collapse_onto_one_origin_request() -> None:
    now = int(time.time())
    links = [link(SPACE, now + 300 + i) for i in range(LISTENERS)]
    assert len(set(links)) == LISTENERS
    # The node holds each request a while, as a blocking reload does: everyone piles up.
    with (
        counting_upstream(delay_s=1.5) as node,
        nginx_edge([node.address], link_secret=SECRET) as edge,
    ):

        async def listen(prefix: str) -> tuple[int, str]:
            async with httpx.AsyncClient(base_url=edge.url, timeout=20) as c:
                r = await c.get(f"{prefix}/media/{SPACE}/live.m3u8?_HLS_msn=8&_HLS_part=2")
                return r.status_code, r.text

        async def everyone() -> list[tuple[int, str]]:
            return list(await asyncio.gather(*(listen(p) for p in links)))

        answers = asyncio.run(everyone())
        assert {status for status, _ in answers} == {200}
        assert len({body for _, body in answers}) == 1
        assert node.count() == 1, node.paths()
