"""bench/wrk/llhls.lua's playlist parsing, with wrk itself against a small HTTP server
that serves made-up live playlists (a media sequence far from 0, a sliding window of
segments, open parts), with and without a preload hint: every round asks for the part
right after the newest one listed, then that part (the hint's URI, or else the last part
listed); and with playlists gzipped, as the edge sends them to a client that asks (every
request does, as a browser's): each distinct one inflated once, none failing."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.procs import free_port, require_binary

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "wrk" / "llhls.lua"
PARTS_PER_SEGMENT = 4
WINDOW = 3  # whole segments listed
START = 417  # parts published when the run starts: segment 104, part 1 is the next one


@dataclass
class Live:
    """A live stream that publishes the part a blocking reload asks for, at once."""

    hint: bool
    zipped: bool = False  # gzip playlists for a request that takes it
    published: int = START
    blocking: list[tuple[int, int]] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def playlist(self) -> str:
        k = PARTS_PER_SEGMENT
        whole, open_parts = divmod(self.published, k)
        first = max(0, whole - WINDOW)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:9",
            "#EXT-X-TARGETDURATION:1",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.75",
            "#EXT-X-PART-INF:PART-TARGET=0.25",
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
            '#EXT-X-MAP:URI="init.mp4"',
        ]
        for s in range(first, whole):
            for p in range(k):
                lines.append(f'#EXT-X-PART:DURATION=0.25,URI="part/{s}.{p}.m4s"')
            lines += ["#EXTINF:1.0,", f"seg/{s}.m4s"]
        for p in range(open_parts):
            lines.append(f'#EXT-X-PART:DURATION=0.25,URI="part/{whole}.{p}.m4s"')
        if self.hint:
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/{whole}.{open_parts}.m4s"')
        return "\n".join(lines) + "\n"


@contextmanager
def serving(live: Live) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            encoding = ""
            with live.lock:
                if path == "/media/s/live.m3u8":
                    found = re.fullmatch(r"_HLS_msn=(\d+)&_HLS_part=(\d+)", query)
                    if found:
                        m, p = int(found.group(1)), int(found.group(2))
                        live.blocking.append((m, p))
                        live.published = max(live.published, m * PARTS_PER_SEGMENT + p + 1)
                    body = live.playlist().encode()
                    takes_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
                    if live.zipped and takes_gzip:
                        body = gzip.compress(body, mtime=0)  # one version, the same bytes
                        encoding = "gzip"
                elif path.startswith("/media/s/part/"):
                    live.parts.append(path.removeprefix("/media/s/"))
                    body = b"\0" * 100
                else:
                    live.other.append(self.path)
                    body = b""
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            if encoding:
                self.send_header("Content-Encoding", encoding)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    ("hint", "zipped"),
    [(True, False), (False, False), (True, True)],
    ids=["preload hint", "no hint", "gzipped"],
)
def test_each_round_asks_for_the_next_part_then_that_part(
    hint: bool, zipped: bool, tmp_path: Path
) -> None:
    wrk = require_binary("wrk")
    live = Live(hint=hint, zipped=zipped)
    report = tmp_path / "report.json"
    with serving(live) as port:
        subprocess.run(
            [wrk, "-t1", "-c2", "-d2s", "-s", str(SCRIPT),
             f"http://127.0.0.1:{port}/media/s/live.m3u8"],
            env={**os.environ, "PNYX_WRK_REPORT": str(report)},
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
    out = json.loads(report.read_text())
    assert live.other == [] and out["status_4xx"] == 0, (live.other, out)

    # the first blocking reload asks for the part after the newest listed at the start
    k = PARTS_PER_SEGMENT
    assert live.blocking[0] == divmod(START, k), live.blocking[:3]
    assert (out["first_msn"], out["first_part"]) == ([START // k], [START % k]), out
    # then, round after round, the one after: never a part skipped or asked backwards
    distinct = list(dict.fromkeys(live.blocking))
    positions = [m * k + p for m, p in distinct]
    assert len(positions) >= 10, distinct
    assert positions == list(range(positions[0], positions[0] + len(positions))), distinct
    assert sorted(set(live.blocking)) == distinct, "asked for an older part after a newer one"
    # the part fetched with each reload: the hinted one, or else the newest listed
    wanted = {f"part/{m}.{p}.m4s" for m, p in distinct}
    if not hint:
        wanted = {f"part/{(pos - 1) // k}.{(pos - 1) % k}.m4s" for pos in positions}
    assert set(live.parts) <= wanted | {f"part/{(START - 1) // k}.{(START - 1) % k}.m4s"}, (
        sorted(set(live.parts))[:5],
        sorted(wanted)[:5],
    )
    assert len(live.parts) >= len(positions) - 2, (len(live.parts), len(positions))
    if zipped:
        # every playlist came zipped and inflated; two listeners share each version's inflate
        assert out["gzipped"] == out["playlists"] and out["bad_gzip"] == 0, out
        assert out["parsed"] == out["inflated"] <= out["gzipped"] // 2 + 2, out
    else:
        assert out["gzipped"] == 0 and out["inflated"] == 0, out
