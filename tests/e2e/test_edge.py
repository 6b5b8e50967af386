"""The nginx edge from ``pnyx edge-config``, against a real nginx: listener reads are
cached and collapsed, private reads are not, and listeners keep reading while the origin
is down."""

from __future__ import annotations

import asyncio
import re
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.api import User, create_space, new_user, ok, state
from tests.support.nginx import nginx_edge
from tests.support.pnyx_server import pnyx_serve
from tests.support.poll import wait_until
from tests.support.procs import require_binary

pytestmark = pytest.mark.e2e


def _metric(c: httpx.Client, name: str, labels: str = "") -> float:
    text = c.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


STATE_ROUTE = 'route="/v1/spaces/{space_id}/state"'


def quiet_version(c: httpx.Client, space: str) -> int:
    """The state version once the first stats tick has passed, so that only the test's
    own change moves it."""
    seen: list[int] = []

    def settled() -> bool:
        seen.append(state(c, space)["version"])
        return len(seen) >= 3 and seen[-1] == seen[-3] and seen[-1] > 1

    wait_until(settled, 10, "a quiet state", interval=0.3)
    return seen[-1]


def test_edge_config_cli_is_valid_nginx(tmp_path: Path) -> None:
    nginx = require_binary("nginx", "/usr/sbin")
    conf = tmp_path / "nginx.conf"
    args = ["edge-config", "--listen", "127.0.0.1:18080", "--cache-dir", str(tmp_path / "c")]
    args += ["--upstream", "127.0.0.1:18001", "--upstream", "127.0.0.2:18002"]  # loopback only
    args += ["--state-dir", str(tmp_path / "s"), "--output", str(conf)]
    subprocess.run([sys.executable, "-m", "pnyx.cli", *args], check=True, capture_output=True)
    assert conf.read_text().count("max_fails=") == 2
    checked = subprocess.run(
        [nginx, "-e", "stderr", "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


# No keepalive version while the test holds its long-polls (it checks what ends them), and
# no "host away" version either: the host never publishes, and the node judges a host
# away only after holding the space for stage_presence_ttl_s (3 s with the tests' fast
# clocks, which a slow machine's test could outlast after the state settled).
QUIET = {"state_wait_s": "12", "state_keepalive_s": "0", "stage_presence_ttl_s": "600"}


@dataclass
class QuietSpace:
    """A live space with no state changes but the test's own, behind an edge."""

    direct: httpx.Client  # to the origin
    edge_url: str
    space: str
    version: int  # the current one: ``state?after=version`` waits
    fan: User

    def origin_state_requests(self) -> float:
        return _metric(self.direct, "pnyx_http_requests_total", STATE_ROUTE)

    def next_version(self) -> None:
        ok(self.direct.post(f"/v1/spaces/{self.space}/hand", headers=self.fan.auth))


@contextmanager
def quiet_space_behind_edge(tmp_path: Path) -> Iterator[QuietSpace]:
    with (
        pnyx_serve(tmp_path / "o", settings=QUIET) as origin,
        origin.client() as direct,
        nginx_edge([origin.url.removeprefix("http://")]) as edge,
    ):
        host, fan = new_user(direct, "h"), new_user(direct, "f")
        space = create_space(direct, host)
        yield QuietSpace(direct, edge.url, space, quiet_version(direct, space), fan)


def test_state_long_poll_collapses_to_one_origin_request(tmp_path: Path) -> None:
    waiting = 40
    with quiet_space_behind_edge(tmp_path) as q:
        before = q.origin_state_requests()

        def poll(_: int) -> tuple[int, str]:
            with httpx.Client(base_url=q.edge_url, timeout=30) as c:
                r = c.get(f"/v1/spaces/{q.space}/state", params={"after": q.version})
                return r.status_code, r.text

        with ThreadPoolExecutor(waiting) as pool:
            futures = [pool.submit(poll, i) for i in range(waiting)]
            # However many listeners wait at the edge, the origin holds one long-poll.
            wait_until(lambda: _metric(q.direct, "pnyx_state_waiters") == 1, 10, "1 waiter")
            q.next_version()
            results = [f.result(timeout=30) for f in futures]
        assert {status for status, _ in results} == {200}
        assert len({body for _, body in results}) == 1  # one copy served to all
        assert '"count":1' in results[0][1]
        after = q.origin_state_requests()
        assert after - before == 1, (before, after)


# nginx counts the requests for an object still being fetched in a 10-bit field: without
# ``proxy_cache_min_uses 0`` in the edge config, the 1,024th waiter sees the count wrap to 0
# and goes to the origin past the lock.
MANY = 1100


def _writing(edge_url: str) -> int:
    """Requests nginx has read and not yet answered (its stub_status "Writing")."""
    text = httpx.get(f"{edge_url}/edge-status", timeout=10).text
    found = re.search(r"Writing: (\d+)", text)
    assert found, text
    return int(found.group(1))


def _enough_descriptors(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        assert hard == resource.RLIM_INFINITY or hard >= n, f"open-files hard limit {hard} < {n}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


async def _get_all(port: int, request: bytes, n: int) -> list[asyncio.Task[bytes]]:
    """Send ``request`` on ``n`` connections; each task ends with the whole response."""

    async def one() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request)
            await writer.drain()
            return await asyncio.wait_for(reader.read(), timeout=30)
        finally:
            writer.close()

    return [asyncio.create_task(one()) for _ in range(n)]


def test_state_long_poll_stays_one_origin_request_past_1024_waiters(tmp_path: Path) -> None:
    _enough_descriptors(MANY + 256)
    with quiet_space_behind_edge(tmp_path) as q:
        before = q.origin_state_requests()
        port = int(q.edge_url.rsplit(":", 1)[1])
        request = (
            f"GET /v1/spaces/{q.space}/state?after={q.version} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ).encode()

        async def run() -> list[bytes]:
            tasks = await _get_all(port, request, MANY)
            # Every listener's request is inside nginx (the status request is one more)…
            await asyncio.to_thread(
                wait_until, lambda: _writing(q.edge_url) > MANY, 30, "all waiting"
            )
            # …then the version they wait for comes.
            await asyncio.to_thread(q.next_version)
            return list(await asyncio.gather(*tasks))

        answers = asyncio.run(run())
        heads = {a.split(b"\r\n", 1)[0] for a in answers}
        bodies = {a.split(b"\r\n\r\n", 1)[1] for a in answers}
        assert heads == {b"HTTP/1.1 200 OK"}
        assert len(bodies) == 1 and b'"count":1' in bodies.pop()
        after = q.origin_state_requests()
        assert after - before == 1, (before, after)


def test_cached_and_private_reads(tmp_path: Path) -> None:
    with (
        pnyx_serve(tmp_path / "o") as origin,
        origin.client() as direct,
        nginx_edge([origin.url.removeprefix("http://")]) as edge,
        httpx.Client(base_url=edge.url, timeout=30) as via_edge,
    ):
        host = new_user(direct, "h")
        space = create_space(direct, host)
        first = via_edge.get(f"/v1/spaces/{space}")
        second = via_edge.get(f"/v1/spaces/{space}")
        assert first.status_code == second.status_code == 200
        assert (first.headers["x-cache-status"], second.headers["x-cache-status"]) == (
            "MISS",
            "HIT",
        )
        # A stage member's read carries a token: never cached, never shared.
        private = via_edge.get(f"/v1/spaces/{space}/state", headers=host.auth)
        assert private.headers["x-cache-status"] == "BYPASS"
        assert private.json()["hands"]["handles"] == []
        public = via_edge.get(f"/v1/spaces/{space}/state")
        assert public.json()["hands"]["handles"] is None
        # Writes go straight through.
        joined = via_edge.post(f"/v1/spaces/{space}/join")
        assert joined.status_code == 200
        assert joined.headers.get("x-cache-status", "") == ""


def test_listeners_keep_reading_while_the_origin_is_down(tmp_path: Path) -> None:
    with pnyx_serve(tmp_path / "o") as origin, origin.client() as direct:
        host = new_user(direct, "h")
        space = create_space(direct, host)
        with (
            nginx_edge([origin.url.removeprefix("http://")]) as edge,
            httpx.Client(base_url=edge.url, timeout=30) as via_edge,
        ):
            v = via_edge.get(f"/v1/spaces/{space}/state").json()["version"]
            assert via_edge.get(f"/v1/spaces/{space}").status_code == 200
            origin.proc.send_signal(signal.SIGKILL)  # the origin dies
            origin.proc.wait()

            # After the cached copy expired (max-age=1), the edge serves it stale.
            def stale() -> bool:
                r = via_edge.get(f"/v1/spaces/{space}/state")
                return r.status_code == 200 and r.headers["x-cache-status"] == "STALE"

            wait_until(stale, 10, "a stale copy")
            assert via_edge.get(f"/v1/spaces/{space}/state").json()["version"] == v
            assert via_edge.get(f"/v1/spaces/{space}").status_code == 200


def test_passive_health_checks_route_around_a_dead_node(
    tmp_path: Path, redis_url: str, pg_database_url: str
) -> None:
    with (
        pnyx_serve(tmp_path / "a", database=pg_database_url, redis=redis_url) as a,
        pnyx_serve(tmp_path / "b", database=pg_database_url, redis=redis_url) as b,
        a.client() as direct,
        nginx_edge([a.url.removeprefix("http://"), b.url.removeprefix("http://")]) as edge,
        httpx.Client(base_url=edge.url, timeout=30) as via_edge,
    ):
        host = new_user(direct, "h")
        space = create_space(direct, host)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        statuses = [
            via_edge.get("/v1/spaces", params={"state": "live"}).status_code for _ in range(20)
        ]
        assert statuses == [200] * 20
        # A cache miss for a read goes to the live node too.
        assert via_edge.get(f"/v1/spaces/{space}/state", params={"after": 0}).status_code == 200
