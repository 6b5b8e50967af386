"""The webhook courier: every node's owned task that sends the outbox (docs/webhooks.md).

Each pass claims up to ``webhook_batch`` due deliveries (``WebhookRepo.claim``: rows no
other node holds, leased to this one for :attr:`WebhookCourier.lease_s`), sends them at
most ``webhook_concurrency`` at a time (one endpoint's in turn, oldest first), and writes
each outcome under its claim:

- a 2xx answer: delivered;
- anything else (another status, a redirect — never followed —, a timeout, a refused
  connection, an address refused as private): attempt ``n`` failed; the next is due
  ``webhook_retries_s[n-1]`` later, scaled by ``1 ± webhook_jitter`` at random, or,
  after the last of them, the delivery is marked failed.

An attempt is resolved, checked (services/webhook_urls.py) and sent to the checked
address, within ``webhook_timeout_s`` in all. Nothing of a delivery lives only in this
process: a node killed between attempts leaves the row pending in the store, and any
node sends it when it is due; one killed during an attempt leaves it claimed until the
lease lapses, then it is sent again (at least once: receivers dedupe on ``webhook-id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from prometheus_client import Counter

from pnyx.config import Settings
from pnyx.domain.types import DeliveryState
from pnyx.errors import PnyxError
from pnyx.services import webhook_signing as signing
from pnyx.services.webhook_urls import resolve
from pnyx.store.records import ClaimedDelivery
from pnyx.store.webhooks import WebhookRepo

log = logging.getLogger(__name__)

ATTEMPTS = Counter(
    "pnyx_webhook_attempts_total", "Webhook delivery attempts by outcome", ["outcome"]
)
USER_AGENT = "Pnyx-Webhooks/1"
PRUNE_EVERY_S = 60.0  # housekeeping cadence, not a limit: a batch each time


class WebhookCourier:
    def __init__(
        self,
        settings: Settings,
        repo: WebhookRepo,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        self._s = settings
        self._repo = repo
        self._clock = clock
        self._rng = rng or random.Random()
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment between us and the checked address
            timeout=settings.webhook_timeout_s,
            limits=httpx.Limits(max_connections=settings.webhook_concurrency),
        )
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._pruned_at = float("-inf")

    @property
    def lease_s(self) -> float:
        """How long a claim holds its rows: an attempt's timeout twice over (resolving
        and sending are each bounded by it), plus a margin for writing the outcome."""
        return 2 * self._s.webhook_timeout_s + 10.0

    # -- lifecycle (docs/conventions.md, rule 9) -----------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="webhook-courier")

    def wake(self) -> None:
        """Messages were queued on this node: look now rather than at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        """Stop claiming; give the attempts in flight ``webhook_timeout_s`` to finish and
        store their outcomes (a cancelled one would be sent again after its lease), then
        cancel what is left."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), self._s.webhook_timeout_s + 1)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._client.aclose()

    async def _loop(self) -> None:
        failing = False
        while not self._stopping:
            self._wake.clear()
            try:
                sent = await self.run_once()
                await self._prune()
                failing = False
            except PnyxError as exc:
                if not failing:  # one line per outage
                    log.warning("webhook outbox unreachable: %s", exc.message)
                failing = True
                sent = 0
            if sent >= self._s.webhook_batch or self._stopping:
                continue  # more may be due; or stop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._s.webhook_poll_s):
                    await self._wake.wait()

    # -- one pass ------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Claim a batch of due deliveries and attempt each; how many were claimed."""
        now = self._clock()
        claimed = await self._repo.claim(
            _dt(now),
            _dt(now + self.lease_s),
            self._s.webhook_batch,
            token := "c_" + secrets.token_urlsafe(16),
        )
        # One endpoint's messages one after another, oldest first (in the order their
        # events happened, as far as one pass goes); endpoints side by side.
        queues: dict[str, list[ClaimedDelivery]] = {}
        for d in claimed:
            queues.setdefault(d.endpoint_id, []).append(d)
        await asyncio.gather(*(self._deliver_in_turn(q, token) for q in queues.values()))
        return len(claimed)

    async def _prune(self) -> None:
        """At most once per ``PRUNE_EVERY_S``: delete a batch of settled rows older than
        ``webhook_keep_s`` (every node does it; the deletes are idempotent)."""
        now = self._clock()
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        gone = await self._repo.prune(_dt(now - self._s.webhook_keep_s), self._s.webhook_batch)
        if gone:
            log.debug("webhook outbox: %d settled deliveries deleted", gone)

    async def _deliver_in_turn(self, queue: list[ClaimedDelivery], token: str) -> None:
        for d in queue:
            await self._deliver(d, token)

    async def _deliver(self, d: ClaimedDelivery, token: str) -> None:
        async with self._slots:
            status, error = await self._attempt(d)
        attempts = d.attempts + 1
        now = self._clock()
        retries = self._s.webhook_retries_s
        if status is not None and 200 <= status < 300:
            state, due = DeliveryState.DELIVERED, now
            ATTEMPTS.labels("delivered").inc()
        elif attempts > len(retries):
            state, due = DeliveryState.FAILED, now
            ATTEMPTS.labels("failed").inc()
            log.warning(
                "webhook %s (%s) given up after %d attempts: %s",
                d.msg_id,
                d.event,
                attempts,
                error or f"HTTP {status}",
            )
        else:
            jitter = self._s.webhook_jitter
            wait = retries[attempts - 1] * self._rng.uniform(1 - jitter, 1 + jitter)
            state, due = DeliveryState.PENDING, now + wait
            ATTEMPTS.labels("retry").inc()
            log.info(
                "webhook %s (%s) attempt %d failed (%s); next in %.1f s",
                d.msg_id,
                d.event,
                attempts,
                error or f"HTTP {status}",
                wait,
            )
        try:
            kept = await self._repo.settle(
                d.id,
                token,
                state=state,
                attempts=attempts,
                due_at=_dt(due),
                status=status,
                error=error,
                now=_dt(now),
            )
        except PnyxError as exc:  # the row stays claimed; sent again when the lease ends
            log.warning("webhook %s: outcome not stored: %s", d.msg_id, exc.message)
            return
        if not kept:
            log.warning("webhook %s: the claim lapsed before its outcome was stored", d.msg_id)

    async def _attempt(self, d: ClaimedDelivery) -> tuple[int | None, str | None]:
        """One POST: (HTTP status, None) or (None, why it could not be made)."""
        body = d.body.encode()
        timeout = self._s.webhook_timeout_s
        try:
            async with asyncio.timeout(timeout):
                target = await resolve(
                    d.url, allow_private=self._s.webhook_allow_private, timeout_s=timeout
                )
                url = httpx.URL(d.url)
                headers = {
                    **signing.headers(d.secret, d.msg_id, int(self._clock()), body),
                    "content-type": "application/json",
                    "user-agent": USER_AGENT,
                    "host": url.netloc.decode("ascii"),
                }
                # To the addresses just checked, not to whatever the name resolves to
                # next; the next one only when the connection could not be made.
                for i, address in enumerate(target.addresses):
                    request = self._client.build_request(
                        "POST",
                        url.copy_with(host=address),
                        content=body,
                        headers=headers,
                        extensions=(
                            {"sni_hostname": target.host} if target.scheme == "https" else {}
                        ),
                    )
                    try:
                        response = await self._client.send(request, stream=True)
                    except httpx.ConnectError:
                        if i + 1 == len(target.addresses):
                            raise
                        continue
                    await response.aclose()  # the status is all we want; never read a body
                    return response.status_code, None
                raise AssertionError("resolve() returns at least one address")
        except PnyxError as exc:
            return None, exc.message
        except TimeoutError:
            return None, f"no answer within {timeout:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
