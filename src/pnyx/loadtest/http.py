"""A lean HTTP/1.1 keep-alive client: one asyncio Protocol per connection, httptools for
parsing, requests handed in pre-encoded as bytes.

A general-purpose client (URL objects, header multidicts, middleware) spends more CPU per
request than a whole simulated listener may. Here a request is ``conn.request(data)``:
one write of ready bytes, one parser fed by ``data_received``, one future resolved on
message completion. One request at a time per connection (no pipelining), like a
browser's HTTP/1.1 connection. A connection the server closed (``Connection: close``,
``keepalive_requests``, idle timeout) reconnects on the next request; a request that
fails on a reused connection before any byte of answer came back is retried once on a
fresh one (the usual keep-alive race).

Over TLS (``https://``), a connection is made with the process's one client context
(:mod:`pnyx.loadtest.tls`) and offers the session in its :class:`SessionSlot`, so a
reconnection resumes as a browser's would. Every connection made is reported to
``on_connect(seconds, resumed)``: the TCP connect plus the TLS handshake, and whether
the server resumed a session (None over plain TCP).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from typing import Any, cast

import httptools

from pnyx.loadtest.tls import OFFERED, SessionSlot

# Failure kinds of a request that got no HTTP answer.
TIMEOUT = "timeout"
CONNECT = "connect"
CLOSED = "closed"
BAD_RESPONSE = "bad_response"
TLS = "tls"  # the TLS handshake failed (an untrusted certificate, a plain-HTTP port)


class RequestFailed(Exception):
    """No HTTP answer: ``kind`` is one of TIMEOUT, CONNECT, CLOSED, BAD_RESPONSE, TLS."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class Response:
    """Status, the few headers a listener cares about, the body (if kept), its size."""

    __slots__ = ("body", "headers", "nbytes", "status")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes, nbytes: int):
        self.status = status
        self.headers = headers  # lower-cased names, only those in WANTED_HEADERS
        self.body = body
        self.nbytes = nbytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None


WANTED_HEADERS = frozenset({b"retry-after", b"pnyx-retry-jitter", b"x-cache-status"})


def encode(
    method: str,
    path: str,
    host: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> bytes:
    """The bytes of one request; build once, send many times."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        payload = body or b""
        if body is not None:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(payload)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def get_bytes(path: bytes, host: bytes) -> bytes:
    """A bare GET, the hot path of every listener (no allocation beyond the result). It
    takes gzip, as every browser does: playlists come zipped (``ParseCache`` unzips)."""
    return b"GET %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: gzip\r\n\r\n" % (path, host)


class _Wire(asyncio.Protocol):
    """One TCP connection's protocol and parser; callbacks from a wire its :class:`Conn`
    has replaced are ignored."""

    def __init__(self, owner: Conn) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.session_kept = False  # the TLS session of this connection is in the slot

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        if owner._wire is not self:
            return
        owner._got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            owner._fail(RequestFailed(BAD_RESPONSE, str(exc)))
            owner.close()

    def connection_lost(self, exc: Exception | None) -> None:
        owner = self.owner
        self.transport = None
        if owner._wire is self:
            owner._wire = None
            owner._fail(RequestFailed(CLOSED, str(exc) if exc else "closed by the server"))

    def on_header(self, name: bytes, value: bytes) -> None:
        low = name.lower()
        if low in WANTED_HEADERS:
            self.owner._headers[low] = value

    def on_body(self, body: bytes) -> None:
        owner = self.owner
        owner._nbytes += len(body)
        if owner._keep_body:
            owner._body.append(body)

    def on_message_complete(self) -> None:
        owner = self.owner
        if owner._wire is self:
            if owner.slot is not None and not self.session_kept and self.transport is not None:
                self.session_kept = True
                owner._keep_session(self.transport)
            owner._completed(self.parser.get_status_code(), self.parser.should_keep_alive())


ConnectObserver = Callable[[float, bool | None], None]


class Conn:
    """One HTTP/1.1 keep-alive connection to ``host:port`` (reconnecting when closed),
    over TLS when given a context (with the session ``slot`` it shares, if any)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        slot: SessionSlot | None = None,
        on_connect: ConnectObserver | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.server_hostname = server_hostname if tls is not None else None
        self.slot = slot if tls is not None else None
        self.on_connect = on_connect
        self._wire: _Wire | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._keep_body = True
        self._body: list[bytes] = []
        self._nbytes = 0
        self._headers: dict[bytes, bytes] = {}
        self._got_bytes = False
        self.requests = 0  # answered on this connection object (all reconnections)
        self.connects = 0

    @property
    def connected(self) -> bool:
        wire = self._wire
        return wire is not None and wire.transport is not None and not wire.transport.is_closing()

    @property
    def busy(self) -> bool:
        return self._waiter is not None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        self.connects += 1
        wire = _Wire(self)
        self._wire = wire
        offered = OFFERED.set(self.slot.session if self.slot is not None else None)
        t0 = time.monotonic()
        try:
            transport, _ = await loop.create_connection(
                lambda: wire,
                self.host,
                self.port,
                ssl=self.tls,
                server_hostname=self.server_hostname,
            )
        except ssl.SSLError as exc:  # before OSError: SSLError is one
            if self._wire is wire:
                self._wire = None
            raise RequestFailed(TLS, str(exc)) from exc
        except OSError as exc:
            if self._wire is wire:
                self._wire = None
            raise RequestFailed(CONNECT, str(exc)) from exc
        finally:
            OFFERED.reset(offered)
        if self.on_connect is not None:
            resumed = None
            if self.tls is not None:
                sslobj = transport.get_extra_info("ssl_object")
                resumed = bool(sslobj is not None and sslobj.session_reused)
            self.on_connect(time.monotonic() - t0, resumed)

    def _keep_session(self, transport: asyncio.Transport) -> None:
        """Keep the newest session (TLS 1.3 tickets come after the handshake, so by the
        end of a response they are in)."""
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is not None and self.slot is not None:
            session = sslobj.session
            if session is not None:
                self.slot.session = session

    async def request(self, data: bytes, *, limit_s: float, keep_body: bool = True) -> Response:
        """Send ``data`` (a whole encoded request) and wait for the whole answer."""
        reused = self.connected
        try:
            return await self._once(data, limit_s, keep_body)
        except RequestFailed as exc:
            if not (reused and exc.kind == CLOSED and not self._got_bytes):
                raise
        return await self._once(data, limit_s, keep_body)

    async def _once(self, data: bytes, limit_s: float, keep_body: bool) -> Response:
        if not self.connected:
            await self.connect()
        wire = self._wire
        if wire is None or wire.transport is None:
            raise RequestFailed(CLOSED, "closed while connecting")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        self._waiter = waiter
        self._keep_body = keep_body
        self._body = []
        self._nbytes = 0
        self._headers = {}
        self._got_bytes = False
        timer = loop.call_later(limit_s, self._on_timeout, waiter)
        wire.transport.write(data)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _completed(self, status: int, keep_alive: bool) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        body = b"".join(self._body) if self._keep_body else b""
        waiter.set_result(Response(status, self._headers, body, self._nbytes))
        self.requests += 1
        if not keep_alive:
            self.close()

    def _on_timeout(self, waiter: asyncio.Future[Response]) -> None:
        if not waiter.done():
            waiter.set_exception(RequestFailed(TIMEOUT))
            self.close()  # the answer may still come: this connection is unusable

    def _fail(self, exc: RequestFailed) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def close(self) -> None:
        wire = self._wire
        self._wire = None
        if wire is not None and wire.transport is not None:
            wire.transport.close()
