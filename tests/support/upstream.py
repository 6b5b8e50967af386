"""A stand-in origin for edge-only tests: a stdlib HTTP server on a free loopback port that
answers every GET with 200 (``public, max-age=60``) after ``delay_s``, its body naming the
request it saw, and remembers every request. What it counts is what reached a node."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.procs import free_port


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str  # as sent: path and query
    host: str
    authorization: str


@dataclass
class CountingUpstream:
    address: str  # HOST:PORT, for an edge's upstream list
    delay_s: float
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, prefix: str = "") -> int:
        with self.lock:
            return sum(s.path.startswith(prefix) for s in self.seen)

    def paths(self) -> list[str]:
        with self.lock:
            return [s.path for s in self.seen]

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()


@contextmanager
def counting_upstream(delay_s: float = 0.0) -> Iterator[CountingUpstream]:
    port = free_port()
    upstream = CountingUpstream(f"127.0.0.1:{port}", delay_s)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen = Seen(
                "GET",
                self.path,
                self.headers.get("Host", ""),
                self.headers.get("Authorization", ""),
            )
            with upstream.lock:
                upstream.seen.append(seen)
            time.sleep(upstream.delay_s)  # a request the node holds: lets waiters pile up
            body = f"origin saw {self.path} host={seen.host}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "public, max-age=60")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="counting-upstream")
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
