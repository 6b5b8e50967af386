"""Rate limits where guessing and flooding happen: one token bucket per (kind, key) in
the live state, so a limit holds across every node sharing it (Redis), and the same
arithmetic runs in memory and in Redis (``live/token_bucket.py``).

``RateLimits.check(kind, key)`` takes one token or raises ``PnyxError(RATE_LIMITED)``
with ``retry_after``; the API answers 429 with ``Retry-After`` and ``Pnyx-Retry-Jitter``.
Another limit is one more ``RateKind`` and its ``Limit`` in ``limits_of``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import Counter

from pnyx.config import Settings
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState
from pnyx.live.keys import rate_limit_bucket

LIMITED = Counter("pnyx_rate_limited_total", "Requests refused by a rate limit", ["kind"])


class RateKind(StrEnum):
    SIGN_IN_HANDLE = "signin-handle"  # guesses at one account's password
    SIGN_IN_ADDRESS = "signin-address"  # guesses from one client address, any account
    SIGN_UP_ADDRESS = "signup-address"  # new accounts from one client address
    CLIP = "clip"  # clips made by one account
    WEBHOOK_TEST = "webhook-test"  # test events one account asks for (POST …/test)
    PROFILE_EDIT = "profile-edit"  # changes to one account's display name and bio
    REMINDER = "reminder"  # "remind me" requests (and push subscriptions) by one account
    REPLAY_ADDRESS = "replay-address"  # replay play/download beacons from one address
    REPLAY_SPACE = "replay-space"  # replay play/download beacons for one space


@dataclass(frozen=True, slots=True)
class Limit:
    burst: float  # taken at once from a full bucket
    per_s: float  # then refilled at this rate
    what: str  # for the refusal's message: "sign-ins for this account"


def limits_of(settings: Settings) -> dict[RateKind, Limit]:
    return {
        RateKind.SIGN_IN_HANDLE: Limit(
            settings.signin_handle_burst,
            settings.signin_handle_per_min / 60,
            "sign-in attempts for this account",
        ),
        RateKind.SIGN_IN_ADDRESS: Limit(
            settings.signin_address_burst,
            settings.signin_address_per_min / 60,
            "sign-in attempts from your address",
        ),
        RateKind.SIGN_UP_ADDRESS: Limit(
            settings.signup_address_burst,
            settings.signup_address_per_min / 60,
            "new accounts from your address",
        ),
        RateKind.CLIP: Limit(settings.clip_burst, settings.clips_per_hour / 3600, "clips"),
        RateKind.WEBHOOK_TEST: Limit(
            settings.webhook_test_burst,
            settings.webhook_test_per_min / 60,
            "webhook test events for this account",
        ),
        RateKind.PROFILE_EDIT: Limit(
            settings.profile_edit_burst,
            settings.profile_edit_per_min / 60,
            "profile changes for this account",
        ),
        RateKind.REMINDER: Limit(
            max(1.0, settings.reminders_per_hour / 6),
            settings.reminders_per_hour / 3600,
            "reminder and push requests from this account",
        ),
        RateKind.REPLAY_ADDRESS: Limit(
            settings.replay_count_address_burst,
            settings.replay_count_address_per_min / 60,
            "replay plays and downloads from your address",
        ),
        RateKind.REPLAY_SPACE: Limit(
            settings.replay_count_space_burst,
            settings.replay_count_space_per_s,
            "replay plays and downloads of this space",
        ),
    }


class RateLimits:
    def __init__(
        self, live: LiveState, limits: Mapping[RateKind, Limit], clock: Callable[[], float]
    ) -> None:
        self._live = live
        self._limits = dict(limits)
        self._clock = clock

    async def check(self, kind: RateKind, key: str) -> None:
        """Take one token from ``kind``'s bucket for ``key``, or refuse (429)."""
        limit = self._limits[kind]
        decision = await self._live.take(
            rate_limit_bucket(kind.value, key),
            rate=limit.per_s,
            burst=limit.burst,
            now=self._clock(),
        )
        if not decision.allowed:
            LIMITED.labels(kind.value).inc()
            raise PnyxError(
                ErrorKind.RATE_LIMITED,
                f"too many {limit.what}: try again in {max(1, math.ceil(decision.retry_after))} s",
                code=f"{kind.value.replace('-', '_')}_limited",
                retry_after=decision.retry_after,
            )
