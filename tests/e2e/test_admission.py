"""Admission control on a real node with a tiny in-flight budget: a listener flood
(joins, heartbeats, reactions from many threads) never costs the stage an action, never
refuses a read, and every refusal is a prompt 503 with Retry-After and the jitter hint.

(The exact shedding order is checked in process, with requests held open:
tests/integration/api/test_admission_middleware.py.)"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.api import create_space, join, ok, register
from tests.support.pnyx_server import pnyx_serve

pytestmark = pytest.mark.e2e

FLOOD_S = 4.0
THREADS = 12


def test_listener_flood_never_costs_the_stage(tmp_path: Path) -> None:
    with pnyx_serve(tmp_path, settings={"max_inflight": "8"}) as node, node.client() as c:
        host = register(c, "host_adm")
        space = create_space(c, host)
        assert join(c, space).heartbeat_s == 1.0  # FAST's base interval, before any load

        stop = threading.Event()
        lock = threading.Lock()
        seen: collections.Counter[tuple[str, int]] = collections.Counter()
        bad: list[str] = []

        def check_refusal(what: str, r: httpx.Response) -> None:
            if r.status_code != 503:
                return
            retry = r.headers.get("retry-after", "")
            problems = []
            if not retry.isdigit() or int(retry) < 1:
                problems.append(f"Retry-After {retry!r}")
            if "pnyx-retry-jitter" not in r.headers:
                problems.append("no jitter hint")
            if r.json()["error"]["code"] != "overloaded":
                problems.append(r.text)
            if r.elapsed.total_seconds() >= 1.0:
                problems.append(f"took {r.elapsed.total_seconds():.2f} s")
            if problems:
                with lock:
                    bad.append(f"{what}: {problems}")

        def listener_flood(n: int) -> None:
            with node.client() as lc:
                me = None
                while not stop.is_set():
                    r = lc.post(f"/v1/spaces/{space}/join")
                    with lock:
                        seen["join", r.status_code] += 1
                    check_refusal("join", r)
                    if r.status_code == 200:
                        me = {"Authorization": f"Bearer {r.json()['token']}"}
                    if me is None:
                        continue
                    for what, path, body in (
                        ("heartbeat", "heartbeat", None),
                        ("reaction", "reactions", {"emoji": "🔥"}),
                        ("leave", "leave", None),  # a listener action
                    ):
                        r = lc.post(f"/v1/spaces/{space}/{path}", json=body, headers=me)
                        with lock:
                            seen[what, r.status_code] += 1
                        check_refusal(what, r)

        def reader() -> None:
            with node.client() as rc:
                while not stop.is_set():
                    for path in (f"/v1/spaces/{space}/state", f"/v1/spaces/{space}"):
                        r = rc.get(path)
                        with lock:
                            seen["read", r.status_code] += 1

        threads = [threading.Thread(target=listener_flood, args=(i,)) for i in range(THREADS)]
        threads += [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        stage_failures = []
        stage_done = 0
        try:
            deadline = time.monotonic() + FLOOD_S
            i = 0
            while time.monotonic() < deadline:
                i += 1
                if i % 2:
                    r = c.put(
                        f"/v1/spaces/{space}/pin",
                        json={"url": f"https://example.org/{i}"},
                        headers=host.auth,
                    )
                else:
                    policy = "nobody" if i % 4 else "everyone"
                    r = c.put(
                        f"/v1/spaces/{space}/speak-policy",
                        json={"who_can_speak": policy},
                        headers=host.auth,
                    )
                stage_done += 1
                if r.status_code != 200:
                    stage_failures.append((r.status_code, r.text))
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=15)

        assert stage_done > 0
        assert stage_failures == []
        assert not bad, bad[:5]
        reads = {status for (what, status) in seen if what == "read"}
        assert reads == {200}, seen
        listener_statuses = {status for (what, status) in seen if what != "read"}
        # Reactions may also meet their per-listener rate limit (429).
        assert listener_statuses <= {200, 202, 204, 429, 503}, seen

        def refused(what: str) -> float:
            total = sum(n for (w, _), n in seen.items() if w == what)
            return seen[what, 503] / max(1, total)

        # Shedding order (rates, with a little slack for scheduling noise).
        rates = [refused(w) for w in ("reaction", "heartbeat", "join", "leave")]
        for higher, lower in itertools.pairwise(rates):
            assert higher >= lower - 0.05, (rates, seen)
        # The flood stops; the node serves listeners again.
        time.sleep(0.2)
        after = join(c, space)
        final = ok(c.get(f"/v1/spaces/{space}/state"))
        assert final["pinned"] is not None
        # Heartbeats were shed: the interval the node hands out is raised (x4 of FAST's
        # 1 s) for admission_hold_s, in the join response and the state alike.
        assert seen["heartbeat", 503] > 0, seen
        assert after.heartbeat_s == final["heartbeat_s"] == 4.0
