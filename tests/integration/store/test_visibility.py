"""Visibility and invitations in the durable store, on SQLite and PostgreSQL: only public
spaces list, followers see private spaces meant for them, invitations are idempotent, and
a database made before visibility existed gains the columns at start."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text

from pnyx.domain.types import Audience, Handle, SpaceId, SpaceStatus, Visibility
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store import Store

from .factories import NOW, add_accounts, minutes, space

HOST, ADA, BOB = Handle("host"), Handle("ada"), Handle("bob")


@pytest.fixture
async def spaces(store: Store) -> Store:
    await add_accounts(store, "host", "ada", "bob")
    await store.social.follow(ADA, HOST, NOW)
    await store.spaces.create(space("pub"))
    await store.spaces.create(replace(space("unl"), visibility=Visibility.UNLISTED))
    await store.spaces.create(replace(space("p-inv"), visibility=Visibility.PRIVATE))
    await store.spaces.create(
        replace(space("p-fol"), visibility=Visibility.PRIVATE, audience=Audience.FOLLOWERS)
    )
    return store


async def test_visibility_and_audience_round_trip(spaces: Store) -> None:
    rec = await spaces.spaces.get(SpaceId("p-fol"))
    assert rec is not None
    assert (rec.visibility, rec.audience) == (Visibility.PRIVATE, Audience.FOLLOWERS)
    pub = await spaces.spaces.get(SpaceId("pub"))
    assert pub is not None and pub.visibility is Visibility.PUBLIC


async def test_only_public_spaces_are_listed(spaces: Store) -> None:
    listed = await spaces.spaces.list(SpaceStatus.LIVE, visibility=Visibility.PUBLIC)
    assert [r.id for r in listed] == ["pub"]
    everything = await spaces.spaces.list(SpaceStatus.LIVE)
    assert {r.id for r in everything} == {"pub", "unl", "p-inv", "p-fol"}


async def test_followers_see_public_spaces_and_private_ones_for_followers(spaces: Store) -> None:
    followed = await spaces.spaces.followed_by(ADA, SpaceStatus.LIVE)
    assert [r.id for r in followed] == ["pub"]
    with_private = await spaces.spaces.followed_by(ADA, SpaceStatus.LIVE, followers_may_see=True)
    assert {r.id for r in with_private} == {"pub", "p-fol"}
    assert await spaces.spaces.followed_by(BOB, SpaceStatus.LIVE, followers_may_see=True) == []


async def test_invitations_are_idempotent_and_revocable(spaces: Store) -> None:
    p = SpaceId("p-inv")
    assert await spaces.invites.add(p, BOB, HOST, NOW)
    assert not await spaces.invites.add(p, BOB, HOST, NOW + minutes(1))  # already
    assert await spaces.invites.add(p, ADA, HOST, NOW)
    assert await spaces.invites.is_invited(p, BOB)
    assert not await spaces.invites.is_invited(SpaceId("p-fol"), BOB)
    listed = await spaces.invites.of_space(p)
    assert [(i.handle, i.invited_by, i.created_at) for i in listed] == [
        (ADA, HOST, NOW),
        (BOB, HOST, NOW),
    ]
    assert [i.handle for i in await spaces.invites.of_space(p, 1, after=ADA)] == [BOB]
    assert await spaces.invites.remove(p, BOB)
    assert not await spaces.invites.remove(p, BOB)
    assert not await spaces.invites.is_invited(p, BOB)


async def test_inviting_an_unknown_account_or_into_an_unknown_space_is_not_found(
    spaces: Store,
) -> None:
    with pytest.raises(PnyxError) as info:
        await spaces.invites.add(SpaceId("p-inv"), Handle("nobody"), HOST, NOW)
    assert (info.value.kind, info.value.code) == (ErrorKind.NOT_FOUND, "account_not_found")
    with pytest.raises(PnyxError) as info:
        await spaces.invites.add(SpaceId("p-none"), BOB, HOST, NOW)
    assert (info.value.kind, info.value.code) == (ErrorKind.NOT_FOUND, "space_not_found")


async def test_an_older_database_gains_the_visibility_columns(store_url: str) -> None:
    """A spaces table made before visibility existed (no such columns): create_schema adds
    them with their defaults, and the old rows read as public."""
    store = await Store.open(store_url)
    await store.create_schema()
    await add_accounts(store, "host")
    await store.spaces.create(space("old"))
    async with store._db.begin() as conn:  # what an older Pnyx left behind
        await conn.execute(text("DROP TABLE space_invites"))
        if store.dialect == "postgresql":
            await conn.execute(text("ALTER TABLE spaces DROP COLUMN visibility"))
            await conn.execute(text("ALTER TABLE spaces DROP COLUMN audience"))
        else:  # SQLite drops no column a CHECK names: make the older table again
            sql = "SELECT sql FROM sqlite_master WHERE name = 'spaces'"
            new = (await conn.execute(text(sql))).scalar_one()
            old = "\n".join(
                line
                for line in new.splitlines()
                if "visibility" not in line and "audience" not in line
            )
            await conn.execute(text("ALTER TABLE spaces RENAME TO spaces_now"))
            await conn.execute(text(old))
            columns = "id, host, title, status, record, scheduled_start, created_at,"
            columns += " started_at, ended_at, room, room_version"
            await conn.execute(
                text(f"INSERT INTO spaces ({columns}) SELECT {columns} FROM spaces_now")
            )
            await conn.execute(text("DROP TABLE spaces_now"))
        columns_sql = (
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'spaces'"
            " AND column_name = 'visibility'"
            if store.dialect == "postgresql"
            else "SELECT count(*) FROM pragma_table_info('spaces') WHERE name = 'visibility'"
        )
        assert (await conn.execute(text(columns_sql))).scalar_one() == 0
    await store.create_schema()
    rec = await store.spaces.get(SpaceId("old"))
    assert rec is not None
    assert (rec.visibility, rec.audience) == (Visibility.PUBLIC, Audience.INVITED)
    await store.invites.add(SpaceId("old"), HOST, HOST, NOW)  # the new table is there
    await store.close()
