"""Live state that survives its own server (issue #11): a ``pnyx serve`` whose ``--redis``
is a Sentinel URL keeps a live space through the loss of the Redis primary. The
Sentinels promote the replica; the node follows it, and the space's state and playlist
are read again (200, the media moving on) within a bound. The node never crashes nor
logs a traceback (``pnyx_serve`` checks its output at exit)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import create_space, new_user, on_stage, state
from tests.support.hls import Playlist, parse_playlist
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import Seen, wait_until
from tests.support.redis_server import SentinelCluster, sentinel_cluster

pytestmark = pytest.mark.e2e

# From the SIGKILL of the primary to reads answering again and new media parts: the
# Sentinels take 2-3 s to promote the replica (down-after 1 s), then the node's
# connections and its stage lease come back.
RECOVERY_BOUND_S = 15.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    with sentinel_cluster(tmp_path / "redis", down_after_ms=1000) as started:
        yield started


def playlist(node: PnyxProcess, space: str) -> tuple[int, Playlist | None]:
    r = httpx.get(f"{node.url}/media/{space}/live.m3u8", timeout=5)
    return r.status_code, parse_playlist(r.text) if r.status_code == 200 else None


def last_part(p: Playlist | None) -> tuple[int, int]:
    if p is None or not p.parts:
        return (-1, -1)
    part = p.parts[-1]
    return (part.msn, part.index)


def test_a_live_space_outlives_its_redis_primary(tmp_path: Path, cluster: SentinelCluster) -> None:
    with pnyx_serve(tmp_path / "node", redis=cluster.url) as node, node.client() as c:
        host = new_user(c, "host")
        space = create_space(c, host)
        assert state(c, space)["state"] == "live"
        wait_until(lambda: last_part(playlist(node, space)[1]) >= (0, 1), 20, "media parts to play")
        before = last_part(playlist(node, space)[1])
        old_port = cluster.kill_primary()
        killed = time.monotonic()
        refused: dict[str, set[int]] = {"state": set(), "playlist": set()}

        def reads_again() -> Seen:
            r = c.get(f"/v1/spaces/{space}/state", timeout=5)
            if r.status_code != 200:
                refused["state"].add(r.status_code)
                return Seen(False, f"state: {r.status_code} {r.text[:200]}")
            status, p = playlist(node, space)
            if status != 200:
                refused["playlist"].add(status)
                return Seen(False, f"playlist: {status}")
            return Seen(last_part(p) > before, f"playlist parts up to {last_part(p)}")

        wait_until(
            reads_again,
            RECOVERY_BOUND_S + 10,
            "the state and new media parts after the failover",
            interval=0.1,
            ignoring=(httpx.HTTPError,),
        )
        gap = time.monotonic() - killed
        new_port = cluster.wait_promoted(old_port, 5.0)
        print(
            f"\nSentinel failover under pnyx serve: primary {old_port} -> {new_port}; state and"
            f" new media parts again {gap:.2f} s after the kill (refused meanwhile: {refused})"
        )
        assert gap <= RECOVERY_BOUND_S, f"reads recovered only {gap:.2f} s after the kill"
        assert refused["state"] <= {503} and refused["playlist"] <= {503}  # nothing worse
        assert node.proc.poll() is None  # the node lived through it
        s = state(c, space)
        assert s["state"] == "live"
        assert host.handle in on_stage(s)
        # Writes go through too: a second space starts on the new primary.
        other = create_space(c, new_user(c, "host"))
        assert state(c, other)["state"] == "live"
