from __future__ import annotations

import asyncio

from pnyx.domain.types import SpaceId
from pnyx.store import Store
from pnyx.store.analytics import AnalyticsRecord

S = SpaceId("s1")


async def test_nothing_until_written(store: Store) -> None:
    assert await store.analytics.get(S) is None


async def test_counts_then_figures_then_figures_again(store: Store) -> None:
    await asyncio.gather(*(store.analytics.count(S, "play") for _ in range(5)))
    await store.analytics.count(S, "download")
    assert await store.analytics.get(S) == AnalyticsRecord(None, 5, 1)
    await store.analytics.save(S, {"peak": 3, "timeline": [[1.0, 3]]})
    await store.analytics.save(S, {"peak": 4})  # replaced, counts kept
    await store.analytics.count(S, "play")
    assert await store.analytics.get(S) == AnalyticsRecord({"peak": 4}, 6, 1)
    assert await store.analytics.get(SpaceId("s2")) is None
