"""Request and response bodies. Requests forbid unknown fields.

Responses are made from what the services answer: ``SpaceOut.of`` a ``SpaceSummary``;
the state document *is* the services' ``StateView`` (``StateOut`` only names it for the
OpenAPI document), turned into JSON in one place, ``state_response``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Response
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    TypeAdapter,
    model_validator,
)

from pnyx.domain.types import SPACE_ID_MAX_LEN, Audience, Limits, Role, SpeakPolicy, Visibility
from pnyx.services.captions import Transcript
from pnyx.services.clips import ClipRecord
from pnyx.services.directory import SpaceSummary
from pnyx.services.listeners import EMOJIS
from pnyx.services.password_policy import MAX_PASSWORD_LEN
from pnyx.services.profiles import BIO_MAX_LEN, DISPLAY_NAME_MAX_LEN, ProfileView
from pnyx.services.views import StateView


class Strict(BaseModel):
    # Booleans are StrictBool: the document says `boolean`, so 0 or "yes" is refused.
    model_config = ConfigDict(extra="forbid")


# The rules of services/accounts.py, stated where the document can show them: a handle
# is 3 to 32 letters, digits or underscores (case-insensitive: kept in lower case), a
# password at most 256 characters (at least `min_password_len`: api/openapi.py puts the
# node's value into the document; the service refuses shorter ones).
HANDLE_PATTERN = r"^[A-Za-z0-9_]{3,32}$"
_HANDLE_HELP = "3 to 32 letters, digits or underscores; case-insensitive (kept in lower case)"
HandleField = Annotated[str, Field(pattern=HANDLE_PATTERN, description=_HANDLE_HELP)]
HandlePath = Annotated[str, Path(pattern=HANDLE_PATTERN, description=_HANDLE_HELP)]
SpaceIdPath = Annotated[
    str,
    Path(min_length=1, max_length=SPACE_ID_MAX_LEN, description="A space's id (as created)"),
]


_ISO_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _date_time_text(value: object) -> object:
    """The document says an RFC 3339 date-time string; pydantic alone would also take a
    number (or digits) as seconds since 1970, so those are refused here."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE_TIME.match(value)):
        return value
    raise ValueError("expected an ISO 8601 date-time with a time zone, e.g. 2026-01-31T18:00:00Z")


# A moment in a request body: an ISO 8601 date-time string with its offset, nothing else.
Instant = Annotated[AwareDatetime, BeforeValidator(_date_time_text)]


class NewAccount(Strict):
    handle: HandleField
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LEN)
    display_name: str | None = Field(None, max_length=64)


class SignIn(Strict):
    handle: HandleField
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LEN)


class AccountOut(BaseModel):
    handle: str
    display_name: str
    created_at: datetime | None = None
    followers: int | None = None


class ProfileOut(BaseModel):
    handle: str
    display_name: str
    bio: str
    created_at: datetime
    followers: int
    following: int
    you_follow: bool | None = Field(
        None, description="whether the caller follows this account (null: anonymous, or you)"
    )

    @classmethod
    def of(cls, p: ProfileView) -> ProfileOut:
        return cls(
            handle=p.handle,
            display_name=p.display_name,
            bio=p.bio,
            created_at=p.created_at,
            followers=p.followers,
            following=p.following,
            you_follow=p.you_follow,
        )


class ProfileIn(Strict):
    display_name: str | None = Field(
        None, min_length=1, max_length=DISPLAY_NAME_MAX_LEN, pattern=r"\S"
    )
    bio: str | None = Field(None, max_length=BIO_MAX_LEN)


class PasswordChange(Strict):
    old_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LEN)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LEN)


class AccountDeletion(Strict):
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LEN)


class DeletedOut(BaseModel):
    handle: str
    spaces_ended: int = Field(description="live spaces ended and scheduled ones cancelled")
    spaces_deleted: int = Field(description="ended spaces without a recording, removed")
    follows_deleted: int
    blocks_deleted: int
    notifications_deleted: int
    invitations_deleted: int
    clips_deleted: int = Field(description="clips the account made, and of its deleted spaces")
    webhooks_deleted: int = Field(description="its webhook endpoints and their deliveries")


class SessionOut(BaseModel):
    token: str
    account: AccountOut


class NewSpace(Strict):
    # Not blank; at most `max_title_len` after stripping (the service checks it and
    # api/openapi.py puts the node's value into the document).
    title: str = Field(min_length=1, pattern=r"\S")
    scheduled_start: Instant | None = None
    who_can_speak: SpeakPolicy = SpeakPolicy.EVERYONE
    record: StrictBool = False
    captions: StrictBool | None = Field(
        None,
        description="live captions (a WebVTT subtitles rendition) and a transcript; "
        "default: the node's `captions_default`",
    )
    visibility: Visibility = Field(
        Visibility.PUBLIC,
        description="public: listed, anyone listens; unlisted: in no list, anyone with the"
        " link listens; private: in no list, only invited accounts (and the audience) listen,"
        " through signed links",
    )
    audience: Audience | None = Field(
        None,
        description="private spaces only: who besides invited accounts may join (default invited)",
    )

    @model_validator(mode="after")
    def _audience_is_for_private(self) -> NewSpace:
        if self.audience is not None and self.visibility is not Visibility.PRIVATE:
            raise ValueError("audience is for private spaces: set visibility to 'private'")
        return self


class SpaceOut(BaseModel):
    id: str
    title: str
    host: str
    state: str
    speak_policy: str
    record: bool
    captions: bool
    scheduled_start: str | None
    started_at: str | None
    ended_at: str | None
    stage: list[dict[str, Any]]
    listeners: int
    links: dict[str, str]
    visibility: Visibility
    audience: Audience | None = None
    cancel_reason: str | None = None  # the host's reason, for a space they cancelled
    recording_deleted: bool = Field(
        False, description="the host deleted the recording: there is no replay any more"
    )
    clip_default_s: float = Field(
        description="a clip's length when none is asked (the node's `clip_default_s`)"
    )
    clip_max_s: float = Field(description="the longest clip one may ask for (`clip_max_s`)")

    @classmethod
    def of(cls, space: SpaceSummary) -> SpaceOut:
        return cls(
            id=space.id,
            title=space.title,
            host=space.host,
            state=space.status.value,
            speak_policy=space.speak_policy.value,
            record=space.record,
            captions=space.captions,
            scheduled_start=_iso(space.scheduled_start),
            started_at=_iso(space.started_at),
            ended_at=_iso(space.ended_at),
            stage=[{"handle": m.handle, "role": m.role.value} for m in space.stage],
            listeners=space.listeners,
            links=dict(space.links),
            visibility=space.visibility,
            audience=space.audience,
            cancel_reason=space.cancel_reason or None,
            recording_deleted=space.recording_deleted,
            clip_default_s=space.clip_default_s,
            clip_max_s=space.clip_max_s,
        )


class CueOut(BaseModel):
    start: float = Field(description="seconds on the replay's timeline")
    end: float
    speaker: str | None = Field(description="the handle of who spoke, when known")
    text: str


class TranscriptOut(BaseModel):
    space_id: str
    complete: bool = Field(
        description="the space is over and its node has stored its last captions: "
        "nothing more will be added"
    )
    cues: list[CueOut]

    @classmethod
    def of(cls, transcript: Transcript) -> TranscriptOut:
        return cls(
            space_id=transcript.space,
            complete=transcript.complete,
            cues=[
                CueOut(start=c.start, end=c.end, speaker=c.speaker, text=c.text)
                for c in transcript.cues
            ],
        )


class SpaceEditIn(Strict):
    """What to change on a scheduled space; fields left out stay as they are."""

    title: str | None = Field(None, min_length=1, pattern=r"\S")
    scheduled_start: Instant | None = None
    who_can_speak: SpeakPolicy | None = None


class EndIn(Strict):
    reason: str = Field(
        "",
        max_length=500,
        description="why (told to the followers when a scheduled space is cancelled)",
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class SpaceList(BaseModel):
    spaces: list[SpaceOut]


ClipIdPath = Annotated[
    str,
    Path(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="A clip's id (as created)"),
]


class NewClip(Strict):
    seconds: float | None = Field(
        None,
        ge=1,
        le=60,
        description="how long, in seconds (default `clip_default_s`, 30; at most "
        "`clip_max_s`). Clips are cut at segment boundaries (1.92 s): up to one segment more.",
    )
    at: float | None = Field(
        None,
        ge=0,
        description="a recorded space that has ended: where the clip starts, seconds into "
        "the recording (default 0). Not for live spaces (their clip is the last seconds).",
    )
    # Not blank; at most `max_title_len` (the service checks it). Default: the space's title.
    title: str | None = Field(None, min_length=1, pattern=r"\S")


class ClipOut(BaseModel):
    id: str
    space: str
    title: str
    host: str
    creator: str
    visibility: Visibility
    start_s: float = Field(description="where the clip starts, seconds into the space")
    duration: float = Field(description="seconds")
    size: int = Field(description="bytes of the .m4a")
    created_at: str
    links: dict[str, str] = Field(description="page (/c/{id}), media (the .m4a), space")

    @classmethod
    def of(cls, clip: ClipRecord) -> ClipOut:
        return cls(
            id=clip.id,
            space=clip.space,
            title=clip.title,
            host=clip.host,
            creator=clip.creator,
            visibility=clip.visibility,
            start_s=round(clip.start_s, 3),
            duration=round(clip.duration, 3),
            size=clip.size,
            created_at=clip.created_at.isoformat(),
            links={
                "page": f"/c/{clip.id}",
                "media": f"/v1/clips/{clip.id}/clip.m4a",
                "self": f"/v1/clips/{clip.id}",
                "space": f"/s/{clip.space}",
            },
        )


class SpacePage(BaseModel):
    spaces: list[SpaceOut]
    next_offset: int | None = Field(None, description="the offset of the next page (null: none)")


class FrontRowOut(BaseModel):
    url: str = Field(
        description="the WebSocket path at the edge (same host as the page): binary"
        " messages of 20 ms Opus frames, each with a sequence number and its program"
        " media time (48 kHz samples, the LL-HLS timeline). For a private space it is"
        " signed (/p/{expiry}/{signature}/frontrow/{id}, the prefix and expiry of `media`):"
        " use it as given"
    )
    default: bool = Field(
        description="play it without being asked (a small audience); else only if the"
        " listener opts in. LL-HLS (`media`) stays the fallback"
    )


class JoinOut(BaseModel):
    listener_id: str
    token: str
    heartbeat_s: float
    media: dict[str, str] = Field(
        description="the listener's links (hls, hls_plain, state, self); signed"
        " (/p/{expiry}/{signature}/…) for a private space: use these, never build them"
    )
    latency: Literal["low", "standard"]
    frontrow: FrontRowOut | None = Field(
        None,
        description="the front row (WebSocket push, lowest delay), when the edges serve it"
        " (signed for a private space, like `media`); null otherwise: listen with `media`",
    )


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
    accept: StrictBool


class RemoveIn(Strict):
    block: StrictBool = False


class ReactionIn(Strict):
    # services/listeners.py refuses any other (`bad_emoji`, 422).
    emoji: str = Field(json_schema_extra={"enum": list[JsonValue](sorted(EMOJIS))})


class PinIn(Strict):
    # domain/rules/moderation.py: an http(s) URL with a host, no spaces; null unpins.
    url: str | None = Field(
        None,
        max_length=Limits().max_pin_len,
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$",
        description="An http:// or https:// URL with a host name, without spaces; `null` unpins.",
    )


class SpeakPolicyIn(Strict):
    who_can_speak: SpeakPolicy


class InviteIn(Strict):
    handle: str = Field(min_length=1, max_length=64)


class InviteOut(BaseModel):
    handle: str
    invited_by: str
    created_at: datetime


class InviteList(BaseModel):
    invites: list[InviteOut]


class LinksOut(BaseModel):
    space: str
    visibility: Visibility
    links: dict[str, str] = Field(
        description="the space's links; its listener reads signed for a private space."
        " `frontrow`, when the edges serve the front row (as the join's `frontrow.url`):"
        " its WebSocket path, signed (/p/{expiry}/{signature}/frontrow/{id}) for a private"
        " space; renew it here before `expires_at`, as the other links. Whether to play it"
        " unasked is the join's `frontrow.default`"
    )
    expires_at: int | None = Field(
        None, description="unix time the signed links stop working (None: plain links)"
    )
