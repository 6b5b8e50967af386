"""Admission control: every process bounds its in-flight work, and the stage has a lane
that listener traffic cannot take (docs/architecture.md, promise 2).

Pure policy: no I/O, no clock reads (``now`` is passed in). Each admission-controlled
request belongs to a lane; a lane is refused once the process's in-flight count reaches
its threshold (a fraction of ``capacity``), so overload sheds in a fixed order:
reactions → heartbeats → new joins → listener actions (and before all of them, live
captions: :meth:`Admission.sheds_captions`). The stage is always admitted,
even above capacity. Reads (media, state, the space page, health, metrics, web files)
are never admission-controlled: listeners already playing keep playing.

New joins also have a rate: each process accepts at most ``join_rate`` joins per second
(a token bucket holding one second's worth), the rate it can afford while also refusing
ten times as many. A storm beyond it is refused at once, and the accepted rate stays at
that capacity instead of collapsing under the queue an unbounded rate would build.

Under load the server raises the heartbeat interval it tells listeners (twice as long while
reactions are being shed, four times while heartbeats are), and keeps it raised for a while
after the last refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pnyx.config import NodeRole, Settings


class Lane(StrEnum):
    STAGE = "stage"
    LISTENER_ACTION = "listener_action"
    JOIN = "join"
    HEARTBEAT = "heartbeat"
    REACTION = "reaction"


# The order in which lanes are shed, first to go first. The stage is never shed.
SHED_ORDER = (Lane.REACTION, Lane.HEARTBEAT, Lane.JOIN, Lane.LISTENER_ACTION)

_SP = "/v1/spaces/{space_id}"

# (method, route template) → lane; ``None``: not admission-controlled (reads).
# The one classification table: the API layer compiles its path matchers from it.
ROUTES: tuple[tuple[str, str, Lane | None], ...] = (
    # listener lanes
    ("POST", f"{_SP}/reactions", Lane.REACTION),
    ("POST", f"{_SP}/heartbeat", Lane.HEARTBEAT),
    ("POST", f"{_SP}/join", Lane.JOIN),
    ("POST", f"{_SP}/hand", Lane.LISTENER_ACTION),
    ("DELETE", f"{_SP}/hand", Lane.LISTENER_ACTION),
    ("POST", f"{_SP}/invitation", Lane.LISTENER_ACTION),
    ("POST", f"{_SP}/leave", Lane.LISTENER_ACTION),
    ("POST", f"{_SP}/replay/{{event}}", Lane.LISTENER_ACTION),  # replay plays, downloads
    ("POST", "/v1/accounts", Lane.LISTENER_ACTION),
    ("POST", "/v1/sessions", Lane.LISTENER_ACTION),
    # the stage
    ("POST", "/v1/spaces", Lane.STAGE),
    ("POST", f"{_SP}/start", Lane.STAGE),
    ("POST", f"{_SP}/end", Lane.STAGE),
    ("PUT", f"{_SP}/members/{{handle}}/role", Lane.STAGE),
    ("POST", f"{_SP}/members/{{handle}}/mute", Lane.STAGE),
    ("POST", f"{_SP}/members/{{handle}}/unmute", Lane.STAGE),
    ("POST", f"{_SP}/members/{{handle}}/remove", Lane.STAGE),
    ("DELETE", f"{_SP}/hands/{{handle}}", Lane.STAGE),
    ("PUT", f"{_SP}/pin", Lane.STAGE),
    ("PUT", f"{_SP}/speak-policy", Lane.STAGE),
    ("POST", f"{_SP}/invites", Lane.STAGE),  # who may listen to a private space
    ("DELETE", f"{_SP}/invites/{{handle}}", Lane.STAGE),
    ("POST", f"{_SP}/publish", Lane.STAGE),
    ("OPTIONS", f"{_SP}/publish", Lane.STAGE),  # ICE servers: a store read when signed in
    ("DELETE", f"{_SP}/publish/{{session}}", Lane.STAGE),
    ("PATCH", f"{_SP}/publish/{{session}}", Lane.STAGE),
    ("WEBSOCKET", f"{_SP}/stage", Lane.STAGE),
)

# Anything else: reads (GET/HEAD/OPTIONS) pass freely; other writes are listener actions.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_WRITE_LANE = Lane.LISTENER_ACTION

# Heartbeat interval multipliers: while reactions are shed, while heartbeats are shed.
RAISED_X = 2.0
SHEDDING_X = 4.0


@dataclass(frozen=True, slots=True)
class Ticket:
    lane: Lane


@dataclass(frozen=True, slots=True)
class Refusal:
    lane: Lane
    retry_after_s: int  # whole seconds, at least 1
    jitter: float  # "add up to this fraction at random" before retrying


class Admission:
    """Counts in-flight admission-controlled requests per lane and decides, per lane,
    whether one more may start."""

    def __init__(
        self,
        capacity: int,
        thresholds: Mapping[Lane, float],
        *,
        heartbeat_s: float,
        hold_s: float,
        retry_after_s: int = 1,
        jitter: float = 0.5,
        join_rate: float = 0.0,
        captions: float | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        missing = set(SHED_ORDER) - set(thresholds)
        if missing:
            raise ValueError(f"no threshold for {sorted(missing)}")
        fractions = [thresholds[lane] for lane in SHED_ORDER]
        if any(not 0 < f <= 1 for f in fractions) or fractions != sorted(fractions):
            raise ValueError("thresholds must be in (0, 1] and rise in the shedding order")
        self.capacity = capacity
        # A lane is admitted while the total in flight is below its limit.
        self.limits = {lane: max(1, int(thresholds[lane] * capacity)) for lane in SHED_ORDER}
        # Captions are shed before any lane: from this many in flight, or while any lane
        # was refused within hold_s (the node's caption worker asks sheds_captions).
        # (never later than the first lane: a higher setting counts as the first lane's)
        first = thresholds[SHED_ORDER[0]]
        if captions is not None and not 0 < captions <= 1:
            raise ValueError("the captions threshold must be in (0, 1]")
        share = first if captions is None else min(captions, first)
        self.captions_limit = max(1, int(share * capacity))
        self.base_heartbeat_s = heartbeat_s
        self.hold_s = hold_s
        self.retry_after_s = max(1, retry_after_s)
        self.jitter = jitter
        self.inflight = dict.fromkeys(Lane, 0)
        self.admitted = dict.fromkeys(Lane, 0)
        self.refused = dict.fromkeys(Lane, 0)
        self._last_refused: dict[Lane, float] = {}
        # joins/s token bucket (0: joins are bounded by in-flight work only)
        self.join_rate = join_rate
        self._join_tokens = join_rate
        self._join_at: float | None = None

    @property
    def total(self) -> int:
        return sum(self.inflight.values())

    def load(self) -> float:
        """In-flight work as a fraction of capacity (may exceed 1: the stage's lane)."""
        return self.total / self.capacity

    def _take_join(self, now: float) -> bool:
        if self.join_rate <= 0:
            return True
        if self._join_at is not None and now > self._join_at:
            elapsed = now - self._join_at
            self._join_tokens = min(self.join_rate, self._join_tokens + elapsed * self.join_rate)
        self._join_at = now if self._join_at is None else max(now, self._join_at)
        if self._join_tokens < 1:
            return False
        self._join_tokens -= 1
        return True

    def try_enter(self, lane: Lane, now: float) -> Ticket | Refusal:
        if lane is not Lane.STAGE and (
            self.total >= self.limits[lane] or (lane is Lane.JOIN and not self._take_join(now))
        ):
            self.refused[lane] += 1
            self._last_refused[lane] = now
            return Refusal(lane, self.retry_after_s, self.jitter)
        self.inflight[lane] += 1
        self.admitted[lane] += 1
        return Ticket(lane)

    def leave(self, ticket: Ticket) -> None:
        if self.inflight[ticket.lane] <= 0:
            raise ValueError(f"no {ticket.lane} request in flight")
        self.inflight[ticket.lane] -= 1

    def _factor(self, now: float, hold_s: float) -> float:
        def recent(lane: Lane) -> bool:
            at = self._last_refused.get(lane)
            return at is not None and now - at <= hold_s

        if recent(Lane.HEARTBEAT):
            return SHEDDING_X
        if recent(Lane.REACTION):
            return RAISED_X
        return 1.0

    def sheds_captions(self, now: float) -> bool:
        """Should live captions pause? They are the first work a node gives up: from
        ``captions_limit`` requests in flight (below every lane's limit), and while any
        lane is being refused (for ``hold_s`` after its last refusal)."""
        if self.total >= self.captions_limit:
            return True
        return any(now - at <= self.hold_s for at in self._last_refused.values())

    def heartbeat_s(self, now: float) -> float:
        """The heartbeat interval to tell listeners now: the base interval, raised while
        (and for ``hold_s`` after) the reaction or heartbeat lane sheds."""
        return self.base_heartbeat_s * self._factor(now, self.hold_s)

    def presence_window_s(self, now: float, base_window_s: float) -> float:
        """How far back presence must look so that no listener told a raised interval
        drops from the count: three of the longest interval any listener may still be
        keeping (one handed out up to ``hold_s`` ago, plus that interval's grace)."""
        longest = self.base_heartbeat_s * self._factor(
            now, self.hold_s + 3 * SHEDDING_X * self.base_heartbeat_s
        )
        return max(base_window_s, 3 * longest)


def from_settings(settings: Settings) -> Admission:
    return Admission(
        settings.max_inflight,
        {
            Lane.REACTION: settings.admit_reactions,
            Lane.HEARTBEAT: settings.admit_heartbeats,
            Lane.JOIN: settings.admit_joins,
            Lane.LISTENER_ACTION: settings.admit_listener_actions,
        },
        heartbeat_s=settings.heartbeat_s,
        hold_s=settings.admission_hold_s,
        retry_after_s=settings.admission_retry_after_s,
        jitter=settings.admission_jitter,
        # A process running no stage has none to keep on time: it may admit more joins.
        join_rate=(
            settings.admit_join_rate_api
            if settings.role is NodeRole.API
            else settings.admit_join_rate
        ),
        captions=settings.admit_captions,
    )
