"""Browser push to the followers of hosts above ``fanout_threshold``.

Such a host's notice is fanned out on read (services/notifications.py): nothing is
written per follower, so the push that the fan-out on write hands each stored page to
would reach nobody. Followers who opted into push must still hear, so the fan-out task
hands the job here instead (``enqueue``: no I/O, a bounded queue of at most
``push_fanout_queue`` jobs, the oldest dropped and counted). One owned task runs the
jobs one after another: it pages the host's followers *who have a push subscription*
(``NotificationRepo.subscribed_followers``: a join of ``push_subscriptions`` with
``follows``, keyset-paged by handle, ``push_fanout_batch`` a page) into the push queue
(``PushService.deliver``), at most ``push_fanout_per_s`` accounts a second, and only
when fewer than ``BACKLOG_PAGES`` pages wait there: it keeps the sender fed without
building a backlog, so a big host's thousands never hold up (or, the queue being full,
drop) the write path's pages, and memory stays one page per job. A follower without a
subscription is never read. Nothing of this runs in the request that started
the space (bench/notify_fanout.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pnyx.config import Settings
from pnyx.domain.types import Handle
from pnyx.errors import PnyxError
from pnyx.services.metrics import PUSH_FANOUT_ACCOUNTS, PUSH_FANOUT_JOBS
from pnyx.services.queue_worker import QueueWorker
from pnyx.store.db import Store

log = logging.getLogger(__name__)

# The job hands the sender its next page only when fewer than this many wait: enough to
# keep it busy, never a backlog (the sender, one message at a time, is the slow part).
BACKLOG_PAGES = 2


class PushQueue(Protocol):
    """What the job needs of the push sender (services/push.py ``PushService``)."""

    def deliver(self, handles: Sequence[Handle], item: dict[str, Any]) -> None: ...

    async def room(self, below: int) -> None: ...


@dataclass(frozen=True, slots=True)
class _Job:
    host: Handle
    item: dict[str, Any]  # what each follower's browser is sent (a notification item)


class BigHostPush:
    def __init__(self, settings: Settings, store: Store, push: PushQueue) -> None:
        self._s = settings
        self._store = store
        self._push = push
        self._jobs = QueueWorker[_Job](
            "push-big-hosts",
            self._handle,
            settings.push_fanout_queue,
            on_error=_job_failed,
            on_drop=_job_dropped,
        )
        self.paged = 0  # accounts handed to the push queue (subscribed followers)

    def enqueue(self, host: Handle, item: dict[str, Any]) -> None:
        """Queue a push of ``item`` to ``host``'s subscribed followers; no I/O."""
        self._jobs.put(_Job(host, item))

    def start(self) -> None:
        self._jobs.start()

    async def close(self) -> None:
        await self._jobs.stop()

    @property
    def idle(self) -> bool:
        return self._jobs.idle

    @property
    def dropped(self) -> int:
        """Jobs dropped because the queue was full."""
        return self._jobs.dropped

    async def _handle(self, job: _Job) -> None:
        await self.run(job)
        PUSH_FANOUT_JOBS.labels("done").inc()

    async def run(self, job: _Job) -> int:
        """Page ``job.host``'s subscribed followers into the push queue; how many."""
        batch = self._s.push_fanout_batch
        pause = batch / self._s.push_fanout_per_s  # one page's share of the rate
        after: Handle | None = None
        total = 0
        while True:
            page = await self._store.notifications.subscribed_followers(job.host, batch, after)
            if page:
                await self._push.room(BACKLOG_PAGES)  # let the sender catch up
                self._push.deliver(page, job.item)
                total += len(page)
                self.paged += len(page)
                PUSH_FANOUT_ACCOUNTS.inc(len(page))
            if len(page) < batch:
                break
            after = page[-1]
            await asyncio.sleep(pause)
        log.info(
            "space %s (%s): pushed to %d subscribed followers of @%s",
            job.item.get("space"),
            job.item.get("kind"),
            total,
            job.host,
        )
        return total


def _job_failed(job: _Job, exc: PnyxError) -> None:
    PUSH_FANOUT_JOBS.labels("failed").inc()
    log.warning("push to @%s's followers failed: %s", job.host, exc.message)


def _job_dropped(job: _Job) -> None:
    PUSH_FANOUT_JOBS.labels("dropped").inc()
    log.warning("big-host push queue full: dropped the oldest job")
