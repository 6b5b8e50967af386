"""Durable data (SQLAlchemy 2, async): accounts, follows, blocks, spaces, recordings,
over a SQLite file (the embedded default) or PostgreSQL (many nodes). Only records leave
this package."""

from pnyx.store.db import Store
from pnyx.store.records import AccountRecord, SpaceRecord

__all__ = ["AccountRecord", "SpaceRecord", "Store"]
