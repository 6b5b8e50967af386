"""The front row's way out of a stage node: each space's messages (from
:class:`~pnyx.media.frontrow.FrontRowEncoder`) posted to every edge's publisher
location (``frontrow_publish_urls``; nchan in the edge's nginx fans them out to the
listeners' WebSockets: src/pnyx/edge_frontrow.py).

One stream per space per edge, whatever the audience: the node never sees a listener.
Per space one task posts the messages in order, each to every edge at once, over the
node's kept-alive connections; a message that waited while the task was busy is sent
with the next (at most ``QUEUE_MESSAGES`` wait, oldest dropped: an edge that is slow or
gone costs its listeners those frames, never the mix). Failures are counted and logged
once per space and edge until one succeeds again. Private spaces have no front row (the
edge would need their signed links on the WebSocket too): they are never pushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence

import httpx

log = logging.getLogger(__name__)

QUEUE_MESSAGES = 16  # per space, waiting to be posted (about 0.3-1 s of audio)
CONTENT_TYPE = "application/octet-stream"  # nchan sends it on as a binary WebSocket frame


class FrontRowPublisher:
    """Implements :class:`~pnyx.media.frontrow.FrontRowTap`. Made on the event loop;
    :meth:`submit` may be called from any thread."""

    def __init__(self, urls: Sequence[str], *, timeout_s: float) -> None:
        self._urls = tuple(u if u.endswith("/") else u + "/" for u in urls)
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
        )
        self._queues: dict[str, deque[bytes]] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failing: set[tuple[str, str]] = set()
        self.posted = 0  # successful posts (tests, stats)
        self.failed = 0
        self.dropped = 0

    def submit(self, space: str, message: bytes) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to send to
            self._loop.call_soon_threadsafe(self._put, space, message)

    def _put(self, space: str, message: bytes) -> None:
        queue = self._queues.get(space)
        if queue is None:
            queue = self._queues[space] = deque(maxlen=QUEUE_MESSAGES)
            self._wakes[space] = asyncio.Event()
            self._tasks[space] = asyncio.create_task(self._drain(space), name=f"frontrow-{space}")
        if len(queue) == queue.maxlen:
            self.dropped += 1
        queue.append(message)
        self._wakes[space].set()

    async def _drain(self, space: str) -> None:
        queue = self._queues[space]
        wake = self._wakes[space]
        while True:
            await wake.wait()
            wake.clear()
            while queue:
                message = queue.popleft()
                await asyncio.gather(*(self._post(url, space, message) for url in self._urls))

    async def _post(self, url: str, space: str, message: bytes) -> None:
        key = (url, space)
        try:
            answer = await self._client.post(
                url + space, content=message, headers={"Content-Type": CONTENT_TYPE}
            )
            ok, why = answer.status_code < 300, f"status {answer.status_code}"
        except httpx.HTTPError as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        if ok:
            self.posted += 1
            if key in self._failing:
                self._failing.discard(key)
                log.info("space %s: front row reaches %s again", space, url)
            return
        self.failed += 1
        if key not in self._failing:
            self._failing.add(key)
            log.warning("space %s: front row cannot post to %s: %s", space, url, why)

    async def stop(self, space: str) -> None:
        """The space's media stopped on this node: drop what waits, end its task."""
        task = self._tasks.pop(space, None)
        self._queues.pop(space, None)
        self._wakes.pop(space, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        for space in list(self._tasks):
            await self.stop(space)
        await self._client.aclose()
