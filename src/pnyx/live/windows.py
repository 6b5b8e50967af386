"""Time-bucket arithmetic shared by both live-state implementations.

Presence and reactions are kept per time bucket; which buckets a window covers, and how
long buckets are kept, must agree between memory and Redis, so it is decided here once.
All times are the ``now`` the caller passes in (seconds since the epoch).
"""

from __future__ import annotations

import math

# Presence buckets older than this are forgotten: windows up to this long count exactly
# (longer ones are clamped to it). Keeps presence O(1) memory per space.
PRESENCE_RETENTION_S = 300.0

# The whole-space distinct-listener sketch lives this long after its last write.
UNIQUE_RETENTION_S = 7 * 86_400

# Per-second reaction counters older than this are forgotten (windows are clamped to it).
REACTION_RETENTION_S = 120


def presence_bucket(now: float, bucket_s: float) -> int:
    """The presence bucket ``now`` falls in."""
    return math.floor(now / bucket_s)


def presence_buckets(now: float, window_s: float, bucket_s: float) -> range:
    """The whole buckets a presence window ending at ``now`` covers: the bucket holding
    ``now`` and the ones before it, ``ceil(window_s / bucket_s)`` in all (at least one)."""
    window_s = min(window_s, PRESENCE_RETENTION_S)
    last = presence_bucket(now, bucket_s)
    n = max(1, math.ceil(window_s / bucket_s - 1e-9))
    return range(last - n + 1, last + 1)


def presence_keep_buckets(bucket_s: float) -> int:
    """How many buckets back from the newest are kept."""
    return math.ceil(PRESENCE_RETENTION_S / bucket_s) + 1


def reaction_second(now: float) -> int:
    return math.floor(now)


def reaction_seconds(now: float, window_s: int) -> range:
    """The last ``window_s`` whole seconds up to and including the one holding ``now``
    (empty for a window of zero)."""
    window_s = max(0, min(int(window_s), REACTION_RETENTION_S))
    last = reaction_second(now)
    return range(last - window_s + 1, last + 1)
