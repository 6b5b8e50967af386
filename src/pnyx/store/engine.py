"""The async engine: which driver a URL means, SQLite's connection settings, and one way
in for the repositories (``Database.begin``) that translates errors and refuses to run
once the store is closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from sqlalchemy import Dialect, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from pnyx.errors import ErrorKind, PnyxError
from pnyx.store.translate import translating, unavailable

SQLITE_BUSY_TIMEOUT_MS = 5000

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def async_url(url: str) -> URL:
    """The URL with its async driver: ``sqlite:///f`` → ``sqlite+aiosqlite:///f``,
    ``postgresql://…`` → ``postgresql+asyncpg://…``. Anything else is refused."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise _invalid_url("it is not a database URL") from exc
    shown = parsed.render_as_string(hide_password=True)
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise _invalid_url(f"{shown!r} has an unsupported driver {parsed.drivername!r}")
    if driver.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        # Every pooled connection would get its own empty in-memory database.
        raise _invalid_url(f"{shown!r} is in memory, which the pool cannot share; give a file")
    return parsed.set(drivername=driver)


def _invalid_url(why: str) -> PnyxError:
    return PnyxError(
        ErrorKind.INVALID,
        f"bad database URL: {why}. Use sqlite:///path/to/pnyx.db "
        "or postgresql://user:password@host:5432/dbname",
        code="bad_database_url",
    )


def create_engine(url: URL) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "do_connect", _connect_sqlite)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    # pre-ping: a connection broken by a database restart is replaced, not handed out.
    return create_async_engine(url, pool_pre_ping=True)


def _connect_sqlite(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
    """SQLAlchemy's own way to connect (same arguments), through ``_open_aiosqlite``."""
    assert dialect.loaded_dbapi is not None
    return dialect.loaded_dbapi.connect(*cargs, async_creator_fn=_open_aiosqlite, **cparams)


async def _open_aiosqlite(*args: Any, **kwargs: Any) -> aiosqlite.Connection:
    """``aiosqlite.connect``, but when opening fails (e.g. the folder does not exist) it
    waits for aiosqlite's worker thread to end. aiosqlite only queues that thread's stop;
    if the event loop closed first, the thread would die calling into it, an unhandled
    thread exception (omnilib/aiosqlite#241, #389)."""
    conn = aiosqlite.connect(*args, **kwargs)
    conn._thread.daemon = True  # as SQLAlchemy does: never hold the process open
    try:
        return await conn
    except BaseException:
        await asyncio.to_thread(conn._thread.join, 1.0)
        raise


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers never wait for the writer), wait for the write lock instead of failing
    at once, and enforce foreign keys (SQLite does not by default)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across crashes in WAL mode
    finally:
        cursor.close()


class Database:
    """The engine, as the repositories see it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._closed = False

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    @property
    def closed(self) -> bool:
        return self._closed

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction: committed when the block ends, rolled back if it
        raises. Database failures leave as ``PnyxError``."""
        if self._closed:
            raise unavailable("the store is closed", code="store_closed")
        with translating():
            conn = await self._connect()
            try:
                async with conn.begin():
                    yield conn
            finally:
                # Shielded: a task cancelled here (a node shutting down cancels its
                # background tasks wherever they are) still hands its connection back
                # whole; interrupted, the pool would log a failed reset.
                await asyncio.shield(conn.close())

    async def _connect(self) -> AsyncConnection:
        """A pooled connection. Any failure here means the database cannot be used right
        now (refused, unknown database, bad credentials, pool exhausted): UNAVAILABLE."""
        try:
            return await self._engine.connect()
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            cause = getattr(exc, "orig", None) or exc
            raise unavailable(f"cannot connect to the database: {cause}") from exc

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._engine.dispose()
