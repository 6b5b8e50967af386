"""Webhooks: a host's endpoints, and the events put into the durable outbox for them
(docs/webhooks.md).

An event becomes one outbox row per endpoint of the host that takes it
(``store/webhooks.py``), written in the request or task where the event happened; every
node's :class:`~pnyx.services.webhook_courier.WebhookCourier` sends them, signed the
Standard Webhooks way, with retries. The body is the JSON ``{"type", "timestamp",
"data"}``; ``webhook-id`` is the same for every endpoint and every retry of one event.

Events come from hooks the node wires (services/node.py). A space created scheduled or
live, started, ended or cancelled: :meth:`space_messages` (``SpaceService.outbox_for``)
builds the rows, and the space repository writes them in the transaction that changes
the space, so the change and its event are stored together or not at all.
:meth:`recording_ready` (``Recorder.on_finished``), :meth:`recording_deleted`
(``ReplayService.on_deleted``) and :meth:`clip_created` (the clips service) go through
:meth:`emit`, which writes right after the fact and never fails the work that triggered
it: an event it cannot write (the store away) is logged and lost.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pnyx.config import Settings
from pnyx.domain.room import Room
from pnyx.domain.types import Handle, SpaceId, SpaceStatus, WebhookEvent
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services import webhook_signing as signing
from pnyx.services.ratelimits import RateKind, RateLimits
from pnyx.services.webhook_urls import resolve
from pnyx.store.db import Store
from pnyx.store.records import (
    ClipRecord,
    DeliveryRecord,
    OutboxMessage,
    SpaceRecord,
    WebhookEndpointRecord,
)

log = logging.getLogger(__name__)

# What the API shows of endpoints and deliveries (it does not reach into the store).
Endpoint = WebhookEndpointRecord
Delivery = DeliveryRecord

# The events an endpoint may take (webhook.test is sent on request only).
SUBSCRIBABLE = tuple(e for e in WebhookEvent if e is not WebhookEvent.TEST)

_BY_STATUS = {
    SpaceStatus.SCHEDULED: WebhookEvent.SPACE_SCHEDULED,
    SpaceStatus.LIVE: WebhookEvent.SPACE_STARTED,
    SpaceStatus.ENDED: WebhookEvent.SPACE_ENDED,
    SpaceStatus.CANCELLED: WebhookEvent.SPACE_ENDED,
}


def new_endpoint_id() -> str:
    return "wh_" + secrets.token_urlsafe(12)


def new_msg_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def space_data(rec: SpaceRecord, room: Room | None = None) -> dict[str, Any]:
    """What a space event says of the space (the host's own: private ones included)."""
    return {
        "id": rec.id,
        "title": rec.title,
        "host": rec.host,
        "status": rec.status.value,
        "visibility": rec.visibility.value,
        "record": rec.record,
        "scheduled_start": _iso(rec.scheduled_start),
        "started_at": _iso(rec.started_at),
        "ended_at": _iso(rec.ended_at),
        "end_reason": None if room is None or room.end_reason is None else room.end_reason.value,
        "links": {"page": f"/s/{rec.id}", "state": f"/v1/spaces/{rec.id}/state"},
    }


class Webhooks:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        limits: RateLimits,
        clock: Callable[[], float],
    ) -> None:
        self._s = settings
        self._store = store
        self._limits = limits
        self._clock = clock
        # Told when messages were queued (the node wires its courier here), so this
        # node sends them at once instead of at its next poll.
        self.on_queued: Callable[[], None] | None = None

    # -- endpoints (the API) -------------------------------------------------------------
    async def register(
        self, owner: Handle, url: str, events: Sequence[WebhookEvent] | None, description: str
    ) -> WebhookEndpointRecord:
        """A new endpoint for ``owner``, with its secret (shown this once by the API).
        ``events`` None: every event."""
        await resolve(
            url, allow_private=self._s.webhook_allow_private, timeout_s=self._s.webhook_timeout_s
        )
        chosen = SUBSCRIBABLE if events is None else tuple(dict.fromkeys(events))
        if not chosen or WebhookEvent.TEST in chosen:
            raise PnyxError(
                ErrorKind.INVALID,
                "events lists one or more of: " + ", ".join(e.value for e in SUBSCRIBABLE),
                code="bad_events",
            )
        rec = WebhookEndpointRecord(
            id=new_endpoint_id(),
            owner=owner,
            url=url,
            secret=signing.new_secret(),
            events=tuple(e.value for e in chosen),
            description=description,
            created_at=self._now(),
        )
        await self._store.webhooks.add_endpoint(rec, self._s.max_webhooks_per_account)
        log.info("@%s registered webhook %s for %s", owner, rec.id, ", ".join(rec.events))
        return rec

    async def endpoints(self, owner: Handle) -> list[WebhookEndpointRecord]:
        return await self._store.webhooks.endpoints(owner)

    async def remove(self, owner: Handle, endpoint_id: str) -> None:
        if not await self._store.webhooks.delete_endpoint(owner, endpoint_id):
            raise _no_webhook(endpoint_id)
        log.info("@%s deleted webhook %s", owner, endpoint_id)

    async def deliveries(self, owner: Handle, endpoint_id: str, limit: int) -> list[DeliveryRecord]:
        """The endpoint's recent deliveries, newest first."""
        await self._endpoint(owner, endpoint_id)
        return await self._store.webhooks.deliveries(owner, endpoint_id, limit)

    async def send_test(self, owner: Handle, endpoint_id: str) -> str:
        """Queue a ``webhook.test`` message to one endpoint; its message id. Rate-limited
        per account (``webhook_test_burst``, ``webhook_test_per_min``)."""
        endpoint = await self._endpoint(owner, endpoint_id)
        await self._limits.check(RateKind.WEBHOOK_TEST, owner)
        msg_id = new_msg_id()
        body = self._body(WebhookEvent.TEST, {"endpoint": endpoint.id})
        message = OutboxMessage(endpoint.id, msg_id, WebhookEvent.TEST.value, body)
        await self._store.webhooks.enqueue([message], self._now())
        self._queued()
        return msg_id

    async def _endpoint(self, owner: Handle, endpoint_id: str) -> WebhookEndpointRecord:
        endpoint = await self._store.webhooks.endpoint(owner, endpoint_id)
        if endpoint is None:
            raise _no_webhook(endpoint_id)
        return endpoint

    # -- events ------------------------------------------------------------------------
    async def emit(self, owner: Handle, event: WebhookEvent, data: dict[str, Any]) -> str | None:
        """Put ``event`` in the outbox for each of ``owner``'s endpoints that takes it:
        the message id, or None when no endpoint takes it or the store refused (logged;
        never raises, so the work that caused the event is never undone by it)."""
        try:
            messages = await self.messages(owner, event, data)
            if not messages:
                return None
            await self._store.webhooks.enqueue(messages, self._now())
        except PnyxError as exc:
            log.warning("webhook %s of @%s lost: %s", event.value, owner, exc.message)
            return None
        log.debug("webhook %s %s of @%s queued", messages[0].msg_id, event, owner)
        self._queued()
        return messages[0].msg_id

    async def messages(
        self, owner: Handle, event: WebhookEvent, data: dict[str, Any]
    ) -> list[OutboxMessage]:
        """The outbox rows of ``event``: one per endpoint of ``owner`` that takes it, one
        message id for all (for a caller that writes them in its own transaction)."""
        endpoints = [
            e for e in await self._store.webhooks.endpoints(owner) if event.value in e.events
        ]
        if not endpoints:
            return []
        msg_id = new_msg_id()
        body = self._body(event, data)
        return [OutboxMessage(e.id, msg_id, event.value, body) for e in endpoints]

    async def space_messages(self, rec: SpaceRecord, room: Room) -> list[OutboxMessage]:
        """The messages of a space created or changing status
        (``SpaceService.outbox_for``: written in the transaction that makes the change,
        so a change stored is an event sent)."""
        event = _BY_STATUS.get(rec.status)
        if event is None:
            return []
        return await self.messages(rec.host, event, {"space": space_data(rec, room)})

    def queued(self) -> None:
        """Messages were written (here or by another service's transaction)."""
        self._queued()

    async def recording_ready(self, space: SpaceId) -> None:
        """A recording was finished (``Recorder.on_finished``): ``recording.ready``."""
        try:
            rec = await self._store.spaces.get(space)
            info = await self._store.recordings.info(space)
        except PnyxError as exc:
            log.warning("webhook recording.ready of space %s lost: %s", space, exc.message)
            return
        if rec is None:
            return
        recording: dict[str, Any] = {
            "download": f"/v1/spaces/{space}/recording.m4a",
            "playlist": f"/media/{space}/replay.m3u8",
            "duration_s": None,
            "bytes": None,
            "finished_at": None,
        }
        if info is not None:
            recording["duration_s"] = round(sum(s.duration for s in info.segments), 3)
            recording["bytes"] = info.size
            recording["finished_at"] = _iso(info.finished_at)
        data = {"space": space_data(rec), "recording": recording}
        await self.emit(rec.host, WebhookEvent.RECORDING_READY, data)

    async def recording_deleted(self, rec: SpaceRecord) -> None:
        """The host deleted the recording (``ReplayService.on_deleted``):
        ``recording.deleted``, so receivers drop the copies they made of it."""
        data = {"space": space_data(rec), "recording": {"deleted_at": _iso(self._now())}}
        await self.emit(rec.host, WebhookEvent.RECORDING_DELETED, data)

    async def clip_created(self, rec: SpaceRecord, clip: dict[str, Any]) -> str | None:
        """A clip of ``rec`` was made (the clips service calls this): ``clip.created``
        to the space's host, with ``clip`` as the clips service describes it (its id,
        page, audio URL, start and duration) and the space."""
        data = {"clip": clip, "space": space_data(rec)}
        return await self.emit(rec.host, WebhookEvent.CLIP_CREATED, data)

    async def clip_made(self, rec: SpaceRecord, clip: ClipRecord) -> str | None:
        """``clip.created`` for a clip the clips service stored (its hook)."""
        return await self.clip_created(
            rec,
            {
                "id": clip.id,
                "page": f"/c/{clip.id}",
                "audio": f"/v1/clips/{clip.id}/clip.m4a",
                "creator": clip.creator,
                "visibility": clip.visibility.value,
                "start_s": clip.start_s,
                "duration": clip.duration,
                "created_at": _iso(clip.created_at),
            },
        )

    # -- helpers -----------------------------------------------------------------------
    def _body(self, event: WebhookEvent, data: dict[str, Any]) -> str:
        payload = {"type": event.value, "timestamp": _iso(self._now()), "data": data}
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)

    def _queued(self) -> None:
        if self.on_queued is not None:
            self.on_queued()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)


def _no_webhook(endpoint_id: str) -> PnyxError:
    return PnyxError(ErrorKind.NOT_FOUND, f"you have no webhook {endpoint_id}", code="no_webhook")
