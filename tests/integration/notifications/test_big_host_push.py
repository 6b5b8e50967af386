"""Push for hosts above ``fanout_threshold`` (services/push_fanout.py) over a real SQLite
store: only followers with a push subscription are paged, a batch at a time, at the
configured rate, waiting for room in the push queue; the notifications service hands a
big host's notice to it (and a small host's stays on the write path)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pnyx.config import Settings, load_settings
from pnyx.domain.types import Handle, Limits
from pnyx.live.memory import MemoryLiveState
from pnyx.services.notifications import NotificationService
from pnyx.services.push_fanout import BigHostPush, _Job
from pnyx.services.spaces import NewSpace, SpaceService
from pnyx.store.db import Store
from pnyx.store.records import PushSubscriptionRecord
from tests.support.poll import eventually

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STAR, HOST = Handle("star"), Handle("host")
FANS = [Handle(f"fan{i}") for i in range(10)]
SUBSCRIBED = FANS[::2]  # fan0, fan2, fan4, fan6, fan8
ITEM = {"kind": "space_live", "space": "s1", "host": STAR}


@dataclass
class FakePush:
    """The push queue as the job sees it: records each page; ``full`` holds ``room``
    until cleared (a sender that has not caught up)."""

    pages: list[tuple[list[Handle], dict[str, Any]]] = field(default_factory=list)
    full: asyncio.Event = field(default_factory=asyncio.Event)  # set: no room
    waited: int = 0

    def deliver(self, handles: Sequence[Handle], item: dict[str, Any]) -> None:
        self.pages.append((list(handles), item))

    async def room(self, below: int) -> None:
        while self.full.is_set():
            self.waited += 1
            await asyncio.sleep(0.01)

    @property
    def handles(self) -> list[Handle]:
        return [h for page, _ in self.pages for h in page]


def settings_for(tmp_path: Path, **more: Any) -> Settings:
    return load_settings(
        {"data_dir": tmp_path, "fanout_threshold": 5, "fanout_batch": 2, **more}, env={}
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite:///{tmp_path / 'pnyx.db'}")
    await store.create_schema()
    for handle in (STAR, HOST, *FANS, Handle("stranger")):
        await store.accounts.create(handle, handle, "x", NOW)
    for fan in FANS:  # 10 follow the star (above 5); 3 follow the host
        await store.social.follow(fan, STAR, NOW)
    for fan in FANS[:3]:
        await store.social.follow(fan, HOST, NOW)
    for who in (*SUBSCRIBED, Handle("stranger")):
        for i in range(2):  # two browsers each: still one page entry each
            sub = PushSubscriptionRecord(f"https://push.example/{who}/{i}", who, "k", "s")
            await store.notifications.add_push(sub, NOW)
    yield store
    await store.close()


async def test_only_subscribed_followers_are_paged_in_batches(store: Store, tmp_path: Path) -> None:
    push = FakePush()
    job = BigHostPush(settings_for(tmp_path, push_fanout_batch=2), store, push)
    job.enqueue(STAR, ITEM)
    job.start()
    try:
        await eventually(lambda: job.idle, 10, "the job to finish", interval=0.01)
    finally:
        await job.close()
    assert [page for page, _ in push.pages] == [["fan0", "fan2"], ["fan4", "fan6"], ["fan8"]]
    assert all(item == ITEM for _, item in push.pages)
    assert job.paged == len(SUBSCRIBED)


async def test_the_job_keeps_its_rate_and_waits_for_room(store: Store, tmp_path: Path) -> None:
    push = FakePush()
    rate = 40.0  # accounts a second: 0.05 s a page of 2
    job = BigHostPush(
        settings_for(tmp_path, push_fanout_batch=2, push_fanout_per_s=rate), store, push
    )
    t0 = time.monotonic()
    await job.run(job_of(STAR))
    took = time.monotonic() - t0
    assert push.handles == SUBSCRIBED
    assert took >= 2 * 2 / rate * 0.9  # two full pages, each followed by its share

    # A full push queue holds the job until the sender makes room; nothing is dropped.
    push2 = FakePush()
    push2.full.set()
    job2 = BigHostPush(settings_for(tmp_path, push_fanout_batch=2), store, push2)
    running = asyncio.create_task(job2.run(job_of(STAR)))
    await eventually(lambda: push2.waited >= 3, 5, "the job to wait for room", interval=0.01)
    assert push2.pages == []
    push2.full.clear()
    assert await asyncio.wait_for(running, 5) == len(SUBSCRIBED)
    assert push2.handles == SUBSCRIBED


async def test_the_job_queue_is_bounded(store: Store, tmp_path: Path) -> None:
    job = BigHostPush(settings_for(tmp_path, push_fanout_queue=2), store, FakePush())
    for _ in range(5):
        job.enqueue(STAR, ITEM)
    assert job.dropped == 3


async def test_a_big_hosts_notice_goes_to_the_job(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    clock = time.time
    spaces = SpaceService(store, MemoryLiveState(), Limits(), clock)
    notes = NotificationService(settings, store, clock)
    push = FakePush()
    job = BigHostPush(settings, store, push)
    written: list[Handle] = []
    notes.on_delivered = lambda handles, item: written.extend(handles)
    notes.on_big_host = job.enqueue
    spaces.on_live = notes.space_started
    notes.start(reminders=False)
    job.start()
    try:
        big = await spaces.create(STAR, NewSpace(title="Stadium"))
        await eventually(lambda: notes.idle and job.idle and push.pages, 10, "the big push")
        await spaces.create(HOST, NewSpace(title="Kitchen"))
        await eventually(lambda: notes.idle and len(written) == 3, 10, "the small fan-out")
    finally:
        await notes.close()
        await job.close()
    ((handles, item),) = push.pages
    assert handles == SUBSCRIBED
    assert (item["kind"], item["space"], item["host"]) == ("space_live", big.id, STAR)
    assert sorted(written) == FANS[:3]  # the host's followers, on the write path


def job_of(host: Handle) -> _Job:
    return _Job(host, ITEM)
