"""The front row's way out of a stage node: each space's messages (from
:class:`~pnyx.media.frontrow.FrontRowEncoder`) sent to every edge's publisher location
(``frontrow_publish_urls``; nchan in the edge's nginx fans them out to the listeners'
WebSockets: src/pnyx/edge_frontrow.py).

One stream per space per edge, whatever the audience: the node never sees a listener.
Per space and edge, one kept-alive HTTP/1.1 connection to ``…/frontrow/pub/{space}``
carries every message as one ``POST``, **pipelined**: the sender writes each request as
its message comes and never waits for an answer; a reader takes the answers (nchan's
channel statistics) as they come and counts each message posted or refused. Measured
(docs/benchmarks.md, "The front row"): nchan answers a publish only after it has written
the message to every subscriber of the worker that took it, tens of milliseconds at ten
thousand subscribers, so a client that waits for each answer (httpx) fell behind there
(14-15 of 25 messages a second); and nchan's WebSocket publisher, which needs no answer,
lost messages in some runs (10.5 of 25 a second to 2,500 subscribers).

At most ``QUEUE_MESSAGES`` wait per space and edge (oldest dropped): an edge that is slow
or gone costs its own listeners those frames, never the mix or the other edges. While an
edge is unreachable the node tries again after a backoff (0.2 s doubling to 2 s) and what
waited is dropped on reconnection (stale audio helps no live listener). Every outcome is
counted (``pnyx_frontrow_posts_total``); a failing edge is logged once per space until it
works again. Private spaces are pushed like the others: the edge admits their
subscribers only through a signed link (``/p/{exp}/{sig}/frontrow/{space}``), and the
publisher location is the nodes' alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Sequence
from urllib.parse import urlsplit

import httptools

from pnyx.services import metrics

log = logging.getLogger(__name__)

QUEUE_MESSAGES = 16  # per space and edge, waiting to be sent (about 0.3-1 s of audio)
IN_FLIGHT = 64  # posts without an answer yet: more, and the edge is taken for stuck
RETRY_S = (0.2, 2.0)  # first and longest wait before connecting to an edge again


class _Refused(Exception):
    pass


class _Answers:
    """httptools callbacks: one per answer to a pipelined POST."""

    def __init__(self, link: _EdgeLink) -> None:
        self.link = link
        self.parser = httptools.HttpResponseParser(self)

    def on_message_complete(self) -> None:
        self.link.answered(self.parser.get_status_code())


class _EdgeLink:
    """One space's stream to one edge: a queue and the task that sends it."""

    def __init__(self, owner: FrontRowPublisher, base: str, space: str) -> None:
        url = urlsplit(base if base.endswith("/") else base + "/")
        self.owner = owner
        self.space = space
        self.where = f"{url.scheme}://{url.netloc}{url.path}{space}"
        self.host = url.hostname or "localhost"
        self.tls = url.scheme == "https"
        self.port = url.port or (443 if self.tls else 80)
        self.head = (
            f"POST {url.path}{space} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: "
        ).encode()
        self.queue: deque[bytes] = deque(maxlen=QUEUE_MESSAGES)
        self.wake = asyncio.Event()
        self.failing = False
        self.in_flight = 0
        self.task = asyncio.create_task(self._run(), name=f"frontrow-{space}")

    def put(self, message: bytes) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.owner.count("dropped")
        self.queue.append(message)
        self.wake.set()

    def answered(self, status: int) -> None:
        self.in_flight -= 1
        if 200 <= status < 300:
            self.owner.count("posted")
            if self.failing:
                self.failing = False
                log.info("space %s: front row reaches %s again", self.space, self.where)
        else:
            self.owner.count("failed")
            self._warn(f"status {status}")

    def _warn(self, why: str) -> None:
        if not self.failing:
            self.failing = True
            log.warning("space %s: front row cannot post to %s: %s", self.space, self.where, why)

    async def _run(self) -> None:
        delay = RETRY_S[0]
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        self.host,
                        self.port,
                        ssl=ssl.create_default_context() if self.tls else None,
                    ),
                    self.owner.timeout_s,
                )
            except (OSError, TimeoutError) as exc:
                self.owner.count("failed")
                self._warn(f"{type(exc).__name__}: {exc}")
            else:
                try:
                    for _ in range(len(self.queue)):  # stale: dropped, not sent late
                        self.queue.popleft()
                        self.owner.count("dropped")
                    delay = RETRY_S[0]
                    await self._send(reader, writer)
                except (OSError, TimeoutError, _Refused, httptools.HttpParserError) as exc:
                    self.owner.count("failed")
                    self._warn(f"{type(exc).__name__}: {exc}")
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
            await asyncio.sleep(delay)
            delay = min(RETRY_S[1], delay * 2)

    async def _send(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.in_flight = 0
        answers = asyncio.create_task(self._read(reader))
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                if answers.done():
                    answers.result()  # raises why the edge stopped answering
                    raise _Refused("the edge closed the connection")
                while self.queue:
                    if writer.is_closing():  # uvloop: closed on a reset, before the reader hears
                        raise _Refused("the edge reset the connection")
                    if self.in_flight >= IN_FLIGHT:
                        raise _Refused(f"{IN_FLIGHT} posts without an answer")
                    message = self.queue.popleft()
                    writer.write(self.head + b"%d\r\n\r\n" % len(message) + message)
                    self.in_flight += 1
                await asyncio.wait_for(writer.drain(), self.owner.timeout_s)
        finally:
            answers.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await answers

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Parse the answers as they come; wake the sender when the edge hangs up."""
        answers = _Answers(self)
        try:
            while data := await reader.read(1 << 16):
                answers.parser.feed_data(data)
        finally:
            self.wake.set()


class FrontRowPublisher:
    """Implements :class:`~pnyx.media.frontrow.FrontRowTap`. Made on the event loop;
    :meth:`submit` may be called from any thread."""

    def __init__(self, urls: Sequence[str], *, timeout_s: float) -> None:
        self._bases = tuple(urls)
        self.timeout_s = timeout_s
        self._loop = asyncio.get_running_loop()
        self._links: dict[str, list[_EdgeLink]] = {}
        self.counts = {"posted": 0, "failed": 0, "dropped": 0}  # tests, stats

    def count(self, outcome: str) -> None:
        self.counts[outcome] += 1
        metrics.FRONTROW_POSTS.labels(outcome).inc()

    def submit(self, space: str, message: bytes) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to send to
            self._loop.call_soon_threadsafe(self._put, space, message)

    def _put(self, space: str, message: bytes) -> None:
        links = self._links.get(space)
        if links is None:
            links = self._links[space] = [_EdgeLink(self, base, space) for base in self._bases]
        for link in links:
            link.put(message)

    async def stop(self, space: str) -> None:
        """The space's media stopped on this node: drop what waits, end its streams."""
        for link in self._links.pop(space, []):
            link.task.cancel()
            try:
                await link.task
            except asyncio.CancelledError:
                pass
            except Exception:  # a bug in the sender must not fail the node's shutdown
                log.exception("space %s: the front row's sender to %s had died", space, link.where)

    async def close(self) -> None:
        for space in list(self._links):
            await self.stop(space)
