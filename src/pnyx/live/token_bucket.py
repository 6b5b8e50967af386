"""Token-bucket arithmetic (pure). The memory live state runs it in Python; the Redis one
runs the same steps in a Lua script (``redis_scripts.TAKE_LUA``), so both decide alike."""

from __future__ import annotations

from dataclasses import dataclass

from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import RateDecision


@dataclass(slots=True)
class Bucket:
    tokens: float
    ts: float  # the latest ``now`` the bucket was refilled at
    rate: float
    burst: float

    def is_full(self, now: float) -> bool:
        """A full bucket is the same as no bucket: it can be forgotten."""
        return self.tokens + max(0.0, now - self.ts) * self.rate >= self.burst


def check_args(rate: float, burst: float, cost: float) -> None:
    if not rate > 0 or not burst > 0:
        raise PnyxError(
            ErrorKind.INVALID, f"a token bucket needs rate > 0 and burst > 0 (got {rate}, {burst})"
        )
    if not 0 <= cost <= burst:
        raise PnyxError(
            ErrorKind.INVALID,
            f"a token bucket cannot take {cost} tokens: use 0 <= cost <= burst ({burst})",
        )


def take(
    bucket: Bucket | None, *, rate: float, burst: float, now: float, cost: float
) -> tuple[Bucket, RateDecision]:
    """Refill ``bucket`` (a missing one is full) up to ``now`` and take ``cost`` from it.

    A denied take changes nothing but the refill. ``retry_after`` is the time until
    ``cost`` tokens are there, so retrying after it succeeds if nobody else took any.
    A ``now`` earlier than the bucket's last one (clocks of two nodes) refills nothing.
    """
    check_args(rate, burst, cost)
    if bucket is None:
        tokens, ts = burst, now
    else:
        tokens = min(burst, bucket.tokens + max(0.0, now - bucket.ts) * rate)
        ts = max(bucket.ts, now)
    if tokens >= cost:
        return Bucket(tokens - cost, ts, rate, burst), RateDecision(True, 0.0)
    return Bucket(tokens, ts, rate, burst), RateDecision(False, (cost - tokens) / rate)
