"""Prometheus metrics (served at /metrics). Defined once per process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "pnyx_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "pnyx_http_request_seconds",
    "HTTP request latency (long-polls excluded)",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
COMMANDS = Counter("pnyx_commands_total", "Space commands by outcome", ["command", "outcome"])
SPACES_REFUSED = Counter(
    "pnyx_spaces_refused_total",
    "Spaces not created or started for a per-account limit, by code "
    "(too_many_live_spaces, too_many_scheduled_spaces, space_creation_rate)",
    ["code"],
)
JOINS = Counter("pnyx_joins_total", "Listener joins by outcome", ["outcome"])
REACTIONS = Counter("pnyx_reactions_total", "Reactions by outcome", ["outcome"])
STATE_WAITERS = Gauge("pnyx_state_waiters", "State long-polls waiting right now")
STAGE_SOCKETS = Gauge("pnyx_stage_sockets", "Open stage WebSockets")
PRESENCE_WRITES = Counter(
    "pnyx_presence_batches_total", "Batched presence writes (one per space per flush)"
)
PRESENCE_DROPPED = Counter(
    "pnyx_presence_dropped_total", "Listeners heard but not written (live state down)"
)
TICKS = Counter("pnyx_ticks_total", "Space ticks run by this node")
FRONTROW_POSTS = Counter(
    "pnyx_frontrow_posts_total",
    "Front-row messages for the edges by outcome: posted (one per edge), failed (an edge"
    " refused it or did not answer), dropped (never sent: the queue to the edges was full)",
    ["outcome"],
)
PUSH_FANOUT_ACCOUNTS = Counter(
    "pnyx_push_big_host_accounts_total",
    "Followers with a push subscription that the big-host push job (hosts above"
    " fanout_threshold) paged into the push queue; followers without one are never read",
)
PUSH_FANOUT_JOBS = Counter(
    "pnyx_push_big_host_jobs_total",
    "Big-host push jobs by outcome: done, failed (the store refused a page), dropped (the"
    " queue was full)",
    ["outcome"],
)
