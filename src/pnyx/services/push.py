"""Browser push (the Push API with VAPID), an opt-in per browser.

A browser subscribes through its service worker (``web/sw.js``) with this node's VAPID
public key and hands the subscription (endpoint and keys) to ``subscribe``. When the
notifications service stores a page of recipients (``NotificationService.on_delivered``)
``deliver`` only queues it (at most ``push_queue`` pages; the oldest dropped and counted):
one owned task looks up the page's subscriptions (at most ``push_per_user`` per account)
and POSTs each an encrypted message (RFC 8291 ``aes128gcm``, through pywebpush) signed
with VAPID (RFC 8292, ``vapid`` scheme, through py-vapid), with the node's own httpx
client. A 404 or 410 from the push service deletes the subscription; other failures are
dropped (logged): a push is a hint, the notification list is the record. For hosts above
``fanout_threshold`` (fan-out on read, no rows) the pages come from a background job that
walks their followers with subscriptions (services/push_fanout.py).

The VAPID key is the setting ``vapid_private_key`` or one generated once into
``data_dir/vapid_key`` (every node of a deployment must share it, like ``secret``).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher

from pnyx.config import Settings
from pnyx.domain.types import Handle
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.queue_worker import QueueWorker
from pnyx.store.db import Store
from pnyx.store.records import PushSubscriptionRecord

log = logging.getLogger(__name__)

VAPID_EXP_S = 12 * 3600  # a VAPID token's lifetime (RFC 8292: at most 24 h)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def vapid_key(settings: Settings) -> str:
    """The VAPID private key (base64url of the raw P-256 scalar): the setting, or one
    generated once and kept in ``data_dir/vapid_key``."""
    if settings.vapid_private_key:
        return settings.vapid_private_key
    path = Path(settings.data_dir) / "vapid_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    value = _b64(key.private_numbers().private_value.to_bytes(32, "big"))
    path.write_text(value)
    path.chmod(0o600)
    return value


@dataclass(frozen=True, slots=True)
class _Page:
    handles: tuple[Handle, ...]
    payload: bytes


class PushService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Callable[[], float],
    ) -> None:
        self._s = settings
        self._store = store
        self._http: httpx.AsyncClient | None = None  # owned: opened by start, closed by close
        self._clock = clock
        self._vapid = Vapid02.from_raw(vapid_key(settings).encode())
        point = self._vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.public_key = _b64(point)  # the browser's applicationServerKey
        self._pages = QueueWorker[_Page](
            "push-send", self._send_page, settings.push_queue, on_error=_page_failed
        )
        self.sent = 0  # messages the push services accepted
        self.failed = 0  # messages refused or not delivered (dropped)

    # -- subscriptions ------------------------------------------------------------------
    async def subscribe(self, handle: Handle, endpoint: str, p256dh: str, auth: str) -> None:
        """Keep a browser's subscription for ``handle``. INVALID ``bad_push_endpoint``
        for an endpoint that is not https (http only with ``push_allow_http``), and
        ``bad_push_keys`` for keys that are not a P-256 point and a 16-byte secret."""
        url = urlsplit(endpoint)
        schemes = ("https", "http") if self._s.push_allow_http else ("https",)
        if url.scheme not in schemes or not url.hostname:
            raise PnyxError(
                ErrorKind.INVALID,
                "the push endpoint must be an https URL from the browser's PushSubscription",
                code="bad_push_endpoint",
            )
        try:
            point, secret = _unb64(p256dh), _unb64(auth)
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            point, secret = b"", b""
        if len(point) != 65 or len(secret) != 16:
            raise PnyxError(
                ErrorKind.INVALID,
                "keys.p256dh must be a P-256 public key and keys.auth 16 bytes, base64url",
                code="bad_push_keys",
            )
        now = datetime.fromtimestamp(self._clock(), UTC)
        await self._store.notifications.add_push(
            PushSubscriptionRecord(endpoint, handle, p256dh, auth), now
        )

    async def unsubscribe(self, handle: Handle, endpoint: str) -> None:
        await self._store.notifications.remove_push(endpoint, handle)

    # -- sending --------------------------------------------------------------------------
    def deliver(self, handles: Sequence[Handle], item: dict[str, Any]) -> None:
        """Queue a push of ``item`` to ``handles``' browsers; no I/O (never blocks)."""
        self._pages.put(_Page(tuple(handles), json.dumps(item).encode()))

    def start(self) -> None:
        self._http = httpx.AsyncClient(follow_redirects=False)
        self._pages.start()

    async def close(self) -> None:
        await self._pages.stop()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def idle(self) -> bool:
        """No page waiting (one may be being sent)."""
        return self._pages.pending == 0

    @property
    def dropped(self) -> int:
        """Pages dropped because the queue was full."""
        return self._pages.dropped

    async def room(self, below: int) -> None:
        """Return once fewer than ``below`` pages wait to be sent (the big-host job's
        backpressure: it never builds a backlog ahead of the write path's pages)."""
        await self._pages.room(below)

    async def _send_page(self, page: _Page) -> None:
        limit = len(page.handles) * self._s.push_per_user
        subs = await self._store.notifications.push_of(page.handles, limit)
        for sub in subs:
            await self.send(sub, page.payload)

    async def send(self, sub: PushSubscriptionRecord, payload: bytes) -> bool:
        """One encrypted, VAPID-signed POST to ``sub``'s push service; True if accepted."""
        info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
        body = WebPusher(info).encode(payload, "aes128gcm")["body"]
        url = urlsplit(sub.endpoint)
        claims = {
            "aud": f"{url.scheme}://{url.netloc}",
            "exp": int(time.time()) + VAPID_EXP_S,
            "sub": self._s.vapid_subject,
        }
        headers = {
            **self._vapid.sign(claims),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self._s.push_ttl_s),
            "Urgency": "high",
        }
        if self._http is None:
            raise PnyxError(ErrorKind.UNAVAILABLE, "push is not started", code="push_stopped")
        try:
            res = await self._http.post(
                sub.endpoint, content=body, headers=headers, timeout=self._s.push_timeout_s
            )
        except httpx.HTTPError as exc:
            self.failed += 1
            log.info("push to @%s failed: %s", sub.handle, type(exc).__name__)
            return False
        if res.status_code in (404, 410):
            await self._store.notifications.remove_push(sub.endpoint)
            log.info("push to @%s: subscription gone (%d), removed", sub.handle, res.status_code)
        if 200 <= res.status_code < 300:
            self.sent += 1
            return True
        self.failed += 1
        return False


def _page_failed(page: _Page, exc: PnyxError) -> None:
    log.warning("push: a page of %d accounts failed: %s", len(page.handles), exc)
