"""A dead stage node: the space plays on (issue #11). Two ``pnyx serve`` nodes that both
run stages share a real Redis and a real PostgreSQL, with the default leases
(``lease_ttl_s`` 1 s, renewed every ``lease_renew_s`` 0.25 s).

* SIGKILL the node that holds a live space's lease: the other one takes the space over
  and publishes new media parts within a few seconds; the space stays live, its host on
  stage.
* Cut the nodes off the space's database (only this test's database: the PostgreSQL
  server is shared by the session) for three lease lifetimes: the lease never moves (same
  holder, same fencing token) and the media never stops.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from pnyx.live.keys import RedisKind, lease_name, redis_key
from tests.support.api import create_space, new_user, on_stage, state
from tests.support.hls import Playlist, parse_playlist
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import wait_until
from tests.support.postgres_server import PostgresServer

pytestmark = pytest.mark.e2e

LEASES = {"lease_ttl_s": "1", "lease_renew_s": "0.25"}  # the defaults
TAKEOVER_BOUND_S = 4.0


@contextmanager
def two_nodes(tmp_path: Path, redis_url: str, database: str) -> Iterator[list[PnyxProcess]]:
    with ExitStack() as stack:
        nodes = [
            stack.enter_context(
                pnyx_serve(tmp_path / name, database=database, redis=redis_url, settings=LEASES)
            )
            for name in ("a", "b")
        ]
        yield nodes


def node_id(node: PnyxProcess) -> str:
    return str(httpx.get(f"{node.url}/healthz", timeout=5).json()["node"])


def lease(redis_url: str, space: str) -> tuple[str, int] | None:
    """The stage lease as Redis has it: (holder node id, fencing token)."""
    client = redis.Redis.from_url(redis_url)
    try:
        value = client.get(redis_key("pnyx:", RedisKind.LEASE, lease_name(space)))
    finally:
        client.close()
    if value is None:
        return None
    holder, _, token = value.decode().rpartition("|")
    return holder, int(token)


def media_spaces(node: PnyxProcess) -> float:
    """The node's pnyx_media_spaces gauge: how many spaces' media run there."""
    text = httpx.get(f"{node.url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("pnyx_media_spaces "):
            return float(line.split()[1])
    return 0.0


def playlist(node: PnyxProcess, space: str) -> Playlist | None:
    r = httpx.get(f"{node.url}/media/{space}/live.m3u8", timeout=5)
    return parse_playlist(r.text) if r.status_code == 200 else None


def last_part(p: Playlist | None) -> tuple[int, int]:
    if p is None or not p.parts:
        return (-1, -1)
    part = p.parts[-1]
    return (part.msn, part.index)


def live_space(nodes: list[PnyxProcess], redis_url: str) -> tuple[str, str, PnyxProcess]:
    """A live space whose media plays: (space, host handle, the node holding it)."""
    with nodes[0].client() as c:
        host = new_user(c, "host")
        space = create_space(c, host)
    wait_until(lambda: last_part(playlist(nodes[1], space)) >= (1, 2), 20, "media parts")
    held = lease(redis_url, space)
    assert held is not None
    (holder,) = [n for n in nodes if node_id(n) == held[0]]
    wait_until(lambda: media_spaces(holder) == 1, 10, "the holder to run the media")
    assert sum(media_spaces(n) for n in nodes) == 1
    return space, host.handle, holder


def test_a_killed_stage_node_is_replaced_within_seconds(
    tmp_path: Path, redis_clean_url: str, pg_database_url: str
) -> None:
    with two_nodes(tmp_path, redis_clean_url, pg_database_url) as nodes:
        space, host, holder = live_space(nodes, redis_clean_url)
        (survivor,) = [n for n in nodes if n is not holder]
        dead = lease(redis_clean_url, space)
        holder.proc.kill()  # SIGKILL: nothing released, no goodbye
        killed = time.monotonic()
        holder.proc.wait(timeout=10)
        before = last_part(playlist(survivor, space))  # all the dead node ever wrote

        def newer() -> bool:
            return last_part(playlist(survivor, space)) > before

        wait_until(newer, TAKEOVER_BOUND_S + 6, "the survivor to publish new parts")
        took = time.monotonic() - killed
        print(f"takeover: new media parts {took:.2f}s after SIGKILL (parts up to {before})")
        assert took <= TAKEOVER_BOUND_S, f"new parts only {took:.2f}s after the kill"
        now = lease(redis_clean_url, space)
        assert now is not None and dead is not None
        assert now[0] == node_id(survivor) and now[1] > dead[1]  # a fresh fencing token
        assert media_spaces(survivor) == 1
        with survivor.client() as c:
            s = state(c, space)
            assert s["state"] == "live"
            assert host in on_stage(s)


def cut_off(pg: PostgresServer, database: str, *, allow: bool) -> None:
    """Refuse (or allow again) every connection to ``database``, ending the open ones."""
    pg.psql(f"ALTER DATABASE {database} ALLOW_CONNECTIONS {str(allow).lower()}")
    if not allow:
        pg.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )


def test_a_database_outage_does_not_move_the_stage(
    tmp_path: Path, redis_clean_url: str, pg_database_url: str, postgres_server: PostgresServer
) -> None:
    database = pg_database_url.rsplit("/", 1)[1].split("?")[0]
    with two_nodes(tmp_path, redis_clean_url, pg_database_url) as nodes:
        space, _host, holder = live_space(nodes, redis_clean_url)
        (other,) = [n for n in nodes if n is not holder]
        held = lease(redis_clean_url, space)
        cut_off(postgres_server, database, allow=False)
        try:
            with other.client() as c:  # the database is away indeed
                assert c.get(f"/v1/spaces/{space}").status_code == 503
            parts = last_part(playlist(other, space))
            deadline = time.monotonic() + 6.0  # six lease lifetimes
            while time.monotonic() < deadline:
                assert lease(redis_clean_url, space) == held, "the lease moved or lapsed"
                assert media_spaces(holder) == 1 and media_spaces(other) == 0
                time.sleep(0.2)
            assert last_part(playlist(other, space)) > parts, "the media stopped"
        finally:
            cut_off(postgres_server, database, allow=True)
        p = playlist(other, space)
        assert p is not None and not any(s.discontinuity for s in p.segments)
        with other.client() as c:
            wait_until(
                lambda: c.get(f"/v1/spaces/{space}").status_code == 200, 10, "the database back"
            )
            assert state(c, space)["state"] == "live"
        assert lease(redis_clean_url, space) == held
