"""The courier against a real receiver and a real store, on a clock the test moves:
the backoff schedule with its jitter, giving up after the last retry, and a delivered
message never sent again."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pnyx.config import Settings
from pnyx.domain.types import DeliveryState, Handle, SpaceId, SpaceStatus, WebhookEvent
from pnyx.live.memory import MemoryLiveState
from pnyx.services.ratelimits import RateLimits, limits_of
from pnyx.services.webhook_courier import WebhookCourier
from pnyx.services.webhooks import Webhooks
from pnyx.store import SpaceRecord, Store
from tests.support.procs import free_port
from tests.support.webhook_receiver import Receiver, webhook_receiver

HOST = Handle("host")


class Clock:
    """Starts at the real time when made (the receiver checks timestamps against its own
    clock, ±300 s: a time taken at import would be stale in a long test run)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver(free_port(), fail_first=3) as r:
        yield r


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite:///{tmp_path / 'pnyx.db'}")
    await store.create_schema()
    await store.accounts.create(HOST, "Host", "hash", datetime.now(UTC))
    yield store
    await store.close()


async def test_backoff_with_jitter_then_delivered_once(store: Store, receiver: Receiver) -> None:
    settings = Settings(
        webhook_allow_private=True, webhook_retries_s=[10.0, 50.0, 100.0], webhook_jitter=0.2
    )
    clock = Clock()
    live = MemoryLiveState()
    hooks = Webhooks(settings, store, RateLimits(live, limits_of(settings), clock), clock)
    courier = WebhookCourier(settings, store.webhooks, clock)
    try:
        made = await hooks.register(HOST, receiver.url + "/c", None, "")
        receiver.secrets["/c"] = made.secret
        msg = await hooks.emit(HOST, WebhookEvent.SPACE_STARTED, {"space": {"id": "s1"}})
        assert msg is not None
        assert await hooks.emit(Handle("nobody"), WebhookEvent.SPACE_STARTED, {}) is None

        waits = []
        for expected in (10.0, 50.0, 100.0):
            assert await courier.run_once() == 1
            (row,) = await store.webhooks.deliveries(HOST, made.id)
            assert row.state is DeliveryState.PENDING and row.last_status == 500
            wait = row.due_at.timestamp() - clock.now
            assert expected * 0.8 - 0.01 <= wait <= expected * 1.2 + 0.01
            waits.append(wait)
            assert await courier.run_once() == 0  # not due yet
            clock.now += wait
        assert await courier.run_once() == 1
        (row,) = await store.webhooks.deliveries(HOST, made.id)
        assert (row.state, row.attempts, row.last_status) == (DeliveryState.DELIVERED, 4, 204)
        clock.now += 100
        assert await courier.run_once() == 0
        assert [a.status for a in receiver.of(msg)] == [500, 500, 500, 204]
        assert all(a.signature_ok for a in receiver.of(msg))
        assert len(set(waits)) == 3
    finally:
        await courier.close()
        await live.close()


async def test_given_up_after_the_last_retry(store: Store, receiver: Receiver) -> None:
    settings = Settings(webhook_allow_private=True, webhook_retries_s=[1.0], webhook_jitter=0)
    clock = Clock()
    live = MemoryLiveState()
    hooks = Webhooks(settings, store, RateLimits(live, limits_of(settings), clock), clock)
    courier = WebhookCourier(settings, store.webhooks, clock)
    try:
        made = await hooks.register(HOST, receiver.url + "/g", None, "")
        await hooks.emit(HOST, WebhookEvent.SPACE_ENDED, {})
        assert await courier.run_once() == 1
        clock.now += 1.0
        assert await courier.run_once() == 1
        (row,) = await store.webhooks.deliveries(HOST, made.id)
        assert (row.state, row.attempts, row.last_status) == (DeliveryState.FAILED, 2, 500)
        clock.now += 10_000
        assert await courier.run_once() == 0
    finally:
        await courier.close()
        await live.close()


async def test_a_clip_is_announced_with_its_space(store: Store) -> None:
    settings = Settings(webhook_allow_private=True)
    clock = Clock()
    live = MemoryLiveState()
    hooks = Webhooks(settings, store, RateLimits(live, limits_of(settings), clock), clock)
    courier = WebhookCourier(settings, store.webhooks, clock)
    space = SpaceRecord(
        id=SpaceId("s1"),
        host=HOST,
        title="Clipped",
        status=SpaceStatus.LIVE,
        record=False,
        scheduled_start=None,
        created_at=datetime.now(UTC),
        room={},
        room_version=1,
    )
    try:
        with webhook_receiver(free_port()) as receiver:
            made = await hooks.register(
                HOST, receiver.url + "/clips", [WebhookEvent.CLIP_CREATED], ""
            )
            receiver.secrets["/clips"] = made.secret
            assert await hooks.emit(HOST, WebhookEvent.SPACE_STARTED, {}) is None  # not taken
            msg = await hooks.clip_created(space, {"id": "c1", "page": "/c/c1"})
            assert await courier.run_once() == 1
            (got,) = receiver.delivered("/clips")
            assert got.msg_id == msg and got.signature_ok
            assert got.payload["type"] == "clip.created"
            assert got.payload["data"]["clip"] == {"id": "c1", "page": "/c/c1"}
            assert got.payload["data"]["space"]["title"] == "Clipped"
    finally:
        await courier.close()
        await live.close()
