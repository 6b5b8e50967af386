"""Stage actions on a space: hands, roles, invitations, mutes, removals, the pin.

Each route parses, authenticates, runs one command, and answers with the actor's view
of the new state.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pnyx.api.deps import Account, NodeDep
from pnyx.api.schemas import InvitationIn, PinIn, RemoveIn, RoleIn, SpeakPolicyIn, StateOut
from pnyx.domain import commands as cmd
from pnyx.domain.room import Room
from pnyx.domain.types import Handle, SpaceId
from pnyx.services.accounts import normalise_handle
from pnyx.services.node import Node
from pnyx.services.spaces import raise_hand

router = APIRouter(prefix="/v1/spaces/{space_id}", tags=["stage"])


async def _run(node: Node, space_id: str, command: cmd.Command) -> StateOut:
    room = await node.spaces.execute(SpaceId(space_id), command)
    return await _view(node, room, getattr(command, "actor", None))


async def _view(node: Node, room: Room, me: Handle | None) -> StateOut:
    view: dict[str, Any] = await node.listeners.state(
        room.id, None, for_stage=me is not None and room.on_stage(me)
    )
    return StateOut(**view)


def _h(handle: str) -> Handle:
    return normalise_handle(handle)


@router.post("/hand")
async def raise_my_hand(space_id: str, me: Account, node: NodeDep) -> StateOut:
    room = await raise_hand(node.spaces, node.store, SpaceId(space_id), me)
    return await _view(node, room, me)


@router.delete("/hand")
async def lower_my_hand(space_id: str, me: Account, node: NodeDep) -> StateOut:
    return await _run(node, space_id, cmd.LowerHand(me, me))


@router.delete("/hands/{handle}")
async def decline_hand(space_id: str, handle: str, me: Account, node: NodeDep) -> StateOut:
    return await _run(node, space_id, cmd.LowerHand(me, _h(handle)))


@router.put("/members/{handle}/role")
async def set_role(
    space_id: str, handle: str, body: RoleIn, me: Account, node: NodeDep
) -> StateOut:
    return await _run(node, space_id, cmd.SetRole(me, _h(handle), body.role))


@router.post("/invitation")
async def answer_invitation(
    space_id: str, body: InvitationIn, me: Account, node: NodeDep
) -> StateOut:
    return await _run(node, space_id, cmd.AnswerInvitation(me, body.accept))


@router.post("/members/{handle}/mute")
async def mute(space_id: str, handle: str, me: Account, node: NodeDep) -> StateOut:
    return await _run(node, space_id, cmd.Mute(me, _h(handle)))


@router.post("/members/{handle}/unmute")
async def unmute(space_id: str, handle: str, me: Account, node: NodeDep) -> StateOut:
    return await _run(node, space_id, cmd.Unmute(me, _h(handle)))


@router.post("/members/{handle}/remove")
async def remove(
    space_id: str, handle: str, me: Account, node: NodeDep, body: RemoveIn | None = None
) -> StateOut:
    block = body.block if body is not None else False
    return await _run(node, space_id, cmd.RemoveMember(me, _h(handle), block=block))


@router.put("/pin")
async def pin(space_id: str, body: PinIn, me: Account, node: NodeDep) -> StateOut:
    return await _run(node, space_id, cmd.Pin(me, body.url))


@router.put("/speak-policy")
async def speak_policy(space_id: str, body: SpeakPolicyIn, me: Account, node: NodeDep) -> StateOut:
    return await _run(node, space_id, cmd.SetSpeakPolicy(me, body.who_can_speak))
