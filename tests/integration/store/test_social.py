from __future__ import annotations

import pytest

from pnyx.domain.types import Handle
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store import Store

from .factories import NOW, add_accounts

ADA, BOB, CY = Handle("ada"), Handle("bob"), Handle("cy")


@pytest.fixture
async def people(store: Store) -> Store:
    await add_accounts(store, ADA, BOB, CY)
    return store


async def test_follow_is_idempotent_and_counted_once(people: Store) -> None:
    await people.social.follow(BOB, ADA, NOW)
    await people.social.follow(BOB, ADA, NOW)
    await people.social.follow(CY, ADA, NOW)

    assert await people.social.is_following(BOB, ADA)
    assert not await people.social.is_following(ADA, BOB)
    assert await people.social.followers_count(ADA) == 2
    assert await people.social.followers_count(BOB) == 0
    assert await people.social.following(BOB) == [ADA]


async def test_unfollow_is_idempotent(people: Store) -> None:
    await people.social.follow(BOB, ADA, NOW)

    await people.social.unfollow(BOB, ADA)
    await people.social.unfollow(BOB, ADA)
    await people.social.unfollow(CY, ADA)  # never followed

    assert not await people.social.is_following(BOB, ADA)
    assert await people.social.followers_count(ADA) == 0
    assert await people.social.following(BOB) == []


async def test_following_and_followers_list_by_handle_and_page(people: Store) -> None:
    await add_accounts(people, "dee", "eve")
    for followee in ("eve", "bob", "dee", "cy"):
        await people.social.follow(ADA, Handle(followee), NOW)
        await people.social.follow(Handle(followee), ADA, NOW)

    assert await people.social.following(ADA) == ["bob", "cy", "dee", "eve"]
    assert await people.social.following(ADA, limit=2) == ["bob", "cy"]
    assert await people.social.following(ADA, limit=2, after=CY) == ["dee", "eve"]
    assert await people.social.followers(ADA, limit=3) == ["bob", "cy", "dee"]
    assert await people.social.followers(ADA, after=Handle("dee")) == ["eve"]


@pytest.mark.parametrize(("follower", "followee"), [("ghost", "ada"), ("ada", "ghost")])
async def test_following_an_unknown_account_is_not_found(
    people: Store, follower: str, followee: str
) -> None:
    with pytest.raises(PnyxError) as info:
        await people.social.follow(Handle(follower), Handle(followee), NOW)

    assert info.value.kind is ErrorKind.NOT_FOUND
    assert info.value.code == "account_not_found"
    assert "@ghost" in info.value.message
    assert await people.social.following(Handle(follower)) == []


async def test_nobody_follows_or_blocks_themself(people: Store) -> None:
    with pytest.raises(PnyxError) as info:
        await people.social.follow(ADA, ADA, NOW)
    assert info.value.kind is ErrorKind.INVALID
    with pytest.raises(PnyxError) as info:
        await people.social.block(ADA, ADA, NOW)
    assert info.value.kind is ErrorKind.INVALID


async def test_block_and_unblock_are_idempotent(people: Store) -> None:
    await people.social.block(ADA, CY, NOW)
    await people.social.block(ADA, BOB, NOW)
    await people.social.block(ADA, BOB, NOW)

    assert await people.social.is_blocked(ADA, BOB)
    assert not await people.social.is_blocked(BOB, ADA)
    assert await people.social.blocked_by(ADA) == [BOB, CY]

    await people.social.unblock(ADA, BOB)
    await people.social.unblock(ADA, BOB)

    assert not await people.social.is_blocked(ADA, BOB)
    assert await people.social.blocked_by(ADA) == [CY]
    assert await people.social.blocked_by(BOB) == []


async def test_blocking_an_unknown_account_is_not_found(people: Store) -> None:
    with pytest.raises(PnyxError) as info:
        await people.social.block(ADA, Handle("ghost"), NOW)

    assert info.value.kind is ErrorKind.NOT_FOUND
    assert await people.social.blocked_by(ADA) == []


async def test_a_limit_below_one_is_refused(people: Store) -> None:
    with pytest.raises(PnyxError) as info:
        await people.social.following(ADA, limit=0)

    assert info.value.kind is ErrorKind.INVALID
