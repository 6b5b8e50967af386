from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC

import pytest

from pnyx.domain.types import SpaceId, SpaceStatus
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store import Store

from .factories import NOW, add_accounts, minutes, space

S1 = SpaceId("s1")


@pytest.fixture
async def hosted(store: Store) -> Store:
    await add_accounts(store, "host", "other")
    return store


async def test_create_then_get_returns_the_same_space(hosted: Store) -> None:
    room = {"members": [{"handle": "host", "role": "host"}], "pinned": None, "n": [1, 2.5]}
    record = space("s1", status=SpaceStatus.SCHEDULED, scheduled_start=NOW + minutes(30), room=room)

    await hosted.spaces.create(record)

    assert await hosted.spaces.get(S1) == record


async def test_get_unknown_space_is_none(hosted: Store) -> None:
    assert await hosted.spaces.get(SpaceId("nope")) is None


async def test_space_times_come_back_aware_utc(hosted: Store) -> None:
    await hosted.spaces.create(
        space("s1", scheduled_start=NOW + minutes(5), started_at=NOW + minutes(6))
    )

    got = await hosted.spaces.get(S1)

    assert got is not None
    for when in (got.created_at, got.scheduled_start, got.started_at):
        assert when is not None
        assert when.tzinfo is UTC
    assert got.ended_at is None


async def test_a_reused_space_id_is_a_conflict(hosted: Store) -> None:
    await hosted.spaces.create(space("s1"))

    with pytest.raises(PnyxError) as info:
        await hosted.spaces.create(space("s1", host="other"))

    assert info.value.kind is ErrorKind.CONFLICT
    assert info.value.code == "space_exists"


async def test_a_space_of_an_unknown_host_is_not_found(hosted: Store) -> None:
    with pytest.raises(PnyxError) as info:
        await hosted.spaces.create(space("s1", host="ghost"))

    assert info.value.kind is ErrorKind.NOT_FOUND
    assert await hosted.spaces.get(S1) is None


async def test_live_spaces_list_newest_first(hosted: Store) -> None:
    await hosted.spaces.create(space("old", started_at=NOW))
    await hosted.spaces.create(space("new", started_at=NOW + minutes(10)))
    await hosted.spaces.create(space("mid", started_at=NOW + minutes(5)))
    await hosted.spaces.create(space("sched", status=SpaceStatus.SCHEDULED))

    listed = await hosted.spaces.list(SpaceStatus.LIVE)

    assert [s.id for s in listed] == ["new", "mid", "old"]
    assert [s.id for s in await hosted.spaces.list(SpaceStatus.LIVE, limit=2)] == ["new", "mid"]


async def test_scheduled_spaces_list_soonest_first(hosted: Store) -> None:
    for name, at in (("later", 60), ("soon", 5), ("sooner", 1), ("middle", 30)):
        await hosted.spaces.create(
            space(name, status=SpaceStatus.SCHEDULED, scheduled_start=NOW + minutes(at))
        )
    await hosted.spaces.create(space("live", started_at=NOW))

    listed = await hosted.spaces.list(SpaceStatus.SCHEDULED)

    assert [s.id for s in listed] == ["sooner", "soon", "middle", "later"]
    assert await hosted.spaces.list(SpaceStatus.ENDED) == []


async def test_update_room_swaps_when_the_version_matches(hosted: Store) -> None:
    await hosted.spaces.create(space("s1", status=SpaceStatus.SCHEDULED, room_version=3))

    won = await hosted.spaces.update_room(
        S1,
        {"members": ["host"], "pinned": "https://example.org"},
        expected_version=3,
        new_version=4,
        status=SpaceStatus.LIVE,
        started_at=NOW + minutes(1),
        ended_at=None,
    )

    assert won
    got = await hosted.spaces.get(S1)
    assert got is not None
    assert got.room == {"members": ["host"], "pinned": "https://example.org"}
    assert (got.room_version, got.status) == (4, SpaceStatus.LIVE)
    assert got.started_at == NOW + minutes(1)
    assert got.ended_at is None


async def test_update_room_with_a_stale_version_changes_nothing(hosted: Store) -> None:
    record = space("s1", room_version=5)
    await hosted.spaces.create(record)

    won = await hosted.spaces.update_room(
        S1,
        {"members": ["intruder"]},
        expected_version=4,
        new_version=6,
        status=SpaceStatus.ENDED,
        started_at=None,
        ended_at=NOW,
    )

    assert not won
    assert await hosted.spaces.get(S1) == record


async def test_update_room_keeps_set_times_when_given_none(hosted: Store) -> None:
    await hosted.spaces.create(space("s1", started_at=NOW))

    assert await hosted.spaces.update_room(
        S1,
        {},
        expected_version=1,
        new_version=2,
        status=SpaceStatus.ENDED,
        started_at=None,
        ended_at=NOW + minutes(45),
    )

    got = await hosted.spaces.get(S1)
    assert got is not None
    assert (got.started_at, got.ended_at) == (NOW, NOW + minutes(45))
    assert [s.id for s in await hosted.spaces.list(SpaceStatus.ENDED)] == ["s1"]


async def test_update_room_of_an_unknown_space_is_not_found(hosted: Store) -> None:
    with pytest.raises(PnyxError) as info:
        await hosted.spaces.update_room(
            SpaceId("nope"),
            {},
            expected_version=1,
            new_version=2,
            status=SpaceStatus.LIVE,
            started_at=None,
            ended_at=None,
        )

    assert info.value.kind is ErrorKind.NOT_FOUND


async def test_update_room_refuses_a_version_that_does_not_grow(hosted: Store) -> None:
    await hosted.spaces.create(space("s1", room_version=2))

    with pytest.raises(PnyxError) as info:
        await hosted.spaces.update_room(
            S1,
            {},
            expected_version=2,
            new_version=2,
            status=SpaceStatus.LIVE,
            started_at=None,
            ended_at=None,
        )

    assert info.value.kind is ErrorKind.INVALID


async def test_of_two_concurrent_updaters_exactly_one_wins(hosted: Store) -> None:
    await hosted.spaces.create(space("s1", room_version=7))

    async def updater(name: str) -> bool:
        return await hosted.spaces.update_room(
            S1,
            {"winner": name},
            expected_version=7,
            new_version=8,
            status=SpaceStatus.LIVE,
            started_at=None,
            ended_at=None,
        )

    results = await asyncio.gather(updater("a"), updater("b"))

    assert sorted(results) == [False, True]
    got = await hosted.spaces.get(S1)
    assert got is not None
    assert got.room == {"winner": "a" if results[0] else "b"}
    assert got.room_version == 8


async def test_processes_retrying_the_swap_lose_no_update(hosted: Store, store_url: str) -> None:
    """Several "API processes" (one engine each) increment a counter in the same room,
    each re-reading and retrying when it loses: every increment must land exactly once."""
    await hosted.spaces.create(space("s1", room={"n": 0}, room_version=0))
    workers, increments = 4, 8
    others = [await Store.open(store_url) for _ in range(workers - 1)]
    lost = 0

    async def worker(store: Store) -> None:
        nonlocal lost
        for _ in range(increments):
            while True:
                current = await store.spaces.get(S1)
                assert current is not None
                room = {"n": current.room["n"] + 1}
                version = current.room_version
                if await store.spaces.update_room(
                    S1,
                    room,
                    expected_version=version,
                    new_version=version + 1,
                    status=SpaceStatus.LIVE,
                    started_at=None,
                    ended_at=None,
                ):
                    break
                lost += 1

    try:
        await asyncio.gather(*(worker(s) for s in [hosted, *others]))
    finally:
        for other in others:
            await other.close()

    got = await hosted.spaces.get(S1)
    assert got is not None
    assert got.room == {"n": workers * increments}
    assert got.room_version == workers * increments
    assert lost > 0  # the workers did contend; the swap arbitrated


async def test_record_fields_round_trip_unchanged(hosted: Store) -> None:
    record = replace(space("s1"), record=False, title="Ünïcode ✓ title")

    await hosted.spaces.create(record)

    assert await hosted.spaces.get(S1) == record
