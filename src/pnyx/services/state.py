"""The state document as each caller sees it (:class:`~pnyx.services.views.StateView`).

A listener's read is public (the same for everyone, so an HTTP cache shares it); a stage
member's also says who raised a hand. A stage action answers with the actor's view of
the state it made.
"""

from __future__ import annotations

from pnyx.domain import commands as cmd
from pnyx.domain.codec import room_from_json
from pnyx.domain.room import Room
from pnyx.domain.types import Handle, SpaceId
from pnyx.services.access import SpaceAccess
from pnyx.services.links import is_private
from pnyx.services.listeners import ListenerService
from pnyx.services.spaces import SpaceService
from pnyx.services.views import StateView

# What an account does to a space's stage over HTTP (raising a hand has its own method:
# it needs facts from the store).
StageAction = (
    cmd.LowerHand
    | cmd.SetRole
    | cmd.AnswerInvitation
    | cmd.Mute
    | cmd.Unmute
    | cmd.RemoveMember
    | cmd.Pin
    | cmd.SetSpeakPolicy
)


class StateService:
    def __init__(
        self, spaces: SpaceService, listeners: ListenerService, access: SpaceAccess | None = None
    ) -> None:
        self._spaces = spaces
        self._listeners = listeners
        self._access = access

    async def read(self, space: SpaceId, after: int | None, viewer: Handle | None) -> StateView:
        """The state for ``viewer`` (None: anonymous, the public view). With ``after``
        equal to the current version, waits for the next one (see
        ``ListenerService.snapshot``)."""
        if viewer is None:
            await self._spaces.record(space)  # an unknown space is NOT_FOUND
            for_stage = False
        else:
            for_stage = (await self._spaces.room(space)).on_stage(viewer)
        return await self._listeners.state(space, after, for_stage=for_stage)

    async def act(self, space: SpaceId, action: StageAction) -> StateView:
        """Run ``action``; the actor's view of the new state."""
        return await self._view(await self._spaces.execute(space, action), action.actor)

    async def raise_hand(self, space: SpaceId, actor: Handle) -> StateView:
        """Only someone who may listen may ask to speak (a private space's audience)."""
        if self._access is not None and is_private(space):
            rec = await self._spaces.record(space)
            await self._access.check(rec, room_from_json(rec.room), actor)
        return await self._view(await self._spaces.raise_hand(space, actor), actor)

    async def _view(self, room: Room, actor: Handle) -> StateView:
        return await self._listeners.state(room.id, None, for_stage=room.on_stage(actor))
