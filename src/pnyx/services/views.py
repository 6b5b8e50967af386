"""What clients read: the room as published in the live state, and the state view.

The "room" part of a space's snapshot is written whenever the room changes; the "stats"
part (listener count, reactions) by the space's ticker; "levels" (who is speaking) by the
stage node. The state view merges them, and tells players which latency mode to use.
Everyone except the stage reads the *public* view, which is identical for every listener
(so an HTTP cache can share one copy).
"""

from __future__ import annotations

from typing import Any, Literal

from pnyx.domain.room import Room
from pnyx.live.base import Snapshot

ROOM = "room"
STATS = "stats"
LEVELS = "levels"


def room_part(room: Room) -> dict[str, Any]:
    return {
        "id": room.id,
        "title": room.title,
        "host": room.host,
        "status": room.status.value,
        "speak_policy": room.speak_policy.value,
        "stage": [
            {"handle": m.handle, "role": m.role.value, "muted": m.muted} for m in room.members
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


def state_view(snapshot: Snapshot, *, for_stage: bool, heartbeat_s: float) -> dict[str, Any]:
    room = snapshot.parts.get(ROOM, {})
    stats = snapshot.parts.get(STATS, {})
    speaking = set(snapshot.parts.get(LEVELS, {}).get("speaking", []))
    hands = room.get("hands", [])
    return {
        "version": snapshot.version,
        "space": room.get("id"),
        "state": room.get("status"),
        "title": room.get("title"),
        "host": room.get("host"),
        "host_away": room.get("host_away", False),
        "end_reason": room.get("end_reason"),
        "speak_policy": room.get("speak_policy"),
        "stage": [{**m, "speaking": m["handle"] in speaking} for m in room.get("stage", [])],
        # Who raised a hand is for the stage only; listeners see how many.
        "hands": {
            "count": len(hands),
            "handles": [h["handle"] for h in hands] if for_stage else None,
        },
        "invited": room.get("invited", []),
        "listeners": int(stats.get("listeners", 0)),
        "reactions": dict(stats.get("reactions", {})),
        "pinned": room.get("pinned"),
        "heartbeat_s": heartbeat_s,
        "latency": stats.get("latency", LOW),
    }
