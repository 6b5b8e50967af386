"""Follower notifications: a space went live, or a scheduled one starts soon.

The request path (``space_started``) only queues a job: it reads nothing, so starting a
space costs the same whatever the host's following. This node's fan-out task then picks
one of two paths per job by a bounded follower count (``followers_count_capped``: at most
``fanout_threshold`` + 1 rows read, whatever the host's following):

- **fan-out on write** (at most ``fanout_threshold`` followers): it pages the followers
  ``fanout_batch`` at a time and bulk-inserts one notification row each.
- **fan-out on read** (above it): nothing is written per follower. ``for_user`` adds the
  live (and soon-starting) spaces of such hosts that the reader follows, found with one
  join on the follows index.

The count reads up to ``fanout_threshold`` + 1 follows rows, as many heap pages when
they are not all-visible (~10 ms warm on PostgreSQL: bench/notify_fanout.py
``--scatter``), so it is never in the start request, and readers reuse a recent answer
(``fanout_big_host_ttl_s``). Reminders: an owned task looks for scheduled spaces starting within
``remind_before_s``; a durable claim per space (``claim_reminder``) makes each reminder go
out once across all nodes. Anyone signed in may also ask to be reminded of a scheduled
space ("remind me", ``reminder_requests``): the same claimed reminder reaches them too,
and they, with the followers, hear when it is rescheduled or cancelled.

Readers: ``inbox`` is the list, newest first, with the unread count among it (bounded by
the page: one mark per account, ``notification_reads``) and how soon to ask again
(``notify_poll_s``). ``on_delivered`` hands each page of stored recipients to browser
push (services/push.py), off the request path; for a host above the threshold,
``on_big_host`` hands the notice to a job that pages the followers with push subscriptions
(services/push_fanout.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pnyx.config import Settings
from pnyx.domain.types import Audience, Handle, SpaceId, SpaceStatus, Visibility
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.queue_worker import QueueWorker
from pnyx.store.db import Store
from pnyx.store.records import NotificationRecord, SpaceRecord

log = logging.getLogger(__name__)

REMIND_CHECK_S = 10.0
REMIND_BATCH = 100  # per check; more wait for the next one
BIG_HOST_CACHE = 10_000  # hosts remembered; the least recently counted go first


class NotificationKind(StrEnum):
    SPACE_LIVE = "space_live"
    SPACE_SOON = "space_soon"
    SPACE_RESCHEDULED = "space_rescheduled"  # detail: the new start (ISO 8601)
    SPACE_CANCELLED = "space_cancelled"  # detail: the host's reason
    SPEAK_INVITE = "speak_invite"  # a moderator asks the recipient onto the stage
    SPACE_INVITE = "space_invite"  # into a private space (services/access.py)


# Kinds that also reach the accounts that asked to be reminded of the space (it going
# live too: they asked about it, follower or not).
_TO_REMINDED = frozenset(
    {
        NotificationKind.SPACE_LIVE,
        NotificationKind.SPACE_SOON,
        NotificationKind.SPACE_RESCHEDULED,
        NotificationKind.SPACE_CANCELLED,
    }
)

Delivered = Callable[[Sequence[Handle], dict[str, Any]], None]
AccessCheck = Callable[[SpaceRecord, Handle], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Job:
    kind: NotificationKind
    space: SpaceRecord
    at: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Inbox:
    items: list[dict[str, Any]]  # newest first
    unread: int  # among ``items``: newer than ``read_at``
    read_at: datetime | None
    poll_s: float  # ask again after this long


class NotificationService:
    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float]) -> None:
        self._s = settings
        self._store = store
        self._clock = clock
        self._jobs = QueueWorker[_Job](
            "notify-fan-out",
            self.fan_out,
            settings.fanout_queue,
            on_error=_fan_out_failed,
            on_drop=_job_dropped,
        )
        self._remind: asyncio.Task[None] | None = None
        self._big: OrderedDict[Handle, tuple[bool, float]] = OrderedDict()  # → (above, when)
        # Wired by the node: browser push for each page of recipients (never blocks), and
        # the private-space check (raises FORBIDDEN when the account may not listen).
        self.on_delivered: Delivered | None = None
        # Wired by the node: a host above the threshold had news (no rows are written):
        # browser push pages its subscribed followers in the background (never blocks).
        self.on_big_host: Callable[[Handle, dict[str, Any]], None] | None = None
        self.check_access: AccessCheck | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self, *, reminders: bool) -> None:
        """Start the fan-out task (every node) and, if ``reminders``, the reminder task."""
        self._jobs.start()
        if reminders:
            self._remind = asyncio.create_task(self._remind_loop(), name="notify-remind")

    async def close(self) -> None:
        remind, self._remind = self._remind, None
        if remind is not None:
            remind.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await remind
        await self._jobs.stop()

    @property
    def idle(self) -> bool:
        """No fan-out job queued or running (for tests and shutdown checks)."""
        return self._jobs.idle

    @property
    def dropped(self) -> int:
        """Jobs dropped because the queue was full."""
        return self._jobs.dropped

    # -- writing --------------------------------------------------------------------
    async def space_started(self, space: SpaceRecord) -> None:
        """A space went live: queue the notice to the host's followers. O(1): the
        fan-out task counts the followers and picks the path."""
        await self._notify(NotificationKind.SPACE_LIVE, space)

    async def remind_due(self) -> int:
        """Send "starting soon" for every scheduled space starting within
        ``remind_before_s`` not reminded yet; how many were sent."""
        now = self._now()
        horizon = now + timedelta(seconds=self._s.remind_before_s)
        sent = 0
        for rec in await self._store.notifications.due_reminders(horizon, REMIND_BATCH):
            if await self._store.notifications.claim_reminder(rec.id, now):
                await self._notify(NotificationKind.SPACE_SOON, rec)
                sent += 1
        return sent

    async def space_rescheduled(self, space: SpaceRecord) -> None:
        """A scheduled space moved: tell the followers and those who asked to be reminded
        (queued, as ``space_started``); its reminder will go out again before the new start."""
        assert space.scheduled_start is not None
        await self._store.notifications.unclaim_reminder(space.id)
        detail = space.scheduled_start.isoformat()
        await self._notify(NotificationKind.SPACE_RESCHEDULED, space, detail)

    async def space_cancelled(self, space: SpaceRecord, reason: str) -> None:
        """The host cancelled a scheduled space: tell the followers and the reminded."""
        await self._notify(NotificationKind.SPACE_CANCELLED, space, reason)

    async def speak_invite(self, space: SpaceId, host: Handle, title: str, to: Handle) -> None:
        """A moderator asked ``to`` onto the stage: one row, written at once."""
        row = NotificationRecord(
            to, NotificationKind.SPEAK_INVITE.value, space, host, title, self._now()
        )
        await self._store.notifications.add_many([row])
        self._delivered([to], _item(row.kind, space, host, title, row.created_at))

    async def _notify(self, kind: NotificationKind, space: SpaceRecord, detail: str = "") -> None:
        """Queue the job; no I/O here (it runs inside the request that started the space)."""
        self._jobs.put(_Job(kind, space, self._now(), detail))

    def _delivered(self, handles: Sequence[Handle], item: dict[str, Any]) -> None:
        if self.on_delivered is not None and handles:
            self.on_delivered(handles, item)

    def _rows(self, job: _Job, handles: Sequence[Handle]) -> list[NotificationRecord]:
        return [
            NotificationRecord(
                recipient=h,
                kind=job.kind.value,
                space=job.space.id,
                host=job.space.host,
                title=job.space.title,
                created_at=job.at,
                detail=job.detail,
            )
            for h in handles
        ]

    def _job_item(self, job: _Job) -> dict[str, Any]:
        s = job.space
        return _item(job.kind.value, s.id, s.host, s.title, job.at, job.detail)

    async def fan_out(self, job: _Job) -> None:
        """One notification row per follower of the job's host, a batch at a time; none
        if the host has more than ``fanout_threshold`` followers (fan-out on read).

        By visibility: an unlisted space notifies nobody (it is shared by link); a
        private space for ``invited`` notifies its invited accounts only, one for
        ``followers`` the followers as a public one does."""
        if job.kind in _TO_REMINDED:
            await self._to_reminded(job)
        if job.space.visibility is Visibility.UNLISTED:
            log.info("space %s (%s): unlisted, no followers notified", job.space.id, job.kind)
            return
        if job.space.visibility is Visibility.PRIVATE and job.space.audience is Audience.INVITED:
            await self._to_invited(job)
            return
        if await self._above_threshold(job.space.host, fresh=True):
            log.info(
                "space %s (%s): @%s is read-fanned-out", job.space.id, job.kind, job.space.host
            )
            if self.on_big_host is not None:  # push still reaches those who opted in
                self.on_big_host(job.space.host, self._job_item(job))
            return
        batch = self._s.fanout_batch
        after: Handle | None = None
        total = 0
        while True:
            page = await self._store.social.followers(job.space.host, batch, after=after)
            if not page:
                break
            await self._store.notifications.add_many(self._rows(job, page), batch)
            self._delivered(page, self._job_item(job))
            total += len(page)
            if len(page) < batch:
                break
            after = page[-1]
        log.info("space %s (%s): notified %d followers", job.space.id, job.kind, total)

    async def _to_reminded(self, job: _Job) -> None:
        """The accounts that asked to be reminded of the space, a batch at a time; for a
        private space only those who may still listen (checked now, not when they asked).
        A follower who also asked gets two rows; readers show one (``for_user``)."""
        batch = self._s.fanout_batch
        after: Handle | None = None
        total = 0
        while True:
            page = await self._store.notifications.reminder_requests(job.space.id, batch, after)
            allowed = [h for h in page if await self._may_listen(job.space, h)]
            await self._store.notifications.add_many(self._rows(job, allowed), batch)
            self._delivered(allowed, self._job_item(job))
            total += len(allowed)
            if len(page) < batch:
                break
            after = page[-1]
        log.info("space %s (%s): notified %d reminded accounts", job.space.id, job.kind, total)

    async def _may_listen(self, space: SpaceRecord, handle: Handle) -> bool:
        if space.visibility is not Visibility.PRIVATE:
            return True
        if self.check_access is None:
            return False
        try:
            await self.check_access(space, handle)
        except PnyxError:
            return False
        return True

    async def _to_invited(self, job: _Job) -> None:
        batch = self._s.fanout_batch
        after: Handle | None = None
        total = 0
        while True:
            page = await self._store.invites.of_space(job.space.id, batch, after=after)
            handles = [invite.handle for invite in page]
            await self._store.notifications.add_many(self._rows(job, handles), batch)
            self._delivered(handles, self._job_item(job))
            total += len(page)
            if len(page) < batch:
                break
            after = page[-1].handle
        log.info("space %s (%s): notified %d invited accounts", job.space.id, job.kind, total)

    async def _remind_loop(self) -> None:
        while True:
            try:
                await self.remind_due()
            except PnyxError as exc:
                log.warning("reminders failed: %s", exc.message)
            await asyncio.sleep(REMIND_CHECK_S)

    # -- reading --------------------------------------------------------------------
    async def for_user(self, handle: Handle, limit: int = 50) -> list[dict[str, Any]]:
        """``handle``'s notifications, newest first: the stored ones (fan-out on write)
        and, synthesised, those of followed hosts above the threshold (fan-out on read)."""
        items = [
            (r.created_at, _item(r.kind, r.space, r.host, r.title, r.created_at, r.detail))
            for r in await self._store.notifications.for_recipient(handle, limit=limit)
        ]
        now = self._now()
        horizon = now + timedelta(seconds=self._s.remind_before_s)
        live = await self._store.spaces.followed_by(
            handle, SpaceStatus.LIVE, limit, followers_may_see=True
        )
        scheduled = await self._store.spaces.followed_by(
            handle, SpaceStatus.SCHEDULED, limit, followers_may_see=True
        )
        soon = [
            rec
            for rec in scheduled
            if rec.scheduled_start is not None and rec.scheduled_start <= horizon
        ]
        big: dict[Handle, bool] = {}
        for kind, recs in (
            (NotificationKind.SPACE_LIVE, live),
            (NotificationKind.SPACE_SOON, soon),
        ):
            for rec in recs:
                if rec.host not in big:
                    big[rec.host] = await self._above_threshold(rec.host)
                if big[rec.host]:
                    at = _at(kind, rec, self._s.remind_before_s)
                    items.append((at, _item(kind.value, rec.id, rec.host, rec.title, at)))
        items.sort(key=lambda item: item[0], reverse=True)
        seen: set[tuple[str, str, str]] = set()
        unique: list[dict[str, Any]] = []
        for _, item in items:
            key = (item["kind"], item["space"], item["detail"])
            if key not in seen:  # a follower who also asked to be reminded: one
                seen.add(key)
                unique.append(item)
        return unique[:limit]

    async def inbox(self, handle: Handle, limit: int = 50) -> Inbox:
        """``for_user`` with how many of those are unread (newer than the account's read
        mark) and when to ask again. Bounded: one page, one mark read."""
        items = await self.for_user(handle, limit)
        read_at = await self._store.notifications.read_at(handle)
        unread = sum(
            1 for item in items if read_at is None or datetime.fromisoformat(item["at"]) > read_at
        )
        return Inbox(items, unread, read_at, self._s.notify_poll_s)

    async def mark_read(self, handle: Handle, until: datetime | None = None) -> datetime:
        """Everything up to ``until`` (default now; never later than now) is read."""
        now = self._now()
        return await self._store.notifications.mark_read(handle, min(until or now, now))

    # -- "remind me" ------------------------------------------------------------------
    async def remind(self, space: SpaceId, handle: Handle) -> SpaceRecord:
        """``handle`` asks to be reminded before ``space`` starts (idempotent). Only a
        scheduled space (CONFLICT ``not_scheduled``) the account may listen to
        (FORBIDDEN for a private one it is not invited to)."""
        rec = await self._scheduled(space)
        if rec.visibility is Visibility.PRIVATE:
            if self.check_access is None:
                raise PnyxError(ErrorKind.FORBIDDEN, "this space is private", code="private_space")
            await self.check_access(rec, handle)
        await self._store.notifications.add_reminder_request(space, handle, self._now())
        return rec

    async def unremind(self, space: SpaceId, handle: Handle) -> None:
        """Forget ``handle``'s request (idempotent; any state)."""
        await self._record(space)
        await self._store.notifications.remove_reminder_request(space, handle)

    async def reminded(self, space: SpaceId, handle: Handle) -> bool:
        await self._record(space)
        return await self._store.notifications.has_reminder_request(space, handle)

    async def _record(self, space: SpaceId) -> SpaceRecord:
        rec = await self._store.spaces.get(space)
        if rec is None:
            raise PnyxError(ErrorKind.NOT_FOUND, f"no space {space}", code="no_space")
        return rec

    async def _scheduled(self, space: SpaceId) -> SpaceRecord:
        rec = await self._record(space)
        if rec.status is not SpaceStatus.SCHEDULED:
            raise PnyxError(
                ErrorKind.CONFLICT,
                f"space {space} is {rec.status.value}: reminders are for scheduled spaces",
                code="not_scheduled",
            )
        return rec

    async def live_followed(self, handle: Handle, limit: int = 50) -> list[SpaceRecord]:
        """The live public spaces of hosts ``handle`` follows, newest first."""
        return await self._store.spaces.followed_by(handle, SpaceStatus.LIVE, limit)

    async def _above_threshold(self, host: Handle, *, fresh: bool = False) -> bool:
        """Whether ``host`` has more than ``fanout_threshold`` followers: a capped count
        (up to threshold + 1 rows, as many heap reads when their pages are not all-visible),
        remembered for ``fanout_big_host_ttl_s`` so that reads do not repeat it for every reader.
        ``fresh`` (the fan-out's decision) counts again and refreshes the memory, so this
        node's readers agree with it at once; other nodes within the TTL."""
        now = self._clock()
        known = None if fresh else self._big.get(host)
        if known is not None and now - known[1] < self._s.fanout_big_host_ttl_s:
            return known[0]
        threshold = self._s.fanout_threshold
        above = await self._store.social.followers_count_capped(host, threshold + 1) > threshold
        self._big[host] = (above, now)
        self._big.move_to_end(host)
        while len(self._big) > BIG_HOST_CACHE:
            self._big.popitem(last=False)
        return above

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)


def _fan_out_failed(job: _Job, exc: PnyxError) -> None:
    log.warning("fan-out of space %s failed: %s", job.space.id, exc.message)


def _job_dropped(job: _Job) -> None:
    log.warning("fan-out queue full: dropped the oldest job")


def _at(kind: NotificationKind, rec: SpaceRecord, before_s: float) -> datetime:
    if kind is NotificationKind.SPACE_LIVE:
        return rec.started_at or rec.created_at
    assert rec.scheduled_start is not None
    return rec.scheduled_start - timedelta(seconds=before_s)


def _item(
    kind: str, space: str, host: str, title: str, at: datetime, detail: str = ""
) -> dict[str, Any]:
    return {
        "kind": kind,
        "space": space,
        "host": host,
        "title": title,
        "at": at.isoformat(),
        "detail": detail,
    }
