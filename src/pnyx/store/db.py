"""The durable store: one object that opens the database and holds the repositories.

store = await Store.open("sqlite:///pnyx.db")     # or "postgresql://…"
await store.create_schema()
await store.accounts.create(...)
await store.close()
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, String, inspect, text
from sqlalchemy.schema import CreateColumn

from pnyx.errors import PnyxError
from pnyx.store.accounts import AccountRepo
from pnyx.store.analytics import AnalyticsRepo
from pnyx.store.clips import ClipRepo
from pnyx.store.engine import Database, async_url, create_engine
from pnyx.store.invites import InviteRepo
from pnyx.store.models import Base
from pnyx.store.notifications import NotificationRepo
from pnyx.store.recordings import RecordingRepo
from pnyx.store.social import SocialRepo
from pnyx.store.spaces import SpaceRepo
from pnyx.store.transcripts import TranscriptRepo
from pnyx.store.webhooks import WebhookRepo


class Store:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.accounts = AccountRepo(db)
        self.social = SocialRepo(db)
        self.spaces = SpaceRepo(db)
        self.invites = InviteRepo(db)
        self.notifications = NotificationRepo(db)
        self.recordings = RecordingRepo(db)
        self.clips = ClipRepo(db)
        self.webhooks = WebhookRepo(db)
        self.analytics = AnalyticsRepo(db)
        self.transcripts = TranscriptRepo(db)

    @classmethod
    async def open(cls, url: str) -> Store:
        """A store over ``url``: ``sqlite:///path`` (or ``sqlite+aiosqlite:///path``) or
        ``postgresql://…`` (or ``postgresql+asyncpg://…``). Connects lazily: an unreachable
        database shows on first use (``ping``, ``create_schema``, any repository call) as
        PnyxError UNAVAILABLE. A bad URL → PnyxError INVALID "bad_database_url"."""
        return cls(Database(create_engine(async_url(url))))

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._db.dialect

    async def create_schema(self) -> None:
        """Create the tables and indexes that do not exist yet (safe to call every start),
        and add to existing tables the columns that have a server default and are
        missing (a database made by an older Pnyx: e.g. ``spaces.visibility``), adds the
        indexes an existing table lacks (e.g. the search index of ``spaces`` on
        PostgreSQL), and on PostgreSQL widens a VARCHAR the models now make longer
        (``notifications.kind``, 16 → 32). That is the only upgrade there is: no migration
        tool; nothing is ever dropped or narrowed."""
        async with self._db.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            await conn.run_sync(_add_missing_columns)
            await conn.run_sync(_add_missing_indexes)
            await conn.run_sync(_widen_strings)

    async def ping(self) -> bool:
        """True when the database answers (for /healthz); never raises."""
        try:
            async with self._db.begin() as conn:
                await conn.execute(text("SELECT 1"))
        except PnyxError:
            return False
        return True

    async def close(self) -> None:
        """Close every connection. Idempotent; afterwards every call → UNAVAILABLE."""
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _add_missing_columns(conn: Connection) -> None:
    inspector = inspect(conn)
    for table in Base.metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have and column.server_default is not None:
                # "visibility VARCHAR(16) DEFAULT 'public' NOT NULL", as CREATE TABLE says it
                spec = CreateColumn(column).compile(dialect=conn.dialect)
                conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {spec}"))


def _add_missing_indexes(conn: Connection) -> None:
    inspector = inspect(conn)
    for table in Base.metadata.sorted_tables:
        have = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in have:
                # checkfirst: a dialect-specific index (ddl_if) is left out elsewhere
                index.create(conn, checkfirst=True)


def _widen_strings(conn: Connection) -> None:
    if conn.dialect.name != "postgresql":
        return  # SQLite keeps no lengths
    inspector = inspect(conn)
    for table in Base.metadata.sorted_tables:
        have = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            want = getattr(column.type, "length", None)
            got = getattr(have.get(column.name), "length", None)
            if isinstance(column.type, String) and want and got and got < want:
                conn.execute(
                    text(
                        f"ALTER TABLE {table.name} ALTER COLUMN {column.name} TYPE VARCHAR({want})"
                    )
                )
