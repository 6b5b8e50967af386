"""The webhook endpoints and their outbox, on SQLite and PostgreSQL: claims never
overlap, outcomes are kept only under the claim that made them, a lapsed lease hands the
row to the next claimer, and deleting an endpoint deletes its deliveries."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from pnyx.domain.types import DeliveryState, Handle, SpaceId, SpaceStatus
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store import Store
from pnyx.store.records import OutboxMessage, WebhookEndpointRecord

from .factories import NOW, add_accounts, space

HOST, OTHER = Handle("host"), Handle("other")
LEASE = NOW + timedelta(seconds=30)


def endpoint(
    eid: str, owner: Handle = HOST, events: tuple[str, ...] = ("space.started",)
) -> WebhookEndpointRecord:
    return WebhookEndpointRecord(
        id=eid,
        owner=owner,
        url=f"https://example.com/{eid}",
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        events=events,
        description=f"hook {eid}",
        created_at=NOW,
    )


def messages(eid: str, n: int) -> list[OutboxMessage]:
    return [OutboxMessage(eid, f"msg_{eid}_{i}", "space.started", f'{{"n":{i}}}') for i in range(n)]


@pytest.fixture
async def hooked(store: Store) -> Store:
    await add_accounts(store, HOST, OTHER)
    await store.webhooks.add_endpoint(endpoint("wh_a"), cap=10)
    return store


async def test_endpoints_are_the_owners_and_capped(hooked: Store) -> None:
    await hooked.webhooks.add_endpoint(endpoint("wh_b", events=("space.ended",)), cap=10)
    await hooked.webhooks.add_endpoint(endpoint("wh_o", owner=OTHER), cap=10)

    assert [e.id for e in await hooked.webhooks.endpoints(HOST)] == ["wh_a", "wh_b"]
    assert (await hooked.webhooks.endpoints(HOST))[1].events == ("space.ended",)
    assert await hooked.webhooks.endpoint(OTHER, "wh_a") is None
    with pytest.raises(PnyxError) as err:
        await hooked.webhooks.add_endpoint(endpoint("wh_c"), cap=2)
    assert (err.value.kind, err.value.code) == (ErrorKind.CONFLICT, "too_many_webhooks")
    with pytest.raises(PnyxError) as err:
        await hooked.webhooks.add_endpoint(endpoint("wh_x", owner=Handle("nobody")), cap=2)
    assert err.value.code == "account_not_found"
    assert not await hooked.webhooks.delete_endpoint(OTHER, "wh_a")  # not theirs
    assert await hooked.webhooks.delete_endpoint(HOST, "wh_a")
    assert [e.id for e in await hooked.webhooks.endpoints(HOST)] == ["wh_b"]


async def test_a_claim_takes_due_rows_once_and_in_order(hooked: Store) -> None:
    await hooked.webhooks.enqueue(messages("wh_a", 5), NOW)

    first = await hooked.webhooks.claim(NOW, LEASE, 3, "t1")
    second = await hooked.webhooks.claim(NOW, LEASE, 3, "t2")
    third = await hooked.webhooks.claim(NOW, LEASE, 3, "t3")

    assert [d.msg_id for d in first] == ["msg_wh_a_0", "msg_wh_a_1", "msg_wh_a_2"]
    assert [d.msg_id for d in second] == ["msg_wh_a_3", "msg_wh_a_4"]
    assert third == []
    assert first[0].url == "https://example.com/wh_a" and first[0].attempts == 0
    assert first[0].body == '{"n":0}'


async def test_concurrent_claimers_never_share_a_row(hooked: Store) -> None:
    await hooked.webhooks.enqueue(messages("wh_a", 60), NOW)

    batches = await asyncio.gather(
        *(hooked.webhooks.claim(NOW, LEASE, 7, f"t{i}") for i in range(12))
    )

    ids = [d.id for batch in batches for d in batch]
    assert len(ids) == 60 and len(set(ids)) == 60


async def test_outcomes_are_kept_under_the_claim_only(hooked: Store) -> None:
    await hooked.webhooks.enqueue(messages("wh_a", 1), NOW)
    (d,) = await hooked.webhooks.claim(NOW, LEASE, 10, "t1")
    later = NOW + timedelta(seconds=5)

    assert not await hooked.webhooks.settle(
        d.id, "someone-else", state=DeliveryState.DELIVERED, attempts=1, due_at=NOW,
        status=200, error=None, now=NOW,
    )  # fmt: skip
    assert await hooked.webhooks.settle(
        d.id, "t1", state=DeliveryState.PENDING, attempts=1, due_at=later,
        status=500, error="x" * 2000, now=NOW,
    )  # fmt: skip
    assert await hooked.webhooks.claim(NOW, LEASE, 10, "t2") == []  # not due yet
    (again,) = await hooked.webhooks.claim(later, LEASE, 10, "t3")
    assert (again.id, again.attempts) == (d.id, 1)
    assert await hooked.webhooks.settle(
        d.id, "t3", state=DeliveryState.DELIVERED, attempts=2, due_at=later,
        status=204, error=None, now=later,
    )  # fmt: skip
    assert await hooked.webhooks.claim(later + timedelta(hours=1), LEASE, 10, "t4") == []

    (seen,) = await hooked.webhooks.deliveries(HOST, "wh_a")
    assert (seen.state, seen.attempts, seen.last_status, seen.done_at) == (
        DeliveryState.DELIVERED, 2, 204, later,
    )  # fmt: skip
    assert await hooked.webhooks.deliveries(OTHER, "wh_a") == []


async def test_a_lapsed_claim_goes_to_the_next_claimer(hooked: Store) -> None:
    await hooked.webhooks.enqueue(messages("wh_a", 1), NOW)
    (d,) = await hooked.webhooks.claim(NOW, LEASE, 10, "dead-node")

    assert await hooked.webhooks.claim(LEASE - timedelta(seconds=1), LEASE, 10, "t2") == []
    (again,) = await hooked.webhooks.claim(LEASE, LEASE + timedelta(seconds=30), 10, "t3")
    assert again.id == d.id
    # The dead node's late outcome is not kept: the row is the new claimer's.
    assert not await hooked.webhooks.settle(
        d.id, "dead-node", state=DeliveryState.FAILED, attempts=1, due_at=NOW,
        status=None, error="late", now=NOW,
    )  # fmt: skip


async def test_deleting_an_endpoint_drops_its_outbox(hooked: Store) -> None:
    await hooked.webhooks.add_endpoint(endpoint("wh_o", owner=OTHER), cap=10)
    await hooked.webhooks.enqueue(messages("wh_a", 2) + messages("wh_o", 2), NOW)

    assert await hooked.webhooks.delete_endpoint(HOST, "wh_a")
    claimed = await hooked.webhooks.claim(NOW, LEASE, 10, "t1")
    assert {d.msg_id for d in claimed} == {"msg_wh_o_0", "msg_wh_o_1"}


async def test_prune_deletes_settled_rows_only(hooked: Store) -> None:
    await hooked.webhooks.enqueue(messages("wh_a", 3), NOW)
    first, second, _ = await hooked.webhooks.claim(NOW, LEASE, 10, "t1")
    for d, state in ((first, DeliveryState.DELIVERED), (second, DeliveryState.FAILED)):
        assert await hooked.webhooks.settle(
            d.id, "t1", state=state, attempts=1, due_at=NOW, status=None, error=None, now=NOW
        )

    assert await hooked.webhooks.prune(NOW, 10) == 0  # settled at NOW, not before
    assert await hooked.webhooks.prune(NOW + timedelta(seconds=1), 1) == 1
    assert await hooked.webhooks.prune(NOW + timedelta(seconds=1), 10) == 1
    (left,) = await hooked.webhooks.deliveries(HOST, "wh_a")
    assert left.state is DeliveryState.PENDING


async def test_a_space_change_and_its_messages_are_stored_together(hooked: Store) -> None:
    rec = space("s1", host=HOST, status=SpaceStatus.SCHEDULED)
    await hooked.spaces.create(rec, outbox=messages("wh_a", 1))
    assert [d.msg_id for d in await hooked.webhooks.deliveries(HOST, "wh_a")] == ["msg_wh_a_0"]

    def change(expected: int, msg: str) -> Any:
        return hooked.spaces.update_room(
            SpaceId("s1"),
            {"members": [], "pinned": None},
            expected_version=expected,
            new_version=expected + 1,
            status=SpaceStatus.LIVE,
            started_at=NOW,
            ended_at=None,
            outbox=[OutboxMessage("wh_a", msg, "space.started", "{}")],
            now=NOW,
        )

    assert not await change(5, "msg_lost")  # the compare-and-swap lost: no message
    assert await change(1, "msg_won")
    assert [d.msg_id for d in await hooked.webhooks.deliveries(HOST, "wh_a")] == [
        "msg_won",
        "msg_wh_a_0",
    ]
    with pytest.raises(PnyxError):  # the space exists: neither it nor its message is added
        await hooked.spaces.create(rec, outbox=messages("wh_a", 3))
    assert len(await hooked.webhooks.deliveries(HOST, "wh_a")) == 2
