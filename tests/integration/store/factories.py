"""Builders shared by the store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pnyx.domain.types import Handle, SpaceId, SpaceStatus
from pnyx.store import SpaceRecord, Store

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


async def add_accounts(store: Store, *handles: str) -> None:
    for handle in handles:
        await store.accounts.create(Handle(handle), handle.title(), "argon2-hash", NOW)


def space(
    space_id: str,
    *,
    host: str = "host",
    status: SpaceStatus = SpaceStatus.LIVE,
    created_at: datetime = NOW,
    scheduled_start: datetime | None = None,
    started_at: datetime | None = None,
    room: dict[str, Any] | None = None,
    room_version: int = 1,
) -> SpaceRecord:
    return SpaceRecord(
        id=SpaceId(space_id),
        host=Handle(host),
        title=f"Space {space_id}",
        status=status,
        record=True,
        scheduled_start=scheduled_start,
        created_at=created_at,
        room=room if room is not None else {"members": [], "pinned": None},
        room_version=room_version,
        started_at=started_at,
    )


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)
