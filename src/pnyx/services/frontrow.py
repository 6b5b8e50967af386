"""The front row's way out of a stage node: each space's messages (from
:class:`~pnyx.media.frontrow.FrontRowEncoder`) sent to every edge's publisher location
(``frontrow_publish_urls``; nchan in the edge's nginx fans them out to the listeners'
WebSockets: src/pnyx/edge_frontrow.py).

One stream per space per edge, whatever the audience: the node never sees a listener.
Per space and edge, one kept-open WebSocket to ``…/frontrow/pub/{space}`` (nchan's
WebSocket publisher) carries every message as one binary frame, and one task sends them
in order without waiting for an answer per message. That matters: nchan answers a
publish only once it has written the message to every subscriber of the worker that
took it, which takes tens of milliseconds at ten thousand subscribers; a POST per
message, waiting for each answer, fell behind there (measured: 15 of 25 messages a second
at 10,000 subscribers on one worker). nchan's replies (channel statistics, text) are
read and dropped.

At most ``QUEUE_MESSAGES`` wait per space and edge (oldest dropped): an edge that is slow
or gone costs its own listeners those frames, never the mix or the other edges. While an
edge is unreachable the node tries again after a backoff (0.2 s doubling to 2 s) and what
waited is dropped on reconnection (stale audio helps no live listener). Every outcome is
counted (``pnyx_frontrow_posts_total``); a failing edge is logged once per space until it
works again. Private spaces have no front row (the edge would need their signed links on
the WebSocket too): they are never pushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence

import websockets

from pnyx.services import metrics

log = logging.getLogger(__name__)

QUEUE_MESSAGES = 16  # per space and edge, waiting to be sent (about 0.3-1 s of audio)
RETRY_S = (0.2, 2.0)  # first and longest wait before connecting to an edge again


def publisher_url(base: str, space: str) -> str:
    """``http(s)://edge/frontrow/pub/`` and a space -> the WebSocket URL to publish on."""
    if not base.endswith("/"):
        base += "/"
    return "ws" + base.removeprefix("http") + space


class _EdgeLink:
    """One space's stream to one edge: a queue and the task that sends it."""

    def __init__(self, owner: FrontRowPublisher, url: str, space: str) -> None:
        self.owner = owner
        self.url = url
        self.space = space
        self.queue: deque[bytes] = deque(maxlen=QUEUE_MESSAGES)
        self.wake = asyncio.Event()
        self.failing = False
        self.task = asyncio.create_task(self._run(), name=f"frontrow-{space}")

    def put(self, message: bytes) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.owner.count("dropped")
        self.queue.append(message)
        self.wake.set()

    async def _run(self) -> None:
        delay = RETRY_S[0]
        while True:
            try:
                async with websockets.connect(
                    self.url,
                    open_timeout=self.owner.timeout_s,
                    close_timeout=1,
                    compression=None,
                    max_size=1 << 16,
                ) as ws:
                    for _ in range(len(self.queue)):  # stale: dropped, not sent late
                        self.queue.popleft()
                        self.owner.count("dropped")
                    if self.failing:
                        self.failing = False
                        log.info("space %s: front row reaches %s again", self.space, self.url)
                    delay = RETRY_S[0]
                    await self._send(ws)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                self.owner.count("failed")
                if not self.failing:
                    self.failing = True
                    log.warning(
                        "space %s: front row cannot publish to %s: %s: %s",
                        self.space,
                        self.url,
                        type(exc).__name__,
                        exc,
                    )
            await asyncio.sleep(delay)
            delay = min(RETRY_S[1], delay * 2)

    async def _send(self, ws: websockets.ClientConnection) -> None:
        replies = asyncio.create_task(_discard(ws))
        try:
            while not replies.done():
                await self.wake.wait()
                self.wake.clear()
                while self.queue:
                    await ws.send(self.queue.popleft())
                    self.owner.count("posted")
            replies.result()  # the edge closed the socket: raises ConnectionClosed
        finally:
            replies.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.WebSocketException):
                await replies


async def _discard(ws: websockets.ClientConnection) -> None:
    """Read nchan's answer to each message (its channel's statistics) and drop it; end
    (raising) when the edge closes the socket, which wakes the sender."""
    async for _ in ws:
        pass
    raise websockets.ConnectionClosedOK(None, None)


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
            links = self._links[space] = [
                _EdgeLink(self, publisher_url(base, space), space) for base in self._bases
            ]
        for link in links:
            link.put(message)

    async def stop(self, space: str) -> None:
        """The space's media stopped on this node: drop what waits, end its streams."""
        for link in self._links.pop(space, []):
            link.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await link.task

    async def close(self) -> None:
        for space in list(self._links):
            await self.stop(space)
