"""Webhooks: a host's endpoints for space, recording and clip events (docs/webhooks.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from pnyx.api.deps import Account, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import Strict
from pnyx.domain.types import DeliveryState, WebhookEvent
from pnyx.errors import ErrorKind
from pnyx.services.webhook_urls import URL_MAX_LEN
from pnyx.services.webhooks import SUBSCRIBABLE, Delivery, Endpoint

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhookIdPath = Annotated[
    str,
    Path(pattern=r"^wh_[A-Za-z0-9_-]{1,37}$", description="A webhook endpoint's id (`wh_…`)"),
]
# The events an endpoint may take (services/webhooks.py SUBSCRIBABLE; not webhook.test).
Subscribable = Literal[
    "space.scheduled",
    "space.started",
    "space.ended",
    "recording.ready",
    "recording.deleted",
    "clip.created",
]
assert set(get_args(Subscribable)) == {e.value for e in SUBSCRIBABLE}
_NO_WEBHOOK = {ErrorKind.NOT_FOUND: "You have no webhook endpoint with this id (`no_webhook`)."}
_NO_STORE = "Private to the caller; never cached."


class NewWebhook(Strict):
    url: str = Field(
        min_length=1,
        max_length=URL_MAX_LEN,
        description="Where events are POSTed: `http(s)://host[:port]/path`, no credentials. "
        "Its host must resolve to public addresses only (loopback, private and link-local "
        "ones are refused unless the node sets `webhook_allow_private`).",
    )
    events: list[Subscribable] | None = Field(
        None,
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        description="The event types to send; all of them when left out.",
    )
    description: str = Field("", max_length=200)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str
    created_at: datetime

    @classmethod
    def of(cls, rec: Endpoint) -> WebhookOut:
        return cls(
            id=rec.id,
            url=rec.url,
            events=list(rec.events),
            description=rec.description,
            created_at=rec.created_at,
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="`whsec_` and the base64 of the signing key: shown this once. Verify "
        "each delivery's `webhook-signature` with it (docs/webhooks.md)."
    )


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class TestQueued(BaseModel):
    id: str = Field(description="The message's `webhook-id`.")


class DeliveryOut(BaseModel):
    msg_id: str = Field(description="The `webhook-id` header: the same on every attempt.")
    event: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_status: int | None = Field(description="The endpoint's last HTTP status, if any.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    done_at: datetime | None

    @classmethod
    def of(cls, rec: Delivery) -> DeliveryOut:
        return cls(
            msg_id=rec.msg_id,
            event=rec.event,
            state=rec.state,
            attempts=rec.attempts,
            created_at=rec.created_at,
            next_attempt_at=rec.due_at if rec.state is DeliveryState.PENDING else None,
            last_status=rec.last_status,
            last_error=rec.last_error,
            done_at=rec.done_at,
        )


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]


@router.post(
    "",
    status_code=201,
    responses=raises(
        notes={
            ErrorKind.INVALID: "`bad_webhook_url` (not http(s)://host/…, or with "
            "credentials or a fragment), `webhook_url_unresolvable` (its host does not "
            "resolve), `webhook_url_private` (it resolves to a loopback, private, "
            "link-local or reserved address).",
            ErrorKind.NOT_FOUND: "The token's account does not exist here (`account_not_found`).",
            ErrorKind.CONFLICT: "`too_many_webhooks`: you have `max_webhooks_per_account` "
            "(default 10) endpoints already; delete one first.",
        }
    ),
)
async def create(
    body: NewWebhook, me: Account, services: ServicesDep, response: Response
) -> WebhookCreated:
    """Register an endpoint for your spaces' events. The answer carries the signing
    secret, shown this once."""
    events = None if body.events is None else [WebhookEvent(e) for e in body.events]
    rec = await services.webhooks.register(me, body.url, events, body.description)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Location"] = f"/v1/webhooks/{rec.id}"
    return WebhookCreated(**WebhookOut.of(rec).model_dump(), secret=rec.secret)


@router.get("", description=f"Your webhook endpoints, oldest first (no secrets). {_NO_STORE}")
async def list_webhooks(me: Account, services: ServicesDep, response: Response) -> WebhookList:
    response.headers["Cache-Control"] = "private, no-store"
    return WebhookList(webhooks=[WebhookOut.of(r) for r in await services.webhooks.endpoints(me)])


@router.delete(
    "/{webhook_id}",
    status_code=204,
    responses={
        204: {"description": "Deleted, with its pending deliveries."},
        **raises(notes=_NO_WEBHOOK),
    },
)
async def delete(webhook_id: WebhookIdPath, me: Account, services: ServicesDep) -> Response:
    await services.webhooks.remove(me, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/test",
    status_code=202,
    responses=raises(
        notes={
            **_NO_WEBHOOK,
            ErrorKind.RATE_LIMITED: "`webhook_test_limited`: at most `webhook_test_burst` (5) test "
            "events at once, then `webhook_test_per_min` (6) a minute, per account.",
        }
    ),
)
async def send_test(webhook_id: WebhookIdPath, me: Account, services: ServicesDep) -> TestQueued:
    """Queue a `webhook.test` event to this endpoint (delivered like any other)."""
    return TestQueued(id=await services.webhooks.send_test(me, webhook_id))


@router.get("/{webhook_id}/deliveries", responses=raises(notes=_NO_WEBHOOK))
async def deliveries(
    webhook_id: WebhookIdPath,
    me: Account,
    services: ServicesDep,
    response: Response,
    limit: int = Query(50, ge=1, le=200),
) -> DeliveryList:
    """The endpoint's recent deliveries, newest first: state, attempts, the last status
    or error, and when the next attempt is due. Private to the caller; never cached."""
    response.headers["Cache-Control"] = "private, no-store"
    found = await services.webhooks.deliveries(me, webhook_id, limit)
    return DeliveryList(deliveries=[DeliveryOut.of(d) for d in found])
