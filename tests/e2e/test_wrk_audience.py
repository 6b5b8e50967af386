"""bench/wrk_audience.py (wrk with bench/wrk/llhls.lua) against a real node behind a real
nginx edge: its listeners follow the live playlist part by part (the script's playlist
parsing finds the next part), with no 4xx/5xx, at the request rate a low-latency player
makes (2 requests per part)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_loadtest import segments_listed
from tests.support.api import create_space, new_user
from tests.support.nginx import Edge, nginx_edge
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.procs import require_binary
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

WRAPPER = Path(__file__).resolve().parents[2] / "bench" / "wrk_audience.py"
LISTENERS = 40
SECONDS = 4


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    with pnyx_serve(Path(tmp_path_factory.mktemp("wrk"))) as n:
        yield n


@pytest.fixture(scope="module")
def edge(node: PnyxProcess) -> Iterator[Edge]:
    with nginx_edge([node.url.removeprefix("http://")]) as e:
        yield e


def position(msn_part: str, parts_per_segment: int) -> int:
    """A part's place in the stream, counted in parts, from "msn.part"."""
    m, p = msn_part.split(".")
    return int(m) * parts_per_segment + int(p)


async def test_wrk_listeners_follow_the_live_edge_part_by_part(
    node: PnyxProcess, edge: Edge, c: httpx.Client
) -> None:
    require_binary("wrk")
    host = new_user(c, "wrk_host")
    space = create_space(c, host)
    speaker = await publish(node.url, space, host.token, ToneTrack(440.0))
    try:
        await speaker.connected()
        url = f"{edge.url}/media/{space}/live.m3u8"
        await segments_listed(url, within=20, count=2)
        # the speaker keeps publishing from this event loop while wrk runs
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(WRAPPER), url, "--connections", str(LISTENERS),
            "--threads", "2", "--seconds", str(SECONDS),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(proc.communicate(), SECONDS + 40)
        assert proc.returncode == 0, (stdout + stderr).decode()
        out = json.loads(stdout)
        async with httpx.AsyncClient(timeout=5) as http:
            live = (await http.get(url)).text
    finally:
        await speaker.close()

    # no bad answers, nothing lost
    assert out["http_4xx"] == 0 and out["http_5xx"] == 0, out
    assert sum(out["socket_errors"].values()) == 0, out
    assert out["parts"] > 0 and out["playlists"] > 0, out
    # every request took gzip (as a browser's does): every playlist came zipped, and inflated
    assert out["gzipped"] == out["playlists"] and out["bad_gzip"] == 0, out

    # each thread followed the live playlist forward, part by part, up to where it is now
    part_s = out["part_s"]
    # (older segments are listed without their parts: count by durations)
    segment_s = re.search(r"#EXTINF:([0-9.]+),", live)
    assert segment_s is not None, live
    parts_per_segment = round(float(segment_s.group(1)) / part_s)
    assert parts_per_segment >= 1, live
    hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="[^"]*?(\d+)\.(\d+)\.m4s"', live)
    assert hint is not None, live
    now = position(f"{hint.group(1)}.{hint.group(2)}", parts_per_segment)
    published = out["seconds"] / part_s
    for first, last in zip(out["first"], out["last"], strict=True):
        a, b = position(first, parts_per_segment), position(last, parts_per_segment)
        assert b > a, out
        # the last part a thread learnt is no more than 1 s of parts behind the live edge
        assert now - b <= 1.0 / part_s + 1, (now, b, out)
    assert out["parts_followed"] >= 0.6 * published, out

    # a player's request rate: a blocking reload and a part per part, per listener
    wanted = 2 / part_s
    assert 0.6 * wanted <= out["per_listener_per_s"] <= 1.5 * wanted, out
