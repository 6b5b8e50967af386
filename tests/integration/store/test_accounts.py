from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pnyx.domain.types import Handle
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store import AccountRecord, Store

from .factories import NOW


async def test_create_then_get_returns_the_same_account(store: Store) -> None:
    created = await store.accounts.create(Handle("ada"), "Ada L.", "argon2$hash", NOW)

    assert created == AccountRecord(Handle("ada"), "Ada L.", "argon2$hash", NOW)
    assert await store.accounts.get(Handle("ada")) == created


async def test_get_unknown_handle_is_none(store: Store) -> None:
    assert await store.accounts.get(Handle("nobody")) is None


async def test_a_taken_handle_is_a_conflict_and_keeps_the_first_account(store: Store) -> None:
    await store.accounts.create(Handle("ada"), "Ada", "h1", NOW)

    with pytest.raises(PnyxError) as info:
        await store.accounts.create(Handle("ada"), "Impostor", "h2", NOW)

    assert info.value.kind is ErrorKind.CONFLICT
    assert info.value.code == "handle_taken"
    account = await store.accounts.get(Handle("ada"))
    assert account is not None
    assert account.display_name == "Ada"


async def test_times_come_back_aware_utc_whatever_zone_went_in(store: Store) -> None:
    paris = datetime(2025, 5, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))

    created = await store.accounts.create(Handle("ada"), "Ada", "h", paris)
    fetched = await store.accounts.get(Handle("ada"))

    assert fetched is not None
    assert fetched.created_at == paris  # the same instant, to the microsecond
    assert fetched.created_at.tzinfo is UTC
    assert created.created_at.tzinfo is UTC


async def test_a_naive_time_is_refused(store: Store) -> None:
    with pytest.raises(PnyxError) as info:
        await store.accounts.create(Handle("ada"), "Ada", "h", datetime(2025, 5, 1, 12))

    assert info.value.kind is ErrorKind.INVALID
    assert await store.accounts.get(Handle("ada")) is None


@pytest.mark.parametrize("handle", ["", "x" * 33])
async def test_a_handle_of_bad_length_is_refused_on_both_databases(
    store: Store, handle: str
) -> None:
    with pytest.raises(PnyxError) as info:
        await store.accounts.create(Handle(handle), "X", "h", NOW)

    assert info.value.kind is ErrorKind.INVALID
    assert info.value.code == "invalid_handle"
