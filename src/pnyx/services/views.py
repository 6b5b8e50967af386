"""What clients read: the room as published in the live state, and the state view.

The "room" part of a space's snapshot is written whenever the room changes; the "stats"
part (listener count, reactions) by the space's ticker; "levels" (who is speaking) by the
stage node. The state view (:class:`StateView`, the one typed model of the state
document: api/schemas.py derives its response schema from it) merges them, and tells
players which latency mode to use. Everyone except the stage reads the *public* view,
which is identical for every listener (so an HTTP cache can share one copy).

The parts are JSON as stored; what the services decide on is read from them here, typed
(:func:`room_status`, :func:`listener_count`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pnyx.domain.room import Room
from pnyx.domain.types import SpaceStatus
from pnyx.live.base import Snapshot

ROOM = "room"
STATS = "stats"
LEVELS = "levels"


def room_part(room: Room, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The room as the state document shows it; ``names``: display names by handle (a
    stage member without one shows its handle)."""
    names = names or {}
    return {
        "id": room.id,
        "title": room.title,
        "host": room.host,
        "status": room.status.value,
        "speak_policy": room.speak_policy.value,
        "stage": [
            {
                "handle": m.handle,
                "role": m.role.value,
                "muted": m.muted,
                "display_name": names.get(m.handle, m.handle),
            }
            for m in room.members
        ],
        "hands": [{"handle": h.handle, "raised_at": h.raised_at} for h in room.hands],
        "invited": [{"handle": i.handle, "role": i.role.value} for i in room.invitations],
        "pinned": room.pinned,
        "host_away": room.host_away_since is not None,
        "end_reason": room.end_reason.value if room.end_reason else None,
        "room_version": room.version,
    }


Latency = Literal["low", "standard"]
LOW: Latency = "low"
STANDARD: Latency = "standard"
LOW_AGAIN_BELOW = 0.8  # hysteresis: back to low latency below 80% of the threshold


def latency_mode(listeners: int, previous: object, max_low: int) -> Latency:
    """What players should do: ``low`` latency (LL-HLS parts, ~7 requests/s each) up to
    ``max_low`` listeners, ``standard`` (whole segments, ~2 requests/s, ~3 s more delay)
    above it, so the request rate a big audience makes shrinks before it overwhelms the
    edges. Back to low only below 80% of the threshold, so a count hovering at the line
    does not flip players back and forth. ``max_low`` 0: always standard."""
    if max_low <= 0 or listeners > max_low:
        return STANDARD
    if previous == STANDARD and listeners >= LOW_AGAIN_BELOW * max_low:
        return STANDARD
    return LOW


def room_status(snapshot: Snapshot | None) -> SpaceStatus | None:
    """The space's status as its published room part says; None without one."""
    room = snapshot.parts.get(ROOM) if snapshot is not None else None
    status = room.get("status") if room is not None else None
    return None if status is None else SpaceStatus(status)


def listener_count(snapshot: Snapshot | None) -> int:
    """How many listen, as the space's ticker last published it (0 before it did)."""
    stats = snapshot.parts.get(STATS, {}) if snapshot is not None else {}
    return int(stats.get("listeners", 0))


# The state document. Its JSON is the API's (GET /v1/spaces/{id}/state and the answers of
# the stage actions), read by the web client and the load-test listeners: the field names
# and their order are the wire format. These models have no docstrings because pydantic
# would put them in the OpenAPI document.
class StageMember(BaseModel):
    model_config = ConfigDict(frozen=True)

    handle: str
    role: str
    muted: bool
    speaking: bool
    display_name: str  # the account's display name (its handle in rooms published before)


class Hands(BaseModel):
    model_config = ConfigDict(frozen=True)

    count: int
    handles: list[str] | None = Field(
        None, description="who raised a hand: only for host, co-hosts and speakers"
    )


class StateView(BaseModel):
    model_config = ConfigDict(frozen=True)

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
    latency: Latency


def state_view(snapshot: Snapshot, *, for_stage: bool, heartbeat_s: float) -> StateView:
    """The state document of ``snapshot``: public, or with who raised a hand
    (``for_stage``). The parts go in as they are stored and are validated in one pass
    (pydantic-core); the API turns the view into JSON once (``api.schemas.state_response``)."""
    room = snapshot.parts.get(ROOM, {})
    stats = snapshot.parts.get(STATS, {})
    speaking = set(snapshot.parts.get(LEVELS, {}).get("speaking", []))
    hands = room.get("hands", [])
    return StateView(
        version=snapshot.version,
        space=room.get("id"),
        state=room.get("status"),
        title=room.get("title"),
        host=room.get("host"),
        host_away=room.get("host_away", False),
        end_reason=room.get("end_reason"),
        speak_policy=room.get("speak_policy"),
        stage=[
            {"display_name": m["handle"], **m, "speaking": m["handle"] in speaking}
            for m in room.get("stage", [])
        ],
        # Who raised a hand is for the stage only; listeners see how many.
        hands={
            "count": len(hands),
            "handles": [h["handle"] for h in hands] if for_stage else None,
        },
        invited=room.get("invited", []),
        listeners=int(stats.get("listeners", 0)),
        reactions=dict(stats.get("reactions", {})),
        pinned=room.get("pinned"),
        heartbeat_s=heartbeat_s,
        latency=stats.get("latency", LOW),
    )
