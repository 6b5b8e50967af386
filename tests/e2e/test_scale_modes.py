"""What a node does for a big audience, on a real node: players are told to switch to
standard latency above a listener threshold (and back, below 80% of it), and new joins
are capped at a per-process rate — refused at once with Retry-After and the jitter hint,
while the stage keeps acting."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from tests.support.api import Heartbeats, create_space, join, ok, register, wait_state
from tests.support.pnyx_server import pnyx_serve

pytestmark = pytest.mark.e2e


def test_a_growing_audience_is_moved_to_standard_latency_and_back(tmp_path: Path) -> None:
    with (
        pnyx_serve(tmp_path, settings={"low_latency_max_listeners": "3"}) as node,
        node.client() as c,
    ):
        host = register(c, "host_lat")
        space = create_space(c, host)
        first = ok(c.post(f"/v1/spaces/{space}/join"))
        assert first["latency"] == "low"
        crowd = [join(c, space) for _ in range(5)]
        with Heartbeats(node.url, space, crowd, every_s=0.5):
            s = wait_state(c, space, lambda s: s["latency"] == "standard")
            assert s["listeners"] > 3
            assert ok(c.post(f"/v1/spaces/{space}/join"))["latency"] == "standard"
        # Everyone stops: the count falls below 80% of 3 and players go back to low.
        s = wait_state(c, space, lambda s: s["latency"] == "low", timeout=20)
        assert s["listeners"] < 3


def test_joins_beyond_the_rate_are_refused_at_once_and_the_stage_acts(tmp_path: Path) -> None:
    with (
        pnyx_serve(tmp_path, settings={"admit_join_rate": "20"}) as node,
        node.client() as c,
    ):
        host = register(c, "host_rate")
        space = create_space(c, host)
        accepted = refused = 0
        deadline = time.monotonic() + 10
        while refused < 20 and time.monotonic() < deadline:
            r = c.post(f"/v1/spaces/{space}/join")
            if r.status_code == 200:
                accepted += 1
                continue
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "overloaded"
            assert int(r.headers["retry-after"]) >= 1
            assert float(r.headers["pnyx-retry-jitter"]) > 0
            assert r.elapsed.total_seconds() < 1.0
            refused += 1
            # the stage is never refused, whatever the joins do
            link = f"https://example.org/{refused}"
            pinned = ok(c.put(f"/v1/spaces/{space}/pin", json={"url": link}, headers=host.auth))
            assert pinned["pinned"] == link
        assert refused >= 20
        elapsed = 10 - (deadline - time.monotonic())
        # one second's burst plus the rate over the elapsed time
        assert 20 <= accepted <= 20 + 20 * elapsed + 1


def test_a_big_audience_gets_counts_every_few_seconds_not_every_tick(tmp_path: Path) -> None:
    every = 2.5
    settings = {"low_latency_max_listeners": "0", "big_audience_stats_s": str(every)}
    with pnyx_serve(tmp_path, settings=settings) as node, node.client() as c:
        host = register(c, "host_cadence")
        space = create_space(c, host)
        seen: list[tuple[float, int]] = []
        stop = threading.Event()

        def watch() -> None:
            with node.client() as w:
                s = ok(w.get(f"/v1/spaces/{space}/state"))
                while not stop.is_set():
                    s2 = ok(w.get(f"/v1/spaces/{space}/state", params={"after": s["version"]}))
                    if s2["listeners"] != s["listeners"]:
                        seen.append((time.monotonic(), s2["listeners"]))
                    s = s2

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        # A crowd growing by four listeners a second: a new count every tick (0.2 s) if
        # nothing held it back.
        deadline = time.monotonic() + 9
        while time.monotonic() < deadline:
            join(c, space)
            time.sleep(0.25)
        stop.set()
        watcher.join(timeout=10)
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(seen)]
        assert len(seen) >= 2, seen
        assert min(gaps) >= every - 0.5, gaps
