"""Redis restarted empty under a live space (issue #11): two stage nodes on one real
Redis and one real PostgreSQL, behind an nginx edge. While Redis is away the edge passes
the nodes' 503s on (never ``502 no live upstreams``); when it is back, empty, the stage
has not moved (the same node holds the lease and runs the media), the space is live with
its host, and new media parts reach the edge again."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_edge_health import stoppable_redis
from tests.e2e.test_publish_anywhere import holder_of
from tests.e2e.test_takeover import LEASES, last_part, lease, media_spaces, node_id, playlist
from tests.support.api import create_space, new_user, on_stage, state
from tests.support.nginx import nginx_edge
from tests.support.pnyx_server import pnyx_serve
from tests.support.poll import wait_until

pytestmark = pytest.mark.e2e

OUTAGE_S = 2.0  # two lease lifetimes: every lease lapses


def test_a_redis_restart_does_not_move_the_stage(tmp_path: Path, pg_database_url: str) -> None:
    with stoppable_redis(tmp_path) as redis:
        shared = {"database": pg_database_url, "redis": redis.url, "settings": LEASES}
        with (
            pnyx_serve(tmp_path / "a", **shared) as a,
            pnyx_serve(tmp_path / "b", **shared) as b,
            nginx_edge([a.url.removeprefix("http://"), b.url.removeprefix("http://")]) as edge,
            httpx.Client(base_url=edge.url, timeout=20) as via_edge,
        ):
            nodes = [a, b]
            with a.client() as c:
                host = new_user(c, "host")
                space = create_space(c, host)
            holder = holder_of(nodes, redis.url, space)
            (other,) = [n for n in nodes if n is not holder]

            redis.stop()
            codes = set()
            deadline = time.monotonic() + OUTAGE_S
            while time.monotonic() < deadline:
                # past the cache (the edge keys no junk argument): each reaches a node
                r = via_edge.get(f"/v1/spaces/{space}/state", headers=host.auth)
                codes.add(r.status_code)
                time.sleep(0.1)
            redis.start()  # empty: no lease, no snapshot, no media parts
            assert codes <= {200, 503}, codes  # passed on, never a 502 from the edge

            wait_until(lambda: lease(redis.url, space) is not None, 10, "a stage lease again")
            held = lease(redis.url, space)
            assert held is not None and held[0] == node_id(holder), "the stage moved"
            assert media_spaces(holder) == 1 and media_spaces(other) == 0
            first = last_part(playlist(holder, space))
            wait_until(lambda: last_part(playlist(holder, space)) > first, 10, "new media parts")
            r = via_edge.get(f"/media/{space}/live.m3u8")
            assert r.status_code == 200 and "#EXT-X-PART" in r.text
            s = state(via_edge, space)
            assert s["state"] == "live"
            assert on_stage(s)[host.handle]["role"] == "host"
            assert lease(redis.url, space) == held  # and it stays put
