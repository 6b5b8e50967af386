"""Reaching the Redis primary through Sentinels (redis-py's asyncio Sentinel support).

``sentinel_client`` turns a parsed ``redis+sentinel://`` URL (``redis_url.py``) into a
client whose every connection is made to the primary the Sentinels name at that moment;
``RedisLiveState`` uses it instead of a plain pool.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from pnyx.live.redis_url import SentinelTarget

# Asking a Sentinel for the primary: one that does not answer in time is skipped.
SENTINEL_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 1.0, "socket_timeout": 2.0}


class BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """redis-py's Sentinel pool (each new connection goes to the primary the Sentinels
    name then; idle ones to a former primary are dropped) with the blocking pool's
    bound: a burst waits for a connection instead of failing.

    One lookup at a time: connections opening together (a burst, or everyone
    reconnecting after a failover) share the answer of a lookup that ended after they
    asked, instead of each asking the Sentinels (a hundred at once time out)."""

    _lookup: asyncio.Lock | None = None
    _looked_up_at = float("-inf")

    async def get_master_address(self) -> tuple[str, int]:
        if self._lookup is None:
            self._lookup = asyncio.Lock()
        loop = asyncio.get_running_loop()
        asked_at = loop.time()
        async with self._lookup:
            if self.master_address is not None and self._looked_up_at >= asked_at:
                shared: tuple[str, int] = self.master_address
                return shared
            address: tuple[str, int] = await super().get_master_address()  # type: ignore[no-untyped-call]
            self._looked_up_at = loop.time()
            return address


def sentinel_client(target: SentinelTarget, **pool_options: Any) -> tuple[Sentinel, aioredis.Redis]:
    """The Sentinels of ``target`` (close them) and a client on the primary they name,
    through a ``BlockingSentinelPool`` made with ``pool_options``."""
    sentinel = Sentinel(
        list(target.sentinels),
        sentinel_kwargs={
            **SENTINEL_OPTIONS,
            "username": target.sentinel_username,
            "password": target.sentinel_password,
        },
    )
    client: aioredis.Redis = sentinel.master_for(
        target.service,
        connection_pool_class=BlockingSentinelPool,
        db=target.db,
        username=target.username,
        password=target.password,
        **pool_options,
    )
    return sentinel, client
