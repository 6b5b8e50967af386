"""Request and response bodies. Requests forbid unknown fields.

Responses are made from what the services answer: ``SpaceOut.of`` a ``SpaceSummary``;
the state document *is* the services' ``StateView`` (``StateOut`` only names it for the
OpenAPI document), turned into JSON in one place, ``state_response``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from pnyx.domain.types import Role, SpeakPolicy
from pnyx.services.directory import SpaceSummary
from pnyx.services.views import StateView


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewAccount(Strict):
    handle: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    display_name: str | None = Field(None, max_length=64)


class SignIn(Strict):
    handle: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class AccountOut(BaseModel):
    handle: str
    display_name: str
    created_at: datetime | None = None
    followers: int | None = None


class SessionOut(BaseModel):
    token: str
    account: AccountOut


class ErrorDetail(BaseModel):
    kind: str = Field(description="The class of failure, e.g. `rate_limited`, `invalid`.")
    code: str = Field(description="A stable reason, e.g. `signin_handle_limited`.")
    message: str = Field(description="What was wrong and how to fix it, for people.")


class ErrorOut(BaseModel):
    """Every error answer's body."""

    error: ErrorDetail


class NewSpace(Strict):
    title: str = Field(min_length=1, max_length=500)
    scheduled_start: AwareDatetime | None = None
    who_can_speak: SpeakPolicy = SpeakPolicy.EVERYONE
    record: bool = False


class SpaceOut(BaseModel):
    id: str
    title: str
    host: str
    state: str
    speak_policy: str
    record: bool
    scheduled_start: str | None
    started_at: str | None
    ended_at: str | None
    stage: list[dict[str, Any]]
    listeners: int
    links: dict[str, str]

    @classmethod
    def of(cls, space: SpaceSummary) -> SpaceOut:
        return cls(
            id=space.id,
            title=space.title,
            host=space.host,
            state=space.status.value,
            speak_policy=space.speak_policy.value,
            record=space.record,
            scheduled_start=_iso(space.scheduled_start),
            started_at=_iso(space.started_at),
            ended_at=_iso(space.ended_at),
            stage=[{"handle": m.handle, "role": m.role.value} for m in space.stage],
            listeners=space.listeners,
            links=dict(space.links),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class SpaceList(BaseModel):
    spaces: list[SpaceOut]


class JoinOut(BaseModel):
    listener_id: str
    token: str
    heartbeat_s: float
    media: dict[str, str]
    latency: Literal["low", "standard"]


class HeartbeatOut(BaseModel):
    heartbeat_s: float


class StateOut(StateView):
    # The services' StateView under its API name. Routes answering with it declare
    # ``response_model=StateOut`` and return ``state_response(view)``.
    pass


_STATE_JSON = TypeAdapter(StateView)


def state_response(view: StateView) -> Response:
    """The one place a state document becomes JSON: the bytes FastAPI would make of it
    (pydantic-core's compact JSON), without FastAPI validating it a second time."""
    return Response(_STATE_JSON.dump_json(view), media_type="application/json")


class RoleIn(Strict):
    role: Role


class InvitationIn(Strict):
    accept: bool


class RemoveIn(Strict):
    block: bool = False


class ReactionIn(Strict):
    emoji: str = Field(min_length=1, max_length=16)


class PinIn(Strict):
    url: str | None = Field(None, max_length=4096)


class SpeakPolicyIn(Strict):
    who_can_speak: SpeakPolicy
