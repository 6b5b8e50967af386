"""Pick the live state (docs/conventions.md, rule 6): Redis when a URL is given, else memory."""

from __future__ import annotations

from pnyx.live.base import LiveState
from pnyx.live.memory import MemoryLiveState
from pnyx.live.redis import RedisLiveState
from pnyx.live.redis_url import check_redis_url
from pnyx.live.subscription import DEFAULT_QUEUE_SIZE


def open_live_state(
    redis_url: str | None,
    *,
    presence_bucket_s: float = 5.0,
    subscriber_queue: int = DEFAULT_QUEUE_SIZE,
) -> LiveState:
    """A live state for this node: ``RedisLiveState`` for a Redis URL (``redis://…``, or
    ``redis+sentinel://…`` to follow the primary through failovers; see ``redis_url.py``),
    shared by many nodes, else the in-process ``MemoryLiveState``. A bad URL raises
    ``PnyxError(INVALID)`` saying what is wrong. Connections open lazily; the caller owns
    the result and must ``await close()`` it. ``subscriber_queue`` bounds each
    subscription's queue (the setting ``ws_queue_depth``: a slow stage socket loses its
    oldest events beyond it)."""
    if redis_url:
        check_redis_url(redis_url)
        return RedisLiveState(
            redis_url, presence_bucket_s=presence_bucket_s, subscriber_queue=subscriber_queue
        )
    return MemoryLiveState(presence_bucket_s=presence_bucket_s, subscriber_queue=subscriber_queue)
