"""A subscriber's bounded, drop-oldest message queue (docs/conventions.md, rule 11).

Both live-state implementations hand subscribers one of these: the publisher side
(``offer``) never blocks and never grows the queue past ``maxsize``; when it is full the
oldest message is dropped and counted, so a slow reader sees the newest events and a
count of what it missed, and never holds the publisher back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE: Final = 256

_END: Final = object()  # end-of-stream marker put by close()


class Subscription:
    """An async iterator of one channel's messages. Ends when the live state closes."""

    def __init__(self, channel: str, maxsize: int = DEFAULT_QUEUE_SIZE) -> None:
        if maxsize < 1:
            raise ValueError("a subscription queue holds at least one message")
        self.channel = channel
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize)
        self._closed = False
        self.dropped = 0  # messages dropped because the reader fell behind

    def offer(self, message: bytes) -> None:
        """Enqueue without blocking, dropping the oldest message when full."""
        if self._closed:
            return
        self._put(message)

    def _put(self, item: object) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "subscriber of %s is slow: %d messages dropped", self.channel, self.dropped
                )
        self._queue.put_nowait(item)

    def close(self) -> None:
        """End the stream: the reader gets what is queued, then StopAsyncIteration."""
        if not self._closed:
            self._closed = True
            self._put(_END)

    @property
    def closed(self) -> bool:
        return self._closed

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> bytes:
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # later calls end too
            raise StopAsyncIteration
        assert isinstance(item, bytes)
        return item
