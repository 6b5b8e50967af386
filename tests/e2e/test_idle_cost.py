"""What live spaces cost a stage node when nobody publishes and nobody listens: about
nothing. Twenty idle spaces (media running: LL-HLS parts keep coming for a listener who
joins) must cost the ``pnyx serve`` process under a tenth of a core.

Before the idle path (issue #11), the same 20 spaces cost 0.26 of a core (0.34 with the
tests' fast clocks): every space mixed, AAC-encoded and packaged silence 50 times a
second. After: 0.05 (0.08 with the fast clocks).

What remains is packaging: each part of silence is still made, stored and published, so
the cost grows with the part rate. This test is about the idle path (no mixing, no
encoding), so it runs with the 0.32 s parts it was measured with (``hls_part_frames``
15); with the default 0.128 s parts the same 20 spaces cost about 0.15 of a core
(docs/architecture.md, Open work)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.support.api import create_space, new_user, ok
from tests.support.hls import parse_playlist
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import wait_until

pytestmark = pytest.mark.e2e

SPACES = 20
MEASURE_S = 20.0
MAX_CORE_SHARE = 0.10  # of one core, for all 20 spaces together
SETTINGS = {"host_grace_s": "600", "hls_part_frames": "15"}  # 0.32 s parts (the docstring)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def media_sequence(c: httpx.Client, space: str) -> int | None:
    r = c.get(f"/media/{space}/plain.m3u8")
    if r.status_code != 200:
        return None
    playlist = parse_playlist(r.text)
    return playlist.media_sequence + len(playlist.segments)


def core_share(node: PnyxProcess, seconds: float) -> float:
    before, began = cpu_seconds(node.pid), time.monotonic()
    wait_until(lambda: time.monotonic() - began >= seconds, seconds + 5, "the measurement")
    return (cpu_seconds(node.pid) - before) / (time.monotonic() - began)


def test_idle_live_spaces_cost_almost_no_cpu(tmp_path: Path) -> None:
    # The production cadences (not the tests' fast clocks), and a long grace: the spaces
    # must stay live, their media running, throughout.
    with (
        pnyx_serve(tmp_path, settings=SETTINGS, fast=False) as node,
        node.client() as c,
    ):
        spaces = []
        for _ in range(SPACES):
            host = new_user(c, "idle")
            spaces.append(create_space(c, host))

        # Every space's media runs: its playlist grows (silence, for whoever joins).
        first = {
            s: wait_until(lambda s=s: media_sequence(c, s), 30, f"{s}'s media") for s in spaces
        }
        share = core_share(node, MEASURE_S)
        for s in spaces:
            assert ok(c.get(f"/v1/spaces/{s}"))["state"] == "live"
            assert (media_sequence(c, s) or 0) > first[s] + 5, f"{s}'s media stalled"
        print(f"{SPACES} idle live spaces: {share:.3f} of a core over {MEASURE_S:g} s")
        assert share < MAX_CORE_SHARE, f"{SPACES} idle spaces cost {share:.3f} of a core"
