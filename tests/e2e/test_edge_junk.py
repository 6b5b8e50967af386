"""No client can defeat the edge's cache: junk query arguments and foreign ``Host``
headers are the same object as the plain read, and never reach a node.

First against a real node (counted by its own ``pnyx_http_requests_total``): 200
listeners, each with its own junk and its own ``Host``, still cost one origin request per
object. Then against a counting stand-in origin, what the node is sent exactly: only the
known arguments, normalised, and one fixed ``Host``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_edge import (
    _enough_descriptors,
    _get_all,
    _metric,
    _writing,
    quiet_space_behind_edge,
)
from tests.support import hls
from tests.support.nginx import nginx_edge
from tests.support.poll import wait_until
from tests.support.upstream import counting_upstream

pytestmark = pytest.mark.e2e

LISTENERS = 200
AHEAD = 4  # parts: a blocking reload that waits ~1.3 s, within the advance part limit


def _route(path: str) -> str:
    return f'route="{path}"'


def _request(path: str, n: int) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: listener{n}.invalid\r\nConnection: close\r\n\r\n"
    ).encode()


async def _everyone(port: int, make: list[bytes]) -> list[bytes]:
    tasks: list[asyncio.Task[bytes]] = []
    for request in make:
        tasks += await _get_all(port, request, 1)
    return list(await asyncio.gather(*tasks))


def _ok(answers: list[bytes]) -> set[bytes]:
    """The bodies of ``answers``, which must all be 200s."""
    heads = {a.split(b"\r\n", 1)[0] for a in answers}
    assert heads == {b"HTTP/1.1 200 OK"}, heads
    return {a.split(b"\r\n\r\n", 1)[1] for a in answers}


def test_junk_arguments_and_foreign_hosts_cost_one_origin_request_per_object(
    tmp_path: Path,
) -> None:
    _enough_descriptors(2 * LISTENERS + 256)
    with quiet_space_behind_edge(tmp_path) as q:
        port = int(q.edge_url.rsplit(":", 1)[1])
        space = q.space
        routes = {
            "init": "/media/{space_id}/init.mp4",
            "live": "/media/{space_id}/live.m3u8",
            "space": "/v1/spaces/{space_id}",
            "state": "/v1/spaces/{space_id}/state",
        }

        def origin(kind: str) -> float:
            return _metric(q.direct, "pnyx_http_requests_total", _route(routes[kind]))

        def playing() -> hls.Playlist | None:
            r = q.direct.get(f"/media/{space}/live.m3u8")
            pl = hls.parse_playlist(r.text) if r.status_code == 200 else None
            return pl if pl is not None and pl.parts else None

        pl = wait_until(playing, 20, "the space's audio")
        assert pl is not None
        last = pl.parts[-1]
        per_segment = 6
        ahead = last.msn * per_segment + last.index + AHEAD
        msn, part = divmod(ahead, per_segment)
        before = {kind: origin(kind) for kind in routes}

        # Every listener its own junk and its own Host, all at once.
        requests = []
        for n in range(LISTENERS):
            requests += [
                _request(f"/media/{space}/init.mp4?junk={n}", n),
                _request(f"/media/{space}/live.m3u8?_HLS_msn={msn}&_HLS_part={part}&j={n}", n),
                _request(f"/v1/spaces/{space}?utm_source={n}&after=", n),
            ]
        answers = asyncio.run(_everyone(port, requests))
        init, live, page = answers[0::3], answers[1::3], answers[2::3]
        assert len(_ok(init)) == 1 and len(_ok(page)) == 1
        (playlist,) = _ok(live)
        assert f"{msn}.{part}.m4s".encode() in playlist  # the part waited for is listed

        # The state long-poll: everyone waits on the current version, with junk.
        async def long_polls() -> list[bytes]:
            tasks: list[asyncio.Task[bytes]] = []
            for n in range(LISTENERS):
                path = f"/v1/spaces/{space}/state?after={q.version}&x={n}&after2={n}"
                tasks += await _get_all(port, _request(path, n), 1)
            await asyncio.to_thread(
                wait_until, lambda: _writing(q.edge_url) > LISTENERS, 30, "all waiting"
            )
            await asyncio.to_thread(q.next_version)
            return list(await asyncio.gather(*tasks))

        states = _ok(asyncio.run(long_polls()))
        assert len(states) == 1 and b'"count":1' in states.pop()

        after = {kind: origin(kind) for kind in routes}
        assert {kind: after[kind] - before[kind] for kind in routes} == dict.fromkeys(routes, 1)


def test_what_a_node_is_sent_is_rebuilt_from_the_known_arguments() -> None:
    with (
        counting_upstream() as node,
        nginx_edge([node.address, "127.0.0.1:9"]) as edge,
        httpx.Client(base_url=edge.url, timeout=10) as c,
    ):
        same = {
            "/media/s1/live.m3u8?_HLS_msn=12&_HLS_part=3": [
                "/media/s1/live.m3u8?_HLS_part=3&_HLS_msn=12",
                "/media/s1/live.m3u8?_HLS_msn=012&_HLS_part=03&_HLS_skip=&x=1",
                "/media/s1/live.m3u8?junk=1&_HLS_msn=12&_HLS_part=3#frag",
            ],
            # A delta update is an object of its own; v2 (the same answer) is YES.
            "/media/s1/live.m3u8?_HLS_msn=12&_HLS_part=3&_HLS_skip=YES": [
                "/media/s1/live.m3u8?_HLS_msn=012&_HLS_part=03&_HLS_skip=YES&x=1",
                "/media/s1/live.m3u8?_HLS_skip=v2&_HLS_part=3&_HLS_msn=12",
                "/media/s1/live.m3u8?_HLS_msn=12&_HLS_skip=YES&_HLS_part=3&_HLS_skip=no",
            ],
            "/media/s1/live.m3u8": [
                "/media/s1/live.m3u8?",
                "/media/s1/live.m3u8?_HLS_msn=&_HLS_part=",
                "/media/s1/live.m3u8?_HLS_skip=",
                "/media/s1/live.m3u8?x=%00&y",
            ],
            "/media/s1/live.m3u8?_HLS_skip=YES": [
                "/media/s1/live.m3u8?_HLS_skip=v2",
                "/media/s1/live.m3u8?_HLS_msn=&_HLS_skip=YES&junk=2",
            ],
            "/v1/spaces/s1/state?after=7": [
                "/v1/spaces/s1/state?after=07&x=1",
                "/v1/spaces/s1/state?x=2&after=7",
            ],
            "/v1/spaces/s1/state": ["/v1/spaces/s1/state?after=", "/v1/spaces/s1/state?y=1"],
            "/media/s1/part/12.3.m4s": ["/media/s1/part/12.3.m4s?cb=1"],
            "/v1/spaces/s1": ["/v1/spaces/s1?after=3"],
        }
        for sent, variants in same.items():
            for i, path in enumerate([sent, *variants]):
                r = c.get(path, headers={"Host": f"h{i}.attacker.invalid"})
                assert r.status_code == 200, (path, r.status_code, r.text)
                assert r.headers["x-cache-status"] == ("MISS" if i == 0 else "HIT"), path
        assert node.paths() == list(same)  # one request per object, rebuilt
        assert {s.host for s in node.seen} == {node.address}  # one Host, whatever was sent

        # Values a node could not read are refused by the edge itself.
        for path in (
            "/media/s1/live.m3u8?_HLS_msn=abc",
            "/media/s1/live.m3u8?_HLS_part=2",
            "/media/s1/live.m3u8?_HLS_msn=-1",
            "/media/s1/live.m3u8?_HLS_msn=1234567890123",
            "/v1/spaces/s1/state?after=x",
            # a delta update is exactly YES or v2: junk makes no new object
            "/media/s1/live.m3u8?_HLS_skip=yes",
            "/media/s1/live.m3u8?_HLS_skip=NO",
            "/media/s1/live.m3u8?_HLS_skip=%59ES",
            "/media/s1/live.m3u8?_HLS_skip=YES1",
            "/media/s1/live.m3u8?_HLS_msn=12&_HLS_part=3&_HLS_skip=junk42",
            "/media/s1/live.m3u8?_HLS_skip=v2x&_HLS_skip=YES",
        ):
            r = c.get(path)
            assert r.status_code == 400, (path, r.status_code)
            assert "integer" in r.text
            if "_HLS_skip" in path:
                assert "_HLS_skip (a delta update) is YES or v2" in r.text
        for path in ("/media/s1/part/01.2.m4s", "/media/s1/seg/x.m4s", "/media/s1/other"):
            r = c.get(path)
            assert r.status_code == 404 and "no such media object" in r.text
        assert c.get("/media/s1/init.mp4", headers={"Host": ""}).status_code == 400
        assert len(node.seen) == len(same)

        # A made-up Authorization header changes nothing of a public space's media or
        # page: still the cache. Only the state (a stage member's view) goes past it.
        junk = {"Authorization": "Bearer made-up"}
        for path in ("/media/s1/part/12.3.m4s", "/media/s1/live.m3u8", "/v1/spaces/s1"):
            assert c.get(path, headers=junk).headers["x-cache-status"] == "HIT", path
        assert len(node.seen) == len(same)
        r = c.get("/v1/spaces/s1/state", headers=junk)
        assert r.headers["x-cache-status"] == "BYPASS"
        assert node.seen[-1].authorization == "Bearer made-up"
