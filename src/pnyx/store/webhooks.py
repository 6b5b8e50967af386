"""Webhook endpoints and the outbox of their deliveries (services/webhooks.py).

The outbox is a table, so a message written here survives any node's restart. Nodes
take due rows with :meth:`WebhookRepo.claim`, which moves the rows' ``due_at`` to the
end of the claim's lease and stamps them with the caller's token in one transaction
(PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED``, then the UPDATE, so concurrent claimers
skip each other's rows instead of waiting; SQLite runs one writer at a time, so one
conditional UPDATE is the claim there). A claimer that dies leaves its rows to be claimed
again when the lease ends; :meth:`settle` writes an outcome only under the token that
claimed the row, so a late claimer cannot overwrite a newer one's.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from pnyx.domain.types import DeliveryState, Handle
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store.checks import check_limit
from pnyx.store.engine import Database
from pnyx.store.models import Account
from pnyx.store.models import WebhookDelivery as D
from pnyx.store.models import WebhookEndpoint as E
from pnyx.store.records import (
    ClaimedDelivery,
    DeliveryRecord,
    OutboxMessage,
    WebhookEndpointRecord,
)

ERROR_MAX_LEN = 500  # a failure's text, as kept


class WebhookRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- endpoints -----------------------------------------------------------------------
    async def add_endpoint(self, rec: WebhookEndpointRecord, cap: int) -> None:
        """Store a new endpoint. Unknown owner → NOT_FOUND "account_not_found"; the owner
        has ``cap`` endpoints already → CONFLICT "too_many_webhooks" (counted under a
        lock on the owner's row, so concurrent registrations cannot pass it together)."""
        async with self._db.begin() as conn:
            if not await _lock_owner(conn, rec.owner):
                raise PnyxError(
                    ErrorKind.NOT_FOUND, f"no account @{rec.owner}", code="account_not_found"
                )
            have = await conn.scalar(
                select(func.count()).select_from(E).where(E.owner == rec.owner)
            )
            if (have or 0) >= cap:
                raise PnyxError(
                    ErrorKind.CONFLICT,
                    f"an account registers at most {cap} webhook endpoints "
                    "(max_webhooks_per_account); delete one first",
                    code="too_many_webhooks",
                )
            await conn.execute(
                insert(E).values(
                    id=rec.id,
                    owner=rec.owner,
                    url=rec.url,
                    secret=rec.secret,
                    events=list(rec.events),
                    description=rec.description,
                    created_at=rec.created_at,
                )
            )

    async def endpoints(self, owner: Handle) -> builtins.list[WebhookEndpointRecord]:
        """``owner``'s endpoints, oldest first (at most ``max_webhooks_per_account``)."""
        stmt = select(E).where(E.owner == owner).order_by(E.created_at, E.id)
        async with self._db.begin() as conn:
            return [_endpoint(row) for row in await conn.execute(stmt)]

    async def endpoint(self, owner: Handle, endpoint_id: str) -> WebhookEndpointRecord | None:
        stmt = select(E).where(E.owner == owner, E.id == endpoint_id)
        async with self._db.begin() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _endpoint(row)

    async def delete_endpoint(self, owner: Handle, endpoint_id: str) -> bool:
        """Delete it and its outbox rows (pending ones are never sent); False if
        ``owner`` has no such endpoint."""
        async with self._db.begin() as conn:
            await conn.execute(
                delete(D).where(
                    D.endpoint_id.in_(select(E.id).where(E.owner == owner, E.id == endpoint_id))
                )
            )
            gone = await conn.execute(delete(E).where(E.owner == owner, E.id == endpoint_id))
            return bool(gone.rowcount == 1)

    # -- the outbox ----------------------------------------------------------------------
    async def enqueue(self, messages: Sequence[OutboxMessage], now: datetime) -> None:
        """Put ``messages`` in the outbox, due now, in one transaction."""
        if not messages:
            return
        async with self._db.begin() as conn:
            await write_outbox(conn, messages, now)

    async def claim(
        self, now: datetime, lease_until: datetime, limit: int, token: str
    ) -> builtins.list[ClaimedDelivery]:
        """Claim up to ``limit`` due pending deliveries, soonest due first, for this
        caller (``token``, unique per call) until ``lease_until``."""
        check_limit(limit)
        due = (D.state == DeliveryState.PENDING.value, D.due_at <= now)
        pick = select(D.id).where(*due).order_by(D.due_at, D.id).limit(limit)
        stamp = {"due_at": lease_until, "claim": token}
        read = (
            select(D.id, D.endpoint_id, D.msg_id, D.event, D.body, D.attempts, E.url, E.secret)
            .join(E, E.id == D.endpoint_id)
            .where(D.claim == token, D.state == DeliveryState.PENDING.value)
            .order_by(D.id)
        )
        async with self._db.begin() as conn:
            if self._db.dialect == "postgresql":
                # Lock the picked rows, skipping those other claimers hold, then stamp
                # them. (Not one UPDATE … IN (SELECT … SKIP LOCKED): the planner may run
                # that subquery again per row, and each run skips what the last locked.)
                ids = list((await conn.execute(pick.with_for_update(skip_locked=True))).scalars())
                if not ids:
                    return []
                await conn.execute(update(D).where(D.id.in_(ids)).values(**stamp))
            else:
                # One writer at a time: the conditional UPDATE is the claim.
                taken = await conn.execute(update(D).where(D.id.in_(pick), *due).values(**stamp))
                if taken.rowcount == 0:
                    return []
            return [
                ClaimedDelivery(
                    id=row.id,
                    endpoint_id=row.endpoint_id,
                    msg_id=row.msg_id,
                    event=row.event,
                    body=row.body,
                    attempts=row.attempts,
                    url=row.url,
                    secret=row.secret,
                )
                for row in await conn.execute(read)
            ]

    async def settle(
        self,
        delivery_id: int,
        token: str,
        *,
        state: DeliveryState,
        attempts: int,
        due_at: datetime,
        status: int | None,
        error: str | None,
        now: datetime,
    ) -> bool:
        """Write an attempt's outcome: delivered, failed for good, or pending again until
        ``due_at``. Only under the claim's token; False when the claim was lost."""
        done = None if state is DeliveryState.PENDING else now
        stmt = (
            update(D)
            .where(D.id == delivery_id, D.claim == token)
            .values(
                state=state.value,
                attempts=attempts,
                due_at=due_at,
                claim=None,
                last_status=status,
                last_error=None if error is None else error[:ERROR_MAX_LEN],
                done_at=done,
            )
        )
        async with self._db.begin() as conn:
            return bool((await conn.execute(stmt)).rowcount == 1)

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` delivered or failed rows settled before ``before``
        (oldest first); how many went."""
        check_limit(limit)
        old = (
            select(D.id)
            .where(D.state != DeliveryState.PENDING.value, D.done_at < before)
            .order_by(D.done_at)
            .limit(limit)
        )
        async with self._db.begin() as conn:
            return int((await conn.execute(delete(D).where(D.id.in_(old)))).rowcount)

    async def deliveries(
        self, owner: Handle, endpoint_id: str, limit: int = 50
    ) -> builtins.list[DeliveryRecord]:
        """The endpoint's deliveries, newest first (empty for another owner's)."""
        check_limit(limit)
        stmt = (
            select(D)
            .join(E, E.id == D.endpoint_id)
            .where(E.owner == owner, E.id == endpoint_id)
            .order_by(D.id.desc())
            .limit(limit)
        )
        async with self._db.begin() as conn:
            return [_delivery(row) for row in await conn.execute(stmt)]


async def write_outbox(
    conn: AsyncConnection, messages: Sequence[OutboxMessage], now: datetime
) -> None:
    """Insert ``messages`` into the outbox, due now, in the caller's transaction: the
    space repository writes a space's events in the transaction that changes it."""
    if not messages:
        return
    values = [
        {
            "endpoint_id": m.endpoint_id,
            "msg_id": m.msg_id,
            "event": m.event,
            "body": m.body,
            "created_at": now,
            "state": DeliveryState.PENDING.value,
            "attempts": 0,
            "due_at": now,
        }
        for m in messages
    ]
    await conn.execute(insert(D), values)


async def _lock_owner(conn: AsyncConnection, owner: Handle) -> bool:
    """Write-lock the owner's account row (a no-op update); False when there is none."""
    stmt = update(Account).where(Account.handle == owner).values(display_name=Account.display_name)
    return bool((await conn.execute(stmt)).rowcount == 1)


def _endpoint(row: Row[Any]) -> WebhookEndpointRecord:
    return WebhookEndpointRecord(
        id=row.id,
        owner=Handle(row.owner),
        url=row.url,
        secret=row.secret,
        events=tuple(row.events),
        description=row.description,
        created_at=row.created_at,
    )


def _delivery(row: Row[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        endpoint_id=row.endpoint_id,
        msg_id=row.msg_id,
        event=row.event,
        state=DeliveryState(row.state),
        attempts=row.attempts,
        created_at=row.created_at,
        due_at=row.due_at,
        last_status=row.last_status,
        last_error=row.last_error,
        done_at=row.done_at,
    )
