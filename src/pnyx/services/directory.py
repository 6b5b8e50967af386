"""Spaces as clients list and link them: the :class:`SpaceSummary`.

A summary is the space's durable record (title, host, status, times, stage) plus what
its ticker last published to the live snapshot (how many listen). It is assembled in one
place, :meth:`SpaceDirectory._summary`, for every route that answers with a space: create,
read, list, start, end, and the live spaces of the hosts one follows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pnyx.domain import commands as cmd
from pnyx.domain.codec import room_from_json
from pnyx.domain.room import Member
from pnyx.domain.types import Audience, Handle, SpaceId, SpaceStatus, SpeakPolicy, Visibility
from pnyx.live.base import LiveState
from pnyx.services import views
from pnyx.services.links import LinkSigner, plain_links
from pnyx.services.notifications import NotificationService
from pnyx.services.spaces import NewSpace, SpaceEdit, SpaceService
from pnyx.store.records import SpaceRecord


@dataclass(frozen=True, slots=True)
class SpaceSummary:
    id: SpaceId
    title: str
    host: Handle
    status: SpaceStatus
    speak_policy: SpeakPolicy
    record: bool
    scheduled_start: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    stage: tuple[Member, ...]  # host first, then in the order they came up
    listeners: int
    links: Mapping[str, str]
    visibility: Visibility = Visibility.PUBLIC
    audience: Audience | None = None  # private spaces only
    cancel_reason: str = ""  # why the host cancelled it
    captions: bool = False  # live captions and a transcript
    recording_deleted: bool = False  # its host deleted the recording: no replay
    clip_default_s: float = 30.0  # a clip's length when none is asked (the node's setting)
    clip_max_s: float = 60.0  # the longest clip one may ask for


def _at(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


class SpaceDirectory:
    def __init__(
        self,
        spaces: SpaceService,
        live: LiveState,
        notifications: NotificationService,
        signer: LinkSigner | None = None,
        *,
        audience_candidates: int = 200,
        clip_lengths: tuple[float, float] = (30.0, 60.0),
    ) -> None:
        self._clip_default_s, self._clip_max_s = clip_lengths
        self._audience_candidates = audience_candidates
        self._signer = signer
        self._spaces = spaces
        self._live = live
        self._notifications = notifications

    async def get(self, space: SpaceId) -> SpaceSummary:
        return await self._summary(await self._spaces.record(space))

    async def listing(self, status: SpaceStatus, limit: int = 50) -> list[SpaceSummary]:
        """Public spaces only: unlisted and private ones are in no list. Live ones by
        audience, largest first: the newest ``audience_candidates`` live spaces (one
        store query and one snapshot read each, whatever the audiences) ranked by their
        listener count; scheduled ones soonest first."""
        if status is not SpaceStatus.LIVE:
            recs = await self._spaces.list(status, limit, visibility=Visibility.PUBLIC)
            return await self._summaries(recs)
        candidates = max(limit, self._audience_candidates)
        recs = await self._spaces.list(status, candidates, visibility=Visibility.PUBLIC)
        summaries = await self._summaries(recs)
        summaries.sort(key=lambda s: -s.listeners)  # stable: newest first among equals
        return summaries[:limit]

    async def search(
        self, query: str, limit: int = 50, status: SpaceStatus | None = None
    ) -> list[SpaceSummary]:
        """Public spaces (live, scheduled, ended; or only ``status``) whose title or host
        match ``query``: live first, then scheduled, then ended, at most ``limit``."""
        return await self._summaries(await self._spaces.search(query, limit, status=status))

    async def recent_replays(self, limit: int = 20) -> list[SpaceSummary]:
        """Ended public spaces with a finished recording, most recently ended first."""
        return await self._summaries(await self._spaces.recent_replays(limit))

    async def followed_live(self, handle: Handle, limit: int = 50) -> list[SpaceSummary]:
        """The live public spaces of the hosts ``handle`` follows, newest first."""
        return await self._summaries(await self._notifications.live_followed(handle, limit))

    async def create(self, host: Handle, spec: NewSpace) -> SpaceSummary:
        """The new space; a private one's links are signed (the host may use them)."""
        return await self._summary(await self._spaces.create(host, spec), signed=True)

    async def start(self, space: SpaceId, actor: Handle) -> SpaceSummary:
        return await self._after(space, cmd.StartSpace(actor))

    async def end(self, space: SpaceId, actor: Handle, reason: str = "") -> SpaceSummary:
        """End a live space or cancel a scheduled one (with the host's ``reason``); the
        followers and those who asked to be reminded hear of a cancellation."""
        before = await self._spaces.record(space)
        rec = await self._spaces.cancel(space, actor, reason)
        if before.status is SpaceStatus.SCHEDULED and rec.status is SpaceStatus.CANCELLED:
            await self._notifications.space_cancelled(rec, reason)
        return await self._summary(rec, signed=True)

    async def edit(self, space: SpaceId, actor: Handle, edit: SpaceEdit) -> SpaceSummary:
        """Edit or reschedule a scheduled space (host only); a new start is told to the
        followers and those who asked to be reminded (``space_rescheduled``)."""
        before = await self._spaces.record(space)
        rec = await self._spaces.edit(space, actor, edit)
        if rec.scheduled_start != before.scheduled_start:
            await self._notifications.space_rescheduled(rec)
        return await self._summary(rec, signed=True)

    async def _after(self, space: SpaceId, command: cmd.StartSpace | cmd.EndSpace) -> SpaceSummary:
        await self._spaces.execute(space, command)  # only the host may: signed links
        return await self._summary(await self._spaces.record(space), signed=True)

    async def summaries(self, recs: list[SpaceRecord]) -> list[SpaceSummary]:
        """Summaries of records the caller may see (plain links)."""
        return await self._summaries(recs)

    async def _summaries(self, recs: list[SpaceRecord]) -> list[SpaceSummary]:
        return [await self._summary(rec) for rec in recs]

    async def _summary(self, rec: SpaceRecord, *, signed: bool = False) -> SpaceSummary:
        """``signed``: a private space's links signed for now (for its host); otherwise
        plain (the API prefixes them with the signature a read came with)."""
        room = room_from_json(rec.room)
        snapshot = await self._live.get_snapshot(rec.id)
        return SpaceSummary(
            id=rec.id,
            title=rec.title,
            host=rec.host,
            status=room.status,
            speak_policy=room.speak_policy,
            record=rec.record,
            scheduled_start=rec.scheduled_start,
            started_at=_at(room.started_at),
            ended_at=_at(room.ended_at),
            stage=room.members,
            listeners=views.listener_count(snapshot),
            links=(
                self._signer.links(rec.id)
                if signed and self._signer is not None
                else plain_links(rec.id)
            ),
            visibility=rec.visibility,
            audience=rec.audience if rec.visibility is Visibility.PRIVATE else None,
            cancel_reason=rec.cancel_reason,
            captions=rec.captions,
            recording_deleted=rec.recording_deleted,
            clip_default_s=self._clip_default_s,
            clip_max_s=self._clip_max_s,
        )
