"""Requests per second of one low-latency listener: the web client's player (hls.js in
headless Chromium) and a wrk connection running bench/wrk/llhls.lua, through one edge.

A deployment as bench/scale_support.py builds it (Redis, one origin with production
clocks, the nginx + Varnish edge, a host publishing a tone). Chromium opens the space's
page through the edge, presses Play and, once it plays live, every request the page
makes for ``--seconds`` is counted by kind (playlist reloads, parts, segments, init,
heartbeats, state, other). Then ``--wrk-connections`` wrk listeners run as long against the
same edge. Both are printed as requests/s per listener, side by side, with what the
audience size of bench/listener_latency_edge.py needs.

    .venv/bin/python bench/player_requests.py --seconds 30
"""

from __future__ import annotations

import argparse
import re
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import scale_support
import wrk_audience
from scale_support import deployment

KINDS = [
    ("blocking playlist reload", re.compile(r"/live\.m3u8\?.*_HLS_msn=")),
    ("plain playlist reload", re.compile(r"/live\.m3u8(\?|$)")),
    ("part", re.compile(r"/part/[^/]+$")),
    ("segment", re.compile(r"/seg/[^/]+$")),
    ("init", re.compile(r"/init[^/]*$")),
    ("heartbeat", re.compile(r"/heartbeat$")),
    ("state", re.compile(r"/state(\?|$)")),
]


def kind_of(url: str) -> str:
    path = url.split("://", 1)[-1].split("/", 1)[-1]
    for name, pattern in KINDS:
        if pattern.search("/" + path):
            return name
    return "other"


def browser_rates(edge_url: str, space: str, seconds: float) -> tuple[dict[str, float], str]:
    """Requests/s by kind of one Chromium playing the space, and its player engine."""
    from playwright.sync_api import expect
    from tests.support.browser import chromiums, require_browser, tone_wav

    require_browser()
    quiet = tone_wav(Path(tempfile.mkdtemp(prefix="pnyx-player-req-")) / "q.wav", 300.0)
    counts: Counter[str] = Counter()
    counting = threading.Event()

    def on_request(request: Any) -> None:
        if counting.is_set():
            counts[kind_of(request.url)] += 1

    with chromiums(edge_url, quiet) as bs:
        page, _ = bs[0].page("listener")
        page.on("request", on_request)
        page.goto(f"/s/{space}")
        page.get_by_role("button", name="Play the space").click()
        expect(page.locator("#player-status")).to_have_text("Playing live.", timeout=30_000)
        page.wait_for_timeout(5_000)  # past the start (init, the first reloads)
        counting.set()
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            page.wait_for_timeout(500)  # the driver delivers the page's events meanwhile
        counting.clear()
        elapsed = time.monotonic() - t0
        engine = str(page.evaluate("pnyx.space.playerEngine"))
    return {k: v / elapsed for k, v in counts.items()}, engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--wrk-connections", type=int, default=100)
    args = ap.parse_args()
    scale_support.header("requests/s of one low-latency listener: hls.js and a wrk connection")
    with deployment({"low_latency_max_listeners": "1000000"}) as d:
        browser, engine = browser_rates(d.edge.url, d.space, args.seconds)
        url = f"{d.edge.url}/media/{d.space}/live.m3u8"
        wrk = wrk_audience.run(url, args.wrk_connections, args.seconds)
    reloads, parts = browser.get("blocking playlist reload", 0.0), browser.get("part", 0.0)
    wrk_reloads = wrk.per_listener_per_s * wrk.playlists / (wrk.playlists + wrk.parts)
    print(f"\nplayer engine: {engine}; parts of {wrk.part_s:g} s; {args.seconds} s counted")
    print("\n| listener | requests/s | blocking reloads + parts | the rest |")
    print("| --- | --- | --- | --- |")
    rest = ", ".join(
        f"{k} {v:.2f}"
        for k, v in sorted(browser.items())
        if k not in ("blocking playlist reload", "part")
    )
    print(
        f"| Chromium, the web client ({engine}) | {sum(browser.values()):.2f} | "
        f"{reloads:.2f} + {parts:.2f} | {rest or '—'} |"
    )
    print(
        f"| wrk, bench/wrk/llhls.lua (mean of {wrk.connections}) | "
        f"{wrk.per_listener_per_s:.2f} | {wrk_reloads:.2f} + "
        f"{wrk.per_listener_per_s - wrk_reloads:.2f} | — |"
    )
    print(f"wanted (2 per part): {2 / wrk.part_s:.2f}; wrk errors {wrk.errors}")


if __name__ == "__main__":
    main()
