"""``pnyx loadtest`` against a real node behind a real nginx edge: simulated listeners
hear a live space without stalls and are counted; a small join storm is served while the
scripted stage keeps acting without failures."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import create_space, new_user
from tests.support.nginx import Edge, nginx_edge
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import Seen, eventually
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

LISTENERS = 50
DURATION_S = 20


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    with pnyx_serve(Path(tmp_path_factory.mktemp("loadtest"))) as n:
        yield n


@pytest.fixture(scope="module")
def edge(node: PnyxProcess) -> Iterator[Edge]:
    with nginx_edge([node.url.removeprefix("http://")]) as e:
        yield e


def loadtest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pnyx.cli", "loadtest", *args]


async def segments_listed(
    url: str, within: float, count: int, *, verify: ssl.SSLContext | bool = True
) -> None:
    """Wait until the live playlist at ``url`` lists ``count`` whole segments."""
    async with httpx.AsyncClient(verify=verify, timeout=5) as http:

        async def listed() -> Seen:
            r = await http.get(url)
            ok = r.status_code == 200 and r.text.count("#EXTINF") >= count
            return Seen(ok, f"{r.status_code} {r.text[:300]!r}")

        await eventually(listed, within, f"{count} segments in {url}", interval=0.2)


async def test_listeners_hear_a_live_space_through_the_edge(
    node: PnyxProcess, edge: Edge, c: httpx.Client, tmp_path: Path
) -> None:
    host = new_user(c, "lt_host")
    space = create_space(c, host)
    speaker = await publish(node.url, space, host.token, ToneTrack(523.0))
    try:
        await speaker.connected()
        await segments_listed(f"{edge.url}/media/{space}/live.m3u8", within=20, count=2)
        out = tmp_path / "listeners.json"
        proc = await asyncio.create_subprocess_exec(
            *loadtest(
                "listeners",
                "--url",
                edge.url,
                "--space",
                space,
                "--listeners",
                str(LISTENERS),
                "--duration-s",
                str(DURATION_S),
                "--ramp-s",
                "2",
                "--react-every-s",
                "4",
                "--json",
                str(out),
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), DURATION_S + 30)
    finally:
        await speaker.close()
    assert proc.returncode == 0, stderr.decode()
    assert b"stalls:" in stdout
    assert b"active=" in stderr  # progress lines
    report: dict[str, Any] = json.loads(out.read_text())
    for key in (
        "config",
        "listeners",
        "joins",
        "requests",
        "http_errors",
        "stalls",
        "count",
        "rate",
        "cpu",
        "behind_live_s",
        "series",
    ):
        assert key in report, key
    assert report["listeners"]["started"] == LISTENERS
    assert report["joins"]["accepted"] == LISTENERS
    assert report["listeners"]["playing"] == LISTENERS
    assert report["stalls"]["total"] == 0, report["stalls"]
    assert report["rate"]["media_bytes"] > 0
    assert report["requests"]["part"]["count"] + report["requests"]["segment"]["count"] > 0
    assert report["requests"]["heartbeat"]["count"] > 0  # test nodes ask every second
    assert report["reactions"]["sent"] > 0
    assert report["reactions"]["refused"] == 0
    count = report["count"]
    assert count["truth"] == LISTENERS
    assert count["rel_error"] is not None and abs(count["rel_error"]) <= 0.2, count
    assert report["cpu"]["cpu_per_request_us"] > 0
    assert len(report["series"]) >= DURATION_S - 3


def test_join_storm_with_a_scripted_stage(edge: Edge, tmp_path: Path) -> None:
    out = tmp_path / "storm.json"
    done = subprocess.run(
        loadtest(
            "joinstorm",
            "--url",
            edge.url,
            "--rate",
            "50",
            "--ramp-s",
            "2",
            "--duration-s",
            "8",
            "--json",
            str(out),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["not_sent"] == 0
    assert report["accepted"] > 0
    assert report["offered"] == report["accepted"] + report["refused"] + report["errors"]
    assert report["all_refusals_had_retry_after"]
    stage = report["stage"]
    assert stage["actions"] > 0 and stage["failures"] == 0, stage
    assert report["join_ms"]["p50_ms"] is not None
    assert report["accepted_per_s"]


def test_setup_errors_exit_nonzero(edge: Edge) -> None:
    missing = subprocess.run(
        loadtest(
            "listeners",
            "--url",
            edge.url,
            "--space",
            "no_such_space",
            "--listeners",
            "1",
            "--duration-s",
            "1",
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2
    assert "not found" in missing.stderr


async def test_http_client_keep_alive_close_and_timeout() -> None:
    """The lean client reuses a connection, reconnects after ``Connection: close``, and
    gives up on an answer that does not come in time (a tiny loopback server)."""
    from pnyx.loadtest.http import TIMEOUT, Conn, RequestFailed, get_bytes

    connections = 0
    handlers: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                if path == b"/slow":
                    await asyncio.sleep(2)
                close = path == b"/close"
                body = b"hello " + path
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nRetry-After: 3\r\n%s\r\n%s"
                    % (len(body), b"Connection: close\r\n" if close else b"", body)
                )
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = Conn("127.0.0.1", port)
    host = f"127.0.0.1:{port}".encode()
    try:
        first = await conn.request(get_bytes(b"/a", host), limit_s=5)
        second = await conn.request(get_bytes(b"/close", host), limit_s=5)
        third = await conn.request(get_bytes(b"/b", host), limit_s=5)
        assert (first.status, first.body, first.header(b"retry-after")) == (200, b"hello /a", "3")
        assert second.body == b"hello /close" and third.body == b"hello /b"
        assert connections == 2  # one reuse, one reconnect after the close
        counted = await conn.request(get_bytes(b"/c", host), limit_s=5, keep_body=False)
        assert counted.body == b"" and counted.nbytes == len(b"hello /c")
        with pytest.raises(RequestFailed) as failed:
            await conn.request(get_bytes(b"/slow", host), limit_s=0.2)
        assert failed.value.kind == TIMEOUT
        again = await conn.request(get_bytes(b"/d", host), limit_s=5)  # a fresh connection
        assert again.body == b"hello /d" and connections == 3
    finally:
        conn.close()
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
