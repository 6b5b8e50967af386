"""The front row (push tier) through a real nginx edge with nchan: a stage node encodes
the program as Opus once per space and posts it to the edge, which fans it out to
listeners' WebSockets. What a listener receives decodes to the host's tone."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import websockets

from pnyx.config import Settings
from pnyx.edge_frontrow import NCHAN_MODULE, FrontRow
from pnyx.protocol.frontrow import FRAME_SAMPLES
from tests.support import tones
from tests.support.api import create_space, new_user
from tests.support.frontrow import FrontRowClient
from tests.support.nginx import Edge, nginx_edge
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.procs import IN_CI, free_port, require_binary
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

HOST_HZ, OTHER_HZ = 523.0, 1229.0
RATE = 48_000


def require_nchan() -> None:
    if not Path(NCHAN_MODULE).exists():
        msg = f"the front row needs nginx's nchan module ({NCHAN_MODULE}: libnginx-mod-nchan)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PnyxProcess, Edge]]:
    require_binary("nginx", "/usr/sbin")
    require_nchan()
    edge_port = free_port()
    settings = {"frontrow_publish_urls": f"http://127.0.0.1:{edge_port}/frontrow/pub/"}
    with pnyx_serve(Path(tmp_path_factory.mktemp("frontrow")), settings=settings) as node:
        upstream = node.url.removeprefix("http://")
        with nginx_edge([upstream], frontrow=FrontRow(), port=edge_port) as edge:
            yield node, edge


def test_edge_config_with_the_front_row_is_valid_nginx(tmp_path: Path) -> None:
    nginx = require_binary("nginx", "/usr/sbin")
    require_nchan()
    conf = tmp_path / "nginx.conf"
    args = ["edge-config", "--listen", "127.0.0.1:18080", "--cache-dir", str(tmp_path / "c")]
    args += ["--upstream", "127.0.0.1:18001", "--state-dir", str(tmp_path / "s")]
    args += ["--frontrow", "--frontrow-publisher", "10.0.0.0/8", "--output", str(conf)]
    subprocess.run([sys.executable, "-m", "pnyx.cli", *args], check=True, capture_output=True)
    text = conf.read_text()
    assert text.startswith("# nginx.conf") and f"load_module {NCHAN_MODULE};" in text
    assert "allow 10.0.0.0/8;" in text
    checked = subprocess.run(
        [nginx, "-e", "stderr", "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "pnyx.cli", *args[:-2], "--frontrow-publisher", "nonsense"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "--frontrow-publisher" in bad.stderr


def test_the_front_row_through_the_edge_carries_the_hosts_tone(
    stack: tuple[PnyxProcess, Edge],
) -> None:
    node, edge = stack
    with node.client() as c:
        host = new_user(c, "fr_host")
        space = create_space(c, host)
        joined = c.post(f"/v1/spaces/{space}/join").json()
        assert joined["frontrow"] == {"url": f"/frontrow/{space}", "default": True}
        private = create_space(c, new_user(c, "fr_priv"), visibility="private")
        assert private.startswith("p-")

    async def scenario() -> FrontRowClient:
        track = ToneTrack(HOST_HZ, 0.2)
        speaker = await publish(node.url, space, host.token, track)
        try:
            ws = edge.http_url.replace("http://", "ws://") + f"/frontrow/{space}"
            client = FrontRowClient(ws)
            # The channel exists once the stage node has posted its first message.
            for _ in range(50):
                client = FrontRowClient(ws)
                await client.run(seconds=4.0)
                if client.failed is None or "403" not in str(client.failed):
                    break
                await asyncio.sleep(0.2)
            return client
        finally:
            await speaker.close()

    client = asyncio.run(scenario())
    assert client.failed is None, repr(client.failed)
    seqs = [a.message.seq for a in client.arrivals]
    assert len(seqs) > 50, len(seqs)
    # in order, none lost on loopback; each message continues the last one's media time
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    for a, b in zip(client.arrivals, client.arrivals[1:], strict=False):
        assert b.message.media_time == a.message.end_time
    default_batch = Settings.model_fields["frontrow_batch_frames"].default
    assert {len(a.message.frames) for a in client.arrivals} == {default_batch}
    _, samples, _ = client.decode()
    assert len(samples) >= 3 * RATE
    tail = samples[-2 * RATE :]
    heard = tones.dominant_tones(tail, RATE, (HOST_HZ, OTHER_HZ))
    assert heard == {HOST_HZ}, tones.describe(tail, (HOST_HZ, OTHER_HZ))
    # messages come about every batch (60 ms by default), not in bursts
    gaps = np.diff([a.at for a in client.arrivals[10:]])
    assert float(np.median(gaps)) == pytest.approx(default_batch * FRAME_SAMPLES / RATE, abs=0.01)


def test_front_row_paths_that_are_not_a_live_space_are_4xx(
    stack: tuple[PnyxProcess, Edge],
) -> None:
    _, edge = stack
    ws = edge.http_url.replace("http://", "ws://")

    async def status(path: str) -> tuple[int, str]:
        try:
            async with websockets.connect(ws + path, open_timeout=5):
                return 101, ""
        except websockets.InvalidStatus as exc:
            return exc.response.status_code, (exc.response.body or b"").decode()

    async def all_of() -> list[tuple[int, str]]:
        return [
            await status("/frontrow/no-such-space"),
            await status("/frontrow/p-private1"),
            await status("/frontrow/a/b"),
            await status("/frontrow/bad$name"),
        ]

    unknown, private, nested, bad = asyncio.run(all_of())
    assert unknown[0] == 403
    assert private[0] == 403 and "private" in private[1]
    assert nested[0] == 404 and "/frontrow/<space id>" in nested[1]
    assert bad[0] == 404
    with httpx.Client(base_url=edge.http_url) as c:
        plain = c.get("/frontrow/no-such-space")  # not a WebSocket
        assert 400 <= plain.status_code < 500


def test_only_listed_addresses_publish(tmp_path: Path) -> None:
    require_nchan()
    with nginx_edge(["127.0.0.1:9"], frontrow=FrontRow(publishers=("10.9.9.0/24",))) as edge:
        r = httpx.post(
            f"{edge.http_url}/frontrow/pub/abc",
            content=b"x",
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 403 and "only stage nodes" in r.text


def test_the_stage_node_publishes_again_to_an_edge_that_came_back(tmp_path: Path) -> None:
    """An edge restarts (nchan's channels and the node's WebSocket are gone): the node
    reconnects by itself and its listeners get the program again."""
    require_binary("nginx", "/usr/sbin")
    require_nchan()
    edge_port = free_port()
    settings = {"frontrow_publish_urls": f"http://127.0.0.1:{edge_port}/frontrow/pub/"}
    with pnyx_serve(tmp_path / "node", settings=settings) as node:
        upstream = node.url.removeprefix("http://")
        with node.client() as c:
            host = new_user(c, "fr_back")
            space = create_space(c, host)

        async def listen(edge: Edge) -> FrontRowClient:
            ws = edge.http_url.replace("http://", "ws://") + f"/frontrow/{space}"
            for _ in range(60):
                client = FrontRowClient(ws)
                await client.run(seconds=1.5)
                if client.arrivals:
                    return client
                await asyncio.sleep(0.25)
            return client

        async def speak() -> tuple[FrontRowClient, FrontRowClient]:
            speaker = await publish(node.url, space, host.token, ToneTrack(HOST_HZ, 0.2))
            try:
                with nginx_edge([upstream], frontrow=FrontRow(), port=edge_port) as edge:
                    first = await listen(edge)
                # the edge is gone: the node's posts fail (counted), the mix goes on
                with nginx_edge([upstream], frontrow=FrontRow(), port=edge_port) as edge:
                    second = await listen(edge)
                return first, second
            finally:
                await speaker.close()

        first, second = asyncio.run(speak())
        assert first.arrivals and second.arrivals, (first.failed, second.failed)
        # the same stream: its media time went on while the edge was away
        assert second.arrivals[0].message.media_time > first.arrivals[-1].message.media_time
        _, samples, _ = second.decode()
        assert tones.dominant_tones(samples[-RATE // 2 :], RATE, (HOST_HZ, OTHER_HZ)) == {HOST_HZ}
        metrics = httpx.get(f"{node.url}/metrics").text
        assert 'pnyx_frontrow_posts_total{outcome="failed"}' in metrics
