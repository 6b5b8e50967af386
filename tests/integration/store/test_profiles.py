"""Profiles in the store: bio and display name edits, a host's spaces by visibility,
and deleting an account (what goes, what stays, the handle kept as a tombstone)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text

from pnyx.domain.types import Handle, SpaceId, SpaceStatus, Visibility
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store import Store
from pnyx.store.records import NotificationRecord

from .factories import NOW, add_accounts, minutes, space


async def test_bio_and_display_name_are_stored_and_names_read_in_one_query(store: Store) -> None:
    await add_accounts(store, "ada", "bob")
    assert await store.accounts.update_profile(Handle("ada"), display_name="Ada L.", bio="Hi")
    assert await store.accounts.update_profile(Handle("bob"), display_name=None, bio=None)

    ada = await store.accounts.get(Handle("ada"))
    assert ada is not None
    assert (ada.display_name, ada.bio, ada.deleted) == ("Ada L.", "Hi", False)
    bob = await store.accounts.get(Handle("bob"))
    assert bob is not None
    assert (bob.display_name, bob.bio) == ("Bob", "")
    names = await store.accounts.names(["ada", "bob", "nobody", "ada"])
    assert names == {"ada": "Ada L.", "bob": "Bob"}
    assert await store.accounts.names([]) == {}
    assert not await store.accounts.update_profile(Handle("nobody"), display_name="X", bio=None)


async def test_following_counts_both_ways(store: Store) -> None:
    await add_accounts(store, "ada", "bob", "cy")
    await store.social.follow(Handle("bob"), Handle("ada"), NOW)
    await store.social.follow(Handle("cy"), Handle("ada"), NOW)
    await store.social.follow(Handle("ada"), Handle("cy"), NOW)
    assert await store.social.following_count(Handle("ada")) == 1
    assert await store.social.following_count(Handle("bob")) == 1
    assert await store.social.followers_count(Handle("ada")) == 2


async def test_hosted_by_orders_pages_and_filters_visibility(store: Store) -> None:
    await add_accounts(store, "host", "other")
    for i in range(5):
        rec = space(f"e{i}", status=SpaceStatus.ENDED, created_at=NOW + minutes(i))
        await store.spaces.create(rec)
    await store.spaces.create(
        replace(space("hid", status=SpaceStatus.ENDED), visibility=Visibility.UNLISTED)
    )
    await store.spaces.create(
        replace(space("p-x", status=SpaceStatus.ENDED), visibility=Visibility.PRIVATE)
    )
    await store.spaces.create(space("theirs", host="other", status=SpaceStatus.ENDED))
    await store.spaces.create(space("now", status=SpaceStatus.LIVE))

    public = frozenset({Visibility.PUBLIC})
    first = await store.spaces.hosted_by(Handle("host"), SpaceStatus.ENDED, 3, visibilities=public)
    rest = await store.spaces.hosted_by(
        Handle("host"), SpaceStatus.ENDED, 3, offset=3, visibilities=public
    )
    assert [r.id for r in first] == ["e4", "e3", "e2"]  # most recently finished first
    assert [r.id for r in rest] == ["e1", "e0"]
    every = await store.spaces.hosted_by(Handle("host"), SpaceStatus.ENDED, 50)
    assert {r.id for r in every} == {"e0", "e1", "e2", "e3", "e4", "hid", "p-x"}
    live = await store.spaces.hosted_by(Handle("host"), SpaceStatus.LIVE, 50)
    assert [r.id for r in live] == ["now"]


async def test_bump_room_is_a_compare_and_swap_that_keeps_status_and_times(store: Store) -> None:
    await add_accounts(store, "host")
    await store.spaces.create(space("s1", room_version=3, started_at=NOW))
    room = {"members": [], "pinned": None, "version": 4}
    assert await store.spaces.bump_room(SpaceId("s1"), room, 3)
    assert not await store.spaces.bump_room(SpaceId("s1"), room, 3)  # lost: now at 4
    assert not await store.spaces.bump_room(SpaceId("nope"), room, 3)
    rec = await store.spaces.get(SpaceId("s1"))
    assert rec is not None
    assert (rec.room_version, rec.room, rec.status, rec.started_at) == (
        4,
        room,
        SpaceStatus.LIVE,
        NOW,
    )


async def test_deleting_an_account_removes_its_data_and_keeps_recorded_spaces(
    store: Store,
) -> None:
    await add_accounts(store, "gone", "ada", "bob")
    g, a, b = Handle("gone"), Handle("ada"), Handle("bob")
    await store.social.follow(g, a, NOW)
    await store.social.follow(b, g, NOW)
    await store.social.follow(a, b, NOW)  # not theirs: stays
    await store.social.block(g, a, NOW)
    await store.social.block(b, g, NOW)
    await store.spaces.create(space("plain", host="gone", status=SpaceStatus.ENDED))
    await store.spaces.create(space("taped", host="gone", status=SpaceStatus.ENDED))
    await store.recordings.add(SpaceId("taped"), init=b"init", segments=[], now=NOW)
    await store.spaces.create(
        replace(
            space("p-theirs", host="ada", status=SpaceStatus.LIVE), visibility=Visibility.PRIVATE
        )
    )
    await store.invites.add(SpaceId("p-theirs"), g, a, NOW)
    await store.invites.add(SpaceId("p-theirs"), b, a, NOW)  # not theirs: stays
    await store.notifications.add_many(
        [
            NotificationRecord(g, "space_live", SpaceId("p-theirs"), a, "t", NOW),
            NotificationRecord(b, "space_live", SpaceId("plain"), g, "t", NOW),
            NotificationRecord(b, "space_live", SpaceId("p-theirs"), a, "t", NOW),
        ]
    )

    removed = await store.accounts.delete(g)

    assert (removed.follows, removed.blocks, removed.invites, removed.spaces) == (2, 2, 1, 1)
    assert removed.notifications == 2
    tomb = await store.accounts.get(g)
    assert tomb is not None
    assert (tomb.deleted, tomb.password_hash, tomb.bio, tomb.display_name) == (True, "", "", "gone")
    assert await store.spaces.get(SpaceId("plain")) is None
    assert await store.spaces.get(SpaceId("taped")) is not None  # recorded: kept
    assert await store.social.is_following(a, b)
    assert await store.social.followers_count(g) == 0
    assert await store.social.following_count(g) == 0
    assert not await store.social.is_blocked(b, g)
    assert await store.invites.is_invited(SpaceId("p-theirs"), b)
    assert not await store.invites.is_invited(SpaceId("p-theirs"), g)
    assert len(await store.notifications.for_recipient(b, limit=10)) == 1
    assert await store.accounts.names(["gone", "ada"]) == {"ada": "Ada"}
    assert not await store.accounts.update_profile(g, display_name="Back", bio=None)
    assert not await store.accounts.set_password(g, "argon2-new")
    with pytest.raises(PnyxError) as err:  # the handle is never handed out again
        await store.accounts.create(g, "Impostor", "h", NOW)
    assert (err.value.kind, err.value.code) == (ErrorKind.CONFLICT, "handle_taken")


async def test_an_older_database_gains_the_bio_and_deleted_columns(store_url: str) -> None:
    store = await Store.open(store_url)
    await store.create_schema()
    await add_accounts(store, "old")
    async with store._db.begin() as conn:  # what an older Pnyx left behind
        await conn.execute(text("ALTER TABLE accounts DROP COLUMN bio"))
        await conn.execute(text("ALTER TABLE accounts DROP COLUMN deleted"))
    await store.create_schema()
    rec = await store.accounts.get(Handle("old"))
    await store.close()
    assert rec is not None
    assert (rec.bio, rec.deleted) == ("", False)


async def test_deleting_an_account_removes_the_analytics_of_the_spaces_it_deletes(
    store: Store,
) -> None:
    await add_accounts(store, "gone", "ada")
    await store.spaces.create(space("plain", host="gone", status=SpaceStatus.ENDED))
    await store.spaces.create(space("taped", host="gone", status=SpaceStatus.ENDED))
    await store.recordings.add(SpaceId("taped"), init=b"init", segments=[], now=NOW)
    await store.spaces.create(space("hers", host="ada", status=SpaceStatus.ENDED))
    for sid in ("plain", "taped", "hers"):
        await store.analytics.save(SpaceId(sid), {"peak": 3})
        await store.analytics.count(SpaceId(sid), "play")

    await store.accounts.delete(Handle("gone"))

    assert await store.spaces.get(SpaceId("plain")) is None
    assert await store.analytics.get(SpaceId("plain")) is None  # its space went: so did it
    kept = await store.analytics.get(SpaceId("taped"))  # recorded: the space stays, and these
    assert kept is not None and (kept.doc, kept.replay_plays) == ({"peak": 3}, 1)
    assert await store.analytics.get(SpaceId("hers")) is not None  # not theirs
