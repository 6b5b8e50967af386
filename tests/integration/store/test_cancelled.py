"""A task cancelled while it uses the store (a node shutting down cancels what is still
running) gives its connection back cleanly: the pool logs no failed reset, and the store
keeps working. (asyncpg itself may log a "Future exception was never retrieved" for a
query cancelled in flight; the node's loops finish their step before they are cancelled,
services/ticker.py.)"""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
import sqlalchemy as sa

from pnyx.store import Store

ROUNDS = 60


async def test_cancelling_a_task_mid_transaction_leaves_no_error_and_a_working_store(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    db = store._db
    rng = random.Random(5)

    async def busy() -> None:
        while True:
            async with db.begin() as conn:
                await conn.execute(sa.text("SELECT 1"))
                await asyncio.sleep(0)
                await conn.execute(sa.text("SELECT 2"))

    with caplog.at_level(logging.ERROR, logger="sqlalchemy"):
        for _ in range(ROUNDS):  # bounded: each round is a few milliseconds
            task = asyncio.create_task(busy())
            await asyncio.sleep(rng.uniform(0, 0.004))  # lands anywhere in a transaction
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name != "asyncio"]
    assert errors == [], errors[0].getMessage()
    async with db.begin() as conn:
        assert (await conn.execute(sa.text("SELECT 3"))).scalar() == 3
