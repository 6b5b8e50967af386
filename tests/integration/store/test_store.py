from __future__ import annotations

from pathlib import Path

import pytest

from pnyx.domain.types import Handle
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store import Store
from pnyx.store.engine import SQLITE_BUSY_TIMEOUT_MS, async_url, create_engine
from tests.support.procs import free_port

from .factories import NOW


async def test_create_schema_is_idempotent_and_keeps_data(store: Store) -> None:
    await store.accounts.create(Handle("ada"), "Ada", "h", NOW)

    await store.create_schema()
    await store.create_schema()

    assert await store.accounts.get(Handle("ada")) is not None


async def test_ping_answers_while_open(store: Store) -> None:
    assert await store.ping()


async def test_a_closed_store_is_unavailable(store: Store) -> None:
    await store.close()
    await store.close()  # idempotent

    assert not await store.ping()
    with pytest.raises(PnyxError) as info:
        await store.accounts.get(Handle("ada"))
    assert info.value.kind is ErrorKind.UNAVAILABLE
    assert info.value.code == "store_closed"


async def test_the_store_closes_as_a_context_manager(store_url: str) -> None:
    async with await Store.open(store_url) as store:
        assert await store.ping()

    assert not await store.ping()


async def test_sqlite_connections_use_wal_a_busy_timeout_and_foreign_keys(
    tmp_path: Path,
) -> None:
    engine = create_engine(async_url(f"sqlite:///{tmp_path / 'pnyx.db'}"))
    try:
        async with engine.connect() as conn:
            pragma = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            }
    finally:
        await engine.dispose()

    assert pragma == {
        "journal_mode": "wal",
        "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
        "foreign_keys": 1,
    }


@pytest.fixture(params=["sqlite", "postgres"])
def unreachable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'missing-folder' / 'pnyx.db'}"
    return f"postgresql://pnyx@127.0.0.1:{free_port()}/pnyx"  # nothing listens there


async def test_an_unreachable_database_is_unavailable(unreachable_url: str) -> None:
    async with await Store.open(unreachable_url) as store:
        assert not await store.ping()
        with pytest.raises(PnyxError) as info:
            await store.create_schema()
        assert info.value.kind is ErrorKind.UNAVAILABLE
        assert info.value.retry_after is not None
        with pytest.raises(PnyxError) as info:
            await store.accounts.get(Handle("ada"))
        assert info.value.kind is ErrorKind.UNAVAILABLE


async def test_a_missing_postgres_database_is_unavailable(postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    async with await Store.open(url) as store:
        with pytest.raises(PnyxError) as info:
            await store.create_schema()

    assert info.value.kind is ErrorKind.UNAVAILABLE


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///data/pnyx.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///data/pnyx.db", "sqlite+aiosqlite"),
        ("postgresql://u:p@db:5432/pnyx", "postgresql+asyncpg"),
        ("postgres://u:p@db/pnyx", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@db/pnyx", "postgresql+asyncpg"),
    ],
)
def test_urls_get_their_async_driver(given: str, driver: str) -> None:
    url = async_url(given)

    assert url.drivername == driver
    assert url.database in ("data/pnyx.db", "pnyx")


@pytest.mark.parametrize(
    "given", ["mysql://u:secret@db/pnyx", "sqlite://", "sqlite:///:memory:", "not a url"]
)
async def test_bad_urls_are_invalid_and_hide_passwords(given: str) -> None:
    with pytest.raises(PnyxError) as info:
        await Store.open(given)

    assert info.value.kind is ErrorKind.INVALID
    assert info.value.code == "bad_database_url"
    assert "secret" not in info.value.message
