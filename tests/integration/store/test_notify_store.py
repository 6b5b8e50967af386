"""The store under the web client's notifications, on SQLite and PostgreSQL: read marks
that only move forward, "remind me" requests paged by space, push subscriptions, the
the followers of a host who have push subscriptions, the
reminder claim released on reschedule, a scheduled space edited under its version, and an
older database gaining the new columns."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from pnyx.domain.types import Handle, SpaceId, SpaceStatus
from pnyx.store import Store
from pnyx.store.records import NotificationRecord, PushSubscriptionRecord

from .factories import NOW, add_accounts, space

HOST, ADA, BOB, CY = Handle("host"), Handle("ada"), Handle("bob"), Handle("cy")


async def test_read_marks_only_move_forward(store: Store) -> None:
    await add_accounts(store, "ada")
    assert await store.notifications.read_at(ADA) is None
    assert await store.notifications.mark_read(ADA, NOW) == NOW
    assert await store.notifications.mark_read(ADA, NOW - timedelta(hours=1)) == NOW
    later = NOW + timedelta(minutes=5)
    assert await store.notifications.mark_read(ADA, later) == later
    assert await store.notifications.read_at(ADA) == later


async def test_reminder_requests_are_paged_and_idempotent(store: Store) -> None:
    await add_accounts(store, "host", "ada", "bob", "cy")
    sched = space("s1", status=SpaceStatus.SCHEDULED, scheduled_start=NOW + timedelta(hours=1))
    await store.spaces.create(sched)
    s1 = SpaceId("s1")
    for who in (CY, ADA, BOB, ADA):
        await store.notifications.add_reminder_request(s1, who, NOW)
    assert await store.notifications.reminder_requests(s1, 2) == [ADA, BOB]
    assert await store.notifications.reminder_requests(s1, 2, after=BOB) == [CY]
    assert await store.notifications.has_reminder_request(s1, BOB)
    await store.notifications.remove_reminder_request(s1, BOB)
    await store.notifications.remove_reminder_request(s1, BOB)
    assert not await store.notifications.has_reminder_request(s1, BOB)
    assert await store.notifications.reminder_requests(s1, 10) == [ADA, CY]

    # The claim makes the reminder go out once; a reschedule releases it.
    assert await store.notifications.claim_reminder(s1, NOW)
    assert not await store.notifications.claim_reminder(s1, NOW)
    await store.notifications.unclaim_reminder(s1)
    assert await store.notifications.claim_reminder(s1, NOW)


async def test_push_subscriptions(store: Store) -> None:
    await add_accounts(store, "ada", "bob")
    a1 = PushSubscriptionRecord("https://push.example/a1", ADA, "k" * 87, "s" * 22)
    a2 = PushSubscriptionRecord("https://push.example/a2", ADA, "k" * 87, "s" * 22)
    b1 = PushSubscriptionRecord("https://push.example/b1", BOB, "k" * 87, "s" * 22)
    for sub in (a1, a2, b1):
        await store.notifications.add_push(sub, NOW)
    assert await store.notifications.push_of([ADA], 10) == [a1, a2]
    assert await store.notifications.push_of([ADA, BOB], 2) == [a1, a2]
    assert await store.notifications.push_of([], 10) == []
    # The same browser signed in as someone else moves to them.
    await store.notifications.add_push(PushSubscriptionRecord(a2.endpoint, BOB, "x", "y"), NOW)
    assert [s.endpoint for s in await store.notifications.push_of([BOB], 10)] == [
        a2.endpoint,
        b1.endpoint,
    ]
    await store.notifications.remove_push(b1.endpoint, ADA)  # not ada's: stays
    assert len(await store.notifications.push_of([BOB], 10)) == 2
    await store.notifications.remove_push(b1.endpoint)
    assert [s.endpoint for s in await store.notifications.push_of([BOB], 10)] == [a2.endpoint]


async def test_subscribed_followers_are_paged_by_handle(store: Store) -> None:
    """A host's followers who have a push subscription (one each, however many browsers);
    followers without one and subscribers who do not follow are not among them."""
    await add_accounts(store, "host", "ada", "bob", "cy", "dee", "eve")
    for fan in ("eve", "ada", "cy", "dee"):
        await store.social.follow(Handle(fan), HOST, NOW)
    for who, n in (("ada", 2), ("bob", 1), ("cy", 1), ("eve", 3)):  # dee has none
        for i in range(n):
            sub = PushSubscriptionRecord(f"https://push.example/{who}{i}", Handle(who), "k", "s")
            await store.notifications.add_push(sub, NOW)
    assert await store.notifications.subscribed_followers(HOST, 10) == [ADA, CY, Handle("eve")]
    assert await store.notifications.subscribed_followers(HOST, 2) == [ADA, CY]
    assert await store.notifications.subscribed_followers(HOST, 2, after=CY) == [Handle("eve")]
    assert await store.notifications.subscribed_followers(HOST, 2, after=Handle("eve")) == []
    assert await store.notifications.subscribed_followers(ADA, 10) == []


async def test_edit_is_a_compare_and_swap_on_a_scheduled_space(store: Store) -> None:
    await add_accounts(store, "host")
    rec = space("s1", status=SpaceStatus.SCHEDULED, scheduled_start=NOW + timedelta(hours=1))
    await store.spaces.create(rec)
    moved = NOW + timedelta(hours=2)
    args = {"title": "new", "scheduled_start": moved}
    s1 = SpaceId("s1")
    v = rec.room_version
    assert not await store.spaces.edit(
        s1, rec.room, expected_version=v + 5, new_version=v + 6, **args
    )
    assert await store.spaces.edit(s1, rec.room, expected_version=v, new_version=v + 1, **args)
    got = await store.spaces.get(s1)
    assert got is not None
    assert (got.title, got.scheduled_start, got.room_version) == ("new", moved, v + 1)
    await store.spaces.set_cancel_reason(s1, "ill")
    got = await store.spaces.get(s1)
    assert got is not None and got.cancel_reason == "ill"


async def test_an_older_database_gains_the_new_columns(store_url: str) -> None:
    store = await Store.open(store_url)
    await store.create_schema()
    await add_accounts(store, "host", "ada")
    await store.spaces.create(space("old"))
    row = NotificationRecord(ADA, "space_live", SpaceId("old"), HOST, "t", NOW)
    await store.notifications.add_many([row])
    async with store._db.begin() as conn:  # what an older Pnyx left behind
        await conn.execute(text("ALTER TABLE spaces DROP COLUMN cancel_reason"))
        await conn.execute(text("ALTER TABLE notifications DROP COLUMN detail"))
        for table in ("notification_reads", "reminder_requests", "push_subscriptions"):
            await conn.execute(text(f"DROP TABLE {table}"))
        if store.dialect == "postgresql":  # kinds were at most 16 characters
            await conn.execute(text("ALTER TABLE notifications ALTER COLUMN kind TYPE VARCHAR(16)"))
    await store.create_schema()
    rec = await store.spaces.get(SpaceId("old"))
    assert rec is not None and rec.cancel_reason == ""
    assert await store.notifications.for_recipient(ADA) == [row]
    assert await store.notifications.mark_read(ADA, NOW) == NOW
    moved = NotificationRecord(ADA, "space_rescheduled", SpaceId("old"), HOST, "t", NOW, "x")
    await store.notifications.add_many([moved])
    assert (await store.notifications.for_recipient(ADA, limit=1)) in ([moved], [row])
    await store.close()
