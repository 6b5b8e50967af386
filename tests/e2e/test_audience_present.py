"""The host's audience figures as people and presence, over HTTP against a real
``pnyx serve``: the listener list holds the listeners present *now* (one whose client
vanished without leaving drops out within the presence window), on the in-memory and the
Redis live state; unique listeners count people, not joins; replay plays and downloads
are counted from the replay page's beacon, so plays through an edge (which caches the
replay) each count."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import (
    Heartbeats,
    Listener,
    User,
    create_space,
    error_of,
    join,
    new_user,
    ok,
    state,
)
from tests.support.nginx import nginx_edge
from tests.support.pnyx_server import FAST, PnyxProcess, pnyx_serve
from tests.support.poll import wait_until
from tests.support.redis_server import redis_server

pytestmark = pytest.mark.e2e

WINDOW_S = float(FAST["presence_window_s"])  # 2 s: the tests' presence window
SETTINGS = {"analytics_flush_s": "0.5", "analytics_sample_s": "1"}


@pytest.fixture(scope="module", params=["memory", "redis"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PnyxProcess]:
    folder = Path(tmp_path_factory.mktemp(f"present-{request.param}"))
    if request.param == "memory":
        with pnyx_serve(folder, settings=SETTINGS) as n:
            yield n
        return
    with redis_server(folder) as url, pnyx_serve(folder, redis=url, settings=SETTINGS) as n:
        yield n


def handles(c: httpx.Client, space: str, host: User) -> list[str]:
    body = ok(c.get(f"/v1/spaces/{space}/listeners", params={"limit": 100}, headers=host.auth))
    return [item["handle"] for item in body["listeners"]]


def test_a_listener_who_stops_heartbeating_leaves_the_list_within_the_window(
    node: PnyxProcess, c: httpx.Client
) -> None:
    host, stays, vanishes = new_user(c, "host"), new_user(c, "stays"), new_user(c, "gone")
    space = create_space(c, host, title="who is here now")
    kept, lost = join(c, space, stays), join(c, space, vanishes)
    with Heartbeats(node.url, space, [kept], every_s=0.4):
        with Heartbeats(node.url, space, [lost], every_s=0.4):
            wait_until(
                lambda: sorted(handles(c, space, host)) == sorted([stays.handle, vanishes.handle]),
                10,
                "both listeners listed",
            )
            time.sleep(WINDOW_S + 1)  # heartbeats keep both listed past the window
            assert sorted(handles(c, space, host)) == sorted([stays.handle, vanishes.handle])
        # The client vanished: no leave, no more heartbeats.
        silent_at = time.monotonic()
        wait_until(
            lambda: handles(c, space, host) == [stays.handle],
            WINDOW_S + 5,
            "the silent listener out of the list",
        )
        took = time.monotonic() - silent_at
        # within the window (plus a bucket, a batch flush and this poll's step)
        assert took <= WINDOW_S + 2, took
        wait_until(lambda: int(state(c, space)["listeners"]) == 1, WINDOW_S + 5, "count 1")
        time.sleep(WINDOW_S + 0.5)  # the one still heartbeating stays listed
        assert handles(c, space, host) == [stays.handle]
    # Heard again (a new join): listed again at once.
    back = join(c, space, vanishes)
    assert handles(c, space, host) == [vanishes.handle, stays.handle]
    ok(c.post(f"/v1/spaces/{space}/leave", headers=back.auth), 204)


def _anonymous(c: httpx.Client, space: str, client: str | None) -> Listener:
    params = {} if client is None else {"client": client}
    out = ok(c.post(f"/v1/spaces/{space}/join", params=params))
    return Listener(out["listener_id"], out["token"], out["heartbeat_s"], out["media"])


def analytics(c: httpx.Client, space: str, who: User) -> dict[str, Any]:
    return dict(ok(c.get(f"/v1/spaces/{space}/analytics", headers=who.auth)))


def test_unique_listeners_are_people_not_joins(node: PnyxProcess, c: httpx.Client) -> None:
    host, fan = new_user(c, "host"), new_user(c, "fan")
    space = create_space(c, host, title="people")
    browser_a, browser_b = "A" * 22, "b-0123456789_abcdef"
    ids = {join(c, space, fan).listener_id for _ in range(3)}  # the same person, 3 joins
    ids |= {_anonymous(c, space, browser_a).listener_id for _ in range(2)}  # one browser
    ids.add(_anonymous(c, space, browser_b).listener_id)  # another browser
    ids.add(_anonymous(c, space, None).listener_id)  # a client that keeps nothing
    assert len(ids) == 7  # listener ids are per join

    def counted() -> bool:
        a = analytics(c, space, host)
        return a["unique_listeners"] == 4 and sum(m["joins"] for m in a["joins_per_minute"]) == 7

    wait_until(counted, 15, "4 people, 7 joins")

    # The kept id is checked (both the lean path and the route answer the same 422).
    for bad in ("short", "x" * 65, "has space in it!!!!", ""):
        err = error_of(c.post(f"/v1/spaces/{space}/join", params={"client": bad}), 422)
        assert "client" in str(err), err
    assert analytics(c, space, host)["unique_listeners"] == 4


def _replay_ready(c: httpx.Client, space: str) -> bool:
    return c.get(f"/media/{space}/replay.m3u8").status_code == 200


@pytest.mark.parametrize("node", ["memory"], indirect=True)
def test_replay_plays_through_an_edge_each_count(node: PnyxProcess, c: httpx.Client) -> None:
    host = new_user(c, "host")
    space = create_space(c, host, title="replayed", record=True)
    time.sleep(2)  # a few segments of the (silent) program are recorded
    # Not over yet: no replay to count.
    assert error_of(c.post(f"/v1/spaces/{space}/replay/play"), 409)["code"] == "still_live"
    ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth))
    wait_until(lambda: _replay_ready(c, space), 30, "the replay")

    with (
        nginx_edge([node.url.removeprefix("http://")]) as edge,
        httpx.Client(base_url=edge.http_url, timeout=20) as e,
    ):
        for _ in range(2):  # two listeners play it through the edge: the second a cache hit
            assert e.get(f"/media/{space}/replay.m3u8").status_code == 200
            assert ok(e.post(f"/v1/spaces/{space}/replay/play"), 202) is None
        assert e.get(f"/media/{space}/replay.m3u8").headers["X-Cache-Status"] == "HIT"
        assert e.get(f"/v1/spaces/{space}/recording.m4a").status_code == 200
        ok(e.post(f"/v1/spaces/{space}/replay/download"), 202)
        # Bad beacons are refused, saying why.
        assert error_of(e.post(f"/v1/spaces/{space}/replay/stream"), 422)
        assert error_of(e.post("/v1/spaces/nope/replay/play"), 404)
        plain = create_space(c, host, title="not recorded")
        ok(c.post(f"/v1/spaces/{plain}/end", headers=host.auth))
        assert error_of(e.post(f"/v1/spaces/{plain}/replay/play"), 404)["code"] == "no_recording"

    replay = analytics(c, space, host)["replay"]
    assert replay == {"plays": 2, "downloads": 1}, replay  # the GETs counted nothing
