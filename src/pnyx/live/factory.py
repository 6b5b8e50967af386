"""Pick the live state (docs/conventions.md, rule 6): Redis when a URL is given, else memory."""

from __future__ import annotations

from pnyx.live.base import LiveState
from pnyx.live.memory import MemoryLiveState
from pnyx.live.redis import RedisLiveState
from pnyx.live.redis_url import check_redis_url


def open_live_state(redis_url: str | None, *, presence_bucket_s: float = 5.0) -> LiveState:
    """A live state for this node: ``RedisLiveState`` for a Redis URL (``redis://…``, or
    ``redis+sentinel://…`` to follow the primary through failovers; see ``redis_url.py``),
    shared by many nodes, else the in-process ``MemoryLiveState``. A bad URL raises
    ``PnyxError(INVALID)`` saying what is wrong. Connections open lazily; the caller owns
    the result and must ``await close()`` it."""
    if redis_url:
        check_redis_url(redis_url)
        return RedisLiveState(redis_url, presence_bucket_s=presence_bucket_s)
    return MemoryLiveState(presence_bucket_s=presence_bucket_s)
