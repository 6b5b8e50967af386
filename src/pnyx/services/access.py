"""Who may listen to a space, and who is invited into a private one.

Public and unlisted spaces are open to anyone (unlisted ones are only missing from the
lists). A private space admits a signed-in account that is its host, on its stage,
invited (the ``space_invites`` table), or, when its audience is ``followers``, one of
the host's followers. Such an account gets the space's signed links
(services/links.py); every listener read of a private space needs one, and the edge and
the node check it without asking who is reading.

Inviting is a moderator's act (``Action.INVITE_AUDIENCE``: the host and co-hosts). An
invited account gets a ``space_invite`` notification.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pnyx.domain.codec import room_from_json
from pnyx.domain.permissions import Action, require
from pnyx.domain.room import Room
from pnyx.domain.types import Audience, Handle, SpaceId, Visibility
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.links import FRONTROW, LinkSigner, frontrow_path, plain_links, with_prefix
from pnyx.services.spaces import SpaceService
from pnyx.store.db import Store
from pnyx.store.records import InviteRecord, NotificationRecord, SpaceRecord

log = logging.getLogger(__name__)

INVITE_KIND = "space_invite"  # the notification an invited account gets
MAX_INVITES_LISTED = 1000


@dataclass(frozen=True, slots=True)
class Access:
    """A space's links for one caller (signed for a private space) and their expiry
    (None: plain links, they do not expire)."""

    space: SpaceId
    visibility: Visibility
    links: dict[str, str]
    expires: int | None


def private_refusal(handle: Handle | None) -> PnyxError:
    if handle is None:
        return PnyxError(
            ErrorKind.UNAUTHENTICATED,
            "this space is private: sign in with an invited account"
            " (send 'Authorization: Bearer <token>')",
            code="private_space",
        )
    return PnyxError(
        ErrorKind.FORBIDDEN,
        f"this space is private and @{handle} is not invited: ask the host for an invitation",
        code="private_space",
    )


class SpaceAccess:
    def __init__(
        self,
        store: Store,
        spaces: SpaceService,
        signer: LinkSigner,
        clock: Callable[[], float],
        *,
        frontrow: bool = False,
    ) -> None:
        """``frontrow``: the stage nodes push the program to the edges
        (``frontrow_publish_urls``), so a space's links include its front row."""
        self._store = store
        self._spaces = spaces
        self._signer = signer
        self._clock = clock
        self._frontrow = frontrow

    @property
    def signer(self) -> LinkSigner:
        return self._signer

    async def check(self, rec: SpaceRecord, room: Room, handle: Handle | None) -> None:
        """Raise unless ``handle`` may listen to the space: UNAUTHENTICATED (anonymous)
        or FORBIDDEN ``private_space`` for a private space's outsiders."""
        if rec.visibility is not Visibility.PRIVATE:
            return
        if handle is None:
            raise private_refusal(None)
        if handle == rec.host or room.on_stage(handle):
            return
        if handle in room.removed:
            raise PnyxError(ErrorKind.FORBIDDEN, "you were removed from this space", code="removed")
        if await self._store.social.is_blocked(rec.host, handle):
            raise PnyxError(
                ErrorKind.FORBIDDEN, "the host has blocked you from their spaces", code="blocked"
            )
        if any(inv.handle == handle for inv in room.invitations):
            return  # asked onto the stage by a moderator
        if await self._store.invites.is_invited(rec.id, handle):
            return
        if rec.audience is Audience.FOLLOWERS and await self._store.social.is_following(
            handle, rec.host
        ):
            return
        raise private_refusal(handle)

    async def links(self, space: SpaceId, handle: Handle) -> Access:
        """The space's links for ``handle``: signed (if private and allowed), else plain."""
        rec = await self._spaces.record(space)
        await self.check(rec, room_from_json(rec.room), handle)
        return self.access(rec)

    def access(self, rec: SpaceRecord) -> Access:
        """The links of a space whose caller is already known to be allowed; with its
        front row when the join would offer one (the same rule and the same prefix: a
        page renews its signed front-row URL here, as it renews its media links)."""
        links = plain_links(rec.id)
        if self._frontrow:
            links[FRONTROW] = frontrow_path(rec.id)
        if rec.visibility is not Visibility.PRIVATE:
            pre = self._signer.read_prefix(rec.id)
            return Access(rec.id, rec.visibility, with_prefix(links, pre), None)
        pre, exp = self._signer.prefix_for(rec.id)
        return Access(rec.id, rec.visibility, with_prefix(links, pre), exp)

    # -- invitations --------------------------------------------------------------------
    async def _moderated_private(self, space: SpaceId, actor: Handle) -> SpaceRecord:
        rec = await self._spaces.record(space)
        require(room_from_json(rec.room), actor, Action.INVITE_AUDIENCE)
        if rec.visibility is not Visibility.PRIVATE:
            raise PnyxError(
                ErrorKind.CONFLICT,
                f"space {space} is {rec.visibility.value}: anyone with its link may listen,"
                " so there is nobody to invite",
                code="not_private",
            )
        return rec

    async def invite(self, space: SpaceId, actor: Handle, handle: Handle) -> InviteRecord:
        """Invite ``handle`` (idempotent); they get a notification the first time."""
        rec = await self._moderated_private(space, actor)
        now = datetime.fromtimestamp(self._clock(), UTC)
        if await self._store.invites.add(space, handle, actor, now):
            log.info("space %s: @%s invited @%s", space, actor, handle)
            note = NotificationRecord(handle, INVITE_KIND, space, rec.host, rec.title, now)
            await self._store.notifications.add_many([note])
        return InviteRecord(space, handle, actor, now)

    async def invites(self, space: SpaceId, actor: Handle) -> list[InviteRecord]:
        await self._moderated_private(space, actor)
        return await self._store.invites.of_space(space, MAX_INVITES_LISTED)

    async def revoke(self, space: SpaceId, actor: Handle, handle: Handle) -> None:
        """Revoke ``handle``'s invitation. Links already handed out stay valid until they
        expire (``link_ttl_s``): an edge cannot be told to forget them."""
        await self._moderated_private(space, actor)
        if not await self._store.invites.remove(space, handle):
            raise PnyxError(
                ErrorKind.NOT_FOUND, f"@{handle} is not invited to {space}", code="not_invited"
            )
        log.info("space %s: @%s revoked @%s's invitation", space, actor, handle)
