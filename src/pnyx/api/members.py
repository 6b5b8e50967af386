"""Stage actions on a space: hands, roles, invitations, mutes, removals, the pin.

Each route parses, authenticates, runs one action, and answers with the actor's view
of the new state.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from pnyx.api.deps import Account, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import (
    HandlePath,
    InvitationIn,
    PinIn,
    RemoveIn,
    RoleIn,
    SpaceIdPath,
    SpeakPolicyIn,
    StateOut,
    state_response,
)
from pnyx.domain import commands as cmd
from pnyx.domain.types import Handle, SpaceId
from pnyx.errors import ErrorKind
from pnyx.services.accounts import normalise_handle
from pnyx.services.facade import Services
from pnyx.services.state import StageAction

# Every stage action goes through the rules (domain/rules, domain/permissions.py): the
# role table may refuse it, the space's state may rule it out, and the compare-and-swap
# may give up under contention.
router = APIRouter(
    prefix="/v1/spaces/{space_id}",
    tags=["stage"],
    responses=raises(
        notes={
            ErrorKind.FORBIDDEN: "Your role may not do this, or you were removed "
            "(`moderators_only`, `host_only`, `host_protected`, `removed`, …).",
            ErrorKind.CONFLICT: "The space's state rules it out (`not_live`, `space_over`, "
            "`stage_full`, `not_on_stage`, `no_change`, …).",
            ErrorKind.INVALID: "`bad_url`, `cannot_remove_self`, `cannot_assign_host`, …",
            ErrorKind.UNAVAILABLE: "The space is being changed by many at once (`contended`).",
        }
    ),
)


async def _act(services: Services, space_id: str, action: StageAction) -> Response:
    return state_response(await services.state.act(SpaceId(space_id), action))


def _h(handle: str) -> Handle:
    return normalise_handle(handle)


@router.post("/hand", response_model=StateOut)
async def raise_my_hand(space_id: SpaceIdPath, me: Account, services: ServicesDep) -> Response:
    return state_response(await services.state.raise_hand(SpaceId(space_id), me))


@router.delete("/hand", response_model=StateOut)
async def lower_my_hand(space_id: SpaceIdPath, me: Account, services: ServicesDep) -> Response:
    return await _act(services, space_id, cmd.LowerHand(me, me))


@router.delete("/hands/{handle}", response_model=StateOut)
async def decline_hand(
    space_id: SpaceIdPath, handle: HandlePath, me: Account, services: ServicesDep
) -> Response:
    return await _act(services, space_id, cmd.LowerHand(me, _h(handle)))


@router.put("/members/{handle}/role", response_model=StateOut)
async def set_role(
    space_id: SpaceIdPath, handle: HandlePath, body: RoleIn, me: Account, services: ServicesDep
) -> Response:
    return await _act(services, space_id, cmd.SetRole(me, _h(handle), body.role))


@router.post("/invitation", response_model=StateOut)
async def answer_invitation(
    space_id: SpaceIdPath, body: InvitationIn, me: Account, services: ServicesDep
) -> Response:
    return await _act(services, space_id, cmd.AnswerInvitation(me, body.accept))


@router.post("/members/{handle}/mute", response_model=StateOut)
async def mute(
    space_id: SpaceIdPath, handle: HandlePath, me: Account, services: ServicesDep
) -> Response:
    return await _act(services, space_id, cmd.Mute(me, _h(handle)))


@router.post("/members/{handle}/unmute", response_model=StateOut)
async def unmute(
    space_id: SpaceIdPath, handle: HandlePath, me: Account, services: ServicesDep
) -> Response:
    return await _act(services, space_id, cmd.Unmute(me, _h(handle)))


@router.post("/members/{handle}/remove", response_model=StateOut)
async def remove(
    space_id: SpaceIdPath,
    handle: HandlePath,
    me: Account,
    services: ServicesDep,
    body: RemoveIn | None = None,
) -> Response:
    block = body.block if body is not None else False
    return await _act(services, space_id, cmd.RemoveMember(me, _h(handle), block=block))


@router.put("/pin", response_model=StateOut)
async def pin(space_id: SpaceIdPath, body: PinIn, me: Account, services: ServicesDep) -> Response:
    return await _act(services, space_id, cmd.Pin(me, body.url))


@router.put("/speak-policy", response_model=StateOut)
async def speak_policy(
    space_id: SpaceIdPath, body: SpeakPolicyIn, me: Account, services: ServicesDep
) -> Response:
    return await _act(services, space_id, cmd.SetSpeakPolicy(me, body.who_can_speak))
