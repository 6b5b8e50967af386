"""A webhook receiver the tests run: a real HTTP server on a loopback port that checks
each delivery's Standard Webhooks signature, answers 500 to the first ``fail_first``
attempts of each message, and keeps every attempt it saw."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pnyx.services import webhook_signing as signing


@dataclass(frozen=True)
class Attempt:
    path: str
    msg_id: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    signature_ok: bool | None  # None: no secret known for the path yet

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    url: str
    fail_first: int = 0  # answer 500 to this many attempts of each message
    secrets: dict[str, str] = field(default_factory=dict)  # path → whsec_…
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self, path: str | None = None) -> list[Attempt]:
        """The attempts answered 2xx (a message delivered), optionally to one path."""
        with self.lock:
            return [
                a
                for a in self.attempts
                if 200 <= a.status < 300 and (path is None or a.path == path)
            ]

    def of(self, msg_id: str) -> list[Attempt]:
        with self.lock:
            return [a for a in self.attempts if a.msg_id == msg_id]

    def events(self, path: str) -> list[str]:
        return [a.payload["type"] for a in self.delivered(path)]


@contextmanager
def webhook_receiver(port: int, *, fail_first: int = 0) -> Iterator[Receiver]:
    receiver = Receiver(url=f"http://127.0.0.1:{port}", fail_first=fail_first)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            msg_id = headers.get("webhook-id", "")
            secret = receiver.secrets.get(self.path)
            ok: bool | None = None
            if secret is not None:
                try:
                    signing.verify(secret, headers, body, now=time.time())
                    ok = True
                except signing.BadSignature:
                    ok = False
            with receiver.lock:
                seen = sum(1 for a in receiver.attempts if a.msg_id == msg_id)
                status = 500 if seen < receiver.fail_first or ok is False else 204
                receiver.attempts.append(Attempt(self.path, msg_id, headers, body, status, ok))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
