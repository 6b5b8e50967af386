from __future__ import annotations

from datetime import timedelta

from pnyx.domain.types import Handle, SpaceId, SpaceStatus
from pnyx.store import Store
from pnyx.store.records import NotificationRecord

from .factories import NOW, add_accounts, space

HOST, ADA, BOB = Handle("host"), Handle("ada"), Handle("bob")


def note(recipient: Handle, space_id: str, minutes: int = 0) -> NotificationRecord:
    return NotificationRecord(
        recipient=recipient,
        kind="space_live",
        space=SpaceId(space_id),
        host=HOST,
        title=f"Space {space_id}",
        created_at=NOW + timedelta(minutes=minutes),
    )


async def test_add_many_in_batches_and_read_newest_first(store: Store) -> None:
    rows = [note(ADA, f"s{i}", minutes=i) for i in range(7)] + [note(BOB, "s0")]

    await store.notifications.add_many(rows, batch=3)

    got = await store.notifications.for_recipient(ADA, limit=50)
    assert [n.space for n in got] == [f"s{i}" for i in reversed(range(7))]
    assert got[0] == rows[6]
    assert [n.space for n in await store.notifications.for_recipient(BOB)] == ["s0"]
    assert await store.notifications.for_recipient(HOST) == []


async def test_for_recipient_since_and_limit(store: Store) -> None:
    await store.notifications.add_many([note(ADA, f"s{i}", minutes=i) for i in range(5)])

    since = await store.notifications.for_recipient(ADA, since=NOW + timedelta(minutes=2))
    assert [n.space for n in since] == ["s4", "s3"]
    assert [n.space for n in await store.notifications.for_recipient(ADA, limit=2)] == [
        "s4",
        "s3",
    ]


async def test_add_many_of_nothing_is_nothing(store: Store) -> None:
    await store.notifications.add_many([])
    assert await store.notifications.for_recipient(ADA) == []


async def test_a_reminder_is_claimed_once(store: Store) -> None:
    assert await store.notifications.claim_reminder(SpaceId("s1"), NOW)
    assert not await store.notifications.claim_reminder(SpaceId("s1"), NOW)
    assert await store.notifications.claim_reminder(SpaceId("s2"), NOW)


async def test_followers_count_capped(store: Store) -> None:
    await add_accounts(store, HOST, ADA, BOB, "cy")
    for follower in (ADA, BOB, Handle("cy")):
        await store.social.follow(follower, HOST, NOW)

    assert await store.social.followers_count_capped(HOST, 10) == 3
    assert await store.social.followers_count_capped(HOST, 2) == 2
    assert await store.social.followers_count_capped(ADA, 5) == 0


async def test_spaces_followed_by(store: Store) -> None:
    await add_accounts(store, HOST, ADA, BOB)
    await store.social.follow(ADA, HOST, NOW)
    await store.spaces.create(space("old", started_at=NOW))
    await store.spaces.create(space("new", started_at=NOW + timedelta(minutes=1)))
    await store.spaces.create(space("bobs", host="bob", started_at=NOW))
    await store.spaces.create(
        space("later", status=SpaceStatus.SCHEDULED, scheduled_start=NOW + timedelta(hours=1))
    )

    live = await store.spaces.followed_by(ADA, SpaceStatus.LIVE)
    assert [s.id for s in live] == ["new", "old"]
    scheduled = await store.spaces.followed_by(ADA, SpaceStatus.SCHEDULED)
    assert [s.id for s in scheduled] == ["later"]
    assert await store.spaces.followed_by(BOB, SpaceStatus.LIVE) == []


async def test_due_reminders_are_scheduled_soon_and_unclaimed(store: Store) -> None:
    await add_accounts(store, HOST)
    for space_id, minutes in (("soon", 5), ("sooner", 1), ("later", 60)):
        start = NOW + timedelta(minutes=minutes)
        await store.spaces.create(
            space(space_id, status=SpaceStatus.SCHEDULED, scheduled_start=start)
        )
    await store.spaces.create(space("live", started_at=NOW))
    horizon = NOW + timedelta(minutes=10)

    assert [s.id for s in await store.notifications.due_reminders(horizon)] == [
        "sooner",
        "soon",
    ]
    assert await store.notifications.claim_reminder(SpaceId("sooner"), NOW)
    assert [s.id for s in await store.notifications.due_reminders(horizon)] == ["soon"]
    assert [s.id for s in await store.notifications.due_reminders(horizon, limit=1)] == ["soon"]
