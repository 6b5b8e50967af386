"""The edge marks a node down only when the node is down: a 503 that every node gives
while a shared dependency (Redis) is briefly away is passed on, and the nodes are used
again the moment the dependency is back (no ``502 no live upstreams`` for the edge's
``fail_timeout``)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.api import create_space, new_user
from tests.support.nginx import nginx_edge
from tests.support.pnyx_server import pnyx_serve
from tests.support.poll import wait_until
from tests.support.procs import free_port, port_open, require_binary

pytestmark = pytest.mark.e2e


class StoppableRedis:
    """A redis-server on one fixed loopback port that the test can stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_binary("redis-server")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [self.binary, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
        args += ["--port", str(self.port), "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_open(self.port), 10, "redis-server to listen")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        wait_until(lambda: not port_open(self.port), 10, "redis-server to be gone")


@contextmanager
def stoppable_redis(workdir: Path) -> Iterator[StoppableRedis]:
    redis = StoppableRedis(workdir)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


def test_a_dependency_503_is_passed_on_and_never_marks_the_nodes_down(
    tmp_path: Path, pg_database_url: str
) -> None:
    with (
        stoppable_redis(tmp_path) as redis,
        pnyx_serve(tmp_path / "a", database=pg_database_url, redis=redis.url) as a,
        pnyx_serve(tmp_path / "b", database=pg_database_url, redis=redis.url) as b,
        a.client() as direct,
        nginx_edge([a.url.removeprefix("http://"), b.url.removeprefix("http://")]) as edge,
        httpx.Client(base_url=edge.url, timeout=20) as via_edge,
    ):
        host = new_user(direct, "h")
        space = create_space(direct, host)
        route = f"/v1/spaces/{space}/state"
        assert via_edge.get(route, params={"after": 0}).status_code == 200

        redis.stop()
        # Past the cache (no stale copy to serve; the edge keys no junk argument, so a
        # stage member's token it is): each the nodes' own answer.
        answers = [via_edge.get(route, headers=host.auth) for _ in range(8)]
        codes = [r.status_code for r in answers]
        assert codes == [503] * 8, codes
        assert "Redis" in answers[-1].json()["error"]["message"]
        assert "Retry-After" in answers[-1].headers

        redis.start()
        for node in (a, b):
            with node.client() as c:
                wait_until(
                    lambda c=c: c.get(route, params={"after": 0}).status_code == 200,
                    10,
                    f"{node.url} to serve the state again",
                )
        # At once (well inside the edge's 5 s fail_timeout): both nodes are still up.
        codes = [via_edge.get(route, headers=host.auth).status_code for _ in range(8)]
        assert codes == [200] * 8, codes
