"""Request and response bodies. Requests forbid unknown fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from pnyx.domain.types import Role, SpeakPolicy


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


class StageMember(BaseModel):
    handle: str
    role: str
    muted: bool
    speaking: bool


class Hands(BaseModel):
    count: int
    handles: list[str] | None = Field(
        None, description="who raised a hand: only for host, co-hosts and speakers"
    )


class StateOut(BaseModel):
    version: int
    space: str | None
    state: str | None
    title: str | None
    host: str | None
    host_away: bool
    end_reason: str | None
    speak_policy: str | None
    stage: list[StageMember]
    hands: Hands
    invited: list[dict[str, str]]
    listeners: int
    reactions: dict[str, int]
    pinned: str | None
    heartbeat_s: float
    # Players use LL-HLS parts ("low") or whole segments ("standard", for big audiences).
    latency: Literal["low", "standard"]


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
