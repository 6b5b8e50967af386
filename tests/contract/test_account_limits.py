"""Rate limits and sign-outs live in the live state: on Redis they hold across nodes, on
memory within the one process. Two services on ``live_pair`` are two nodes."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from pnyx.domain.types import Handle
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState
from pnyx.services.auth import Tokens
from pnyx.services.ratelimits import Limit, RateKind, RateLimits
from pnyx.services.sessions import Sessions
from tests.support.poll import eventually

NOW = 1_700_000_000.0
LIMITS = {
    RateKind.SIGN_IN_HANDLE: Limit(3, 1 / 60, "sign-in attempts for this account"),
    RateKind.SIGN_IN_ADDRESS: Limit(5, 1.0, "sign-in attempts from your address"),
    RateKind.SIGN_UP_ADDRESS: Limit(2, 0.5, "new accounts from your address"),
}


def limits(live: LiveState, clock: list[float]) -> RateLimits:
    return RateLimits(live, LIMITS, lambda: clock[0])


async def refusal(call: object) -> PnyxError:
    with pytest.raises(PnyxError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_a_limit_holds_across_nodes(live_pair: tuple[LiveState, LiveState]) -> None:
    a, b = live_pair
    clock = [NOW]
    one, two = limits(a, clock), limits(b, clock)
    await one.check(RateKind.SIGN_IN_HANDLE, "alice")
    await two.check(RateKind.SIGN_IN_HANDLE, "alice")
    await one.check(RateKind.SIGN_IN_HANDLE, "alice")
    err = await refusal(two.check(RateKind.SIGN_IN_HANDLE, "alice"))
    assert err.kind is ErrorKind.RATE_LIMITED
    assert err.code == "signin_handle_limited"
    assert err.retry_after == pytest.approx(60.0)
    assert "too many sign-in attempts for this account" in err.message
    # Another key, and another kind for the same key, are their own buckets.
    await two.check(RateKind.SIGN_IN_HANDLE, "bob")
    await two.check(RateKind.SIGN_IN_ADDRESS, "alice")
    # Retry-After is honest: after it, one more is taken.
    clock[0] += 60.0
    await one.check(RateKind.SIGN_IN_HANDLE, "alice")
    await refusal(two.check(RateKind.SIGN_IN_HANDLE, "alice"))


async def test_a_client_below_the_rate_is_never_refused(live: LiveState) -> None:
    clock = [NOW]
    rl = limits(live, clock)
    for _ in range(40):  # one sign-up every 2.5 s, at 0.5/s allowed: never refused
        await rl.check(RateKind.SIGN_UP_ADDRESS, "192.0.2.7")
        clock[0] += 2.5


@dataclass(frozen=True)
class SignedIn:
    """Two nodes' sessions over ``live_pair``, and the tokens they were issued: alice's
    on two devices, bob's on one."""

    tokens: Tokens
    here: Sessions
    there: Sessions
    phone: str
    laptop: str
    bob: str


def signed_in(live_pair: tuple[LiveState, LiveState]) -> SignedIn:
    tokens = Tokens("s" * 40, account_ttl_s=600, listener_ttl_s=600)
    here, there = (Sessions(live, tokens, check_s=0.0, max_entries=1000) for live in live_pair)
    phone, laptop = tokens.issue_account(Handle("alice")), tokens.issue_account(Handle("alice"))
    bob = tokens.issue_account(Handle("bob"))
    return SignedIn(tokens, here, there, phone, laptop, bob)


async def test_sign_out_ends_one_token_on_every_node(
    live_pair: tuple[LiveState, LiveState],
) -> None:
    s = signed_in(live_pair)
    assert await s.there.account(s.phone) == "alice"
    await s.here.sign_out(s.phone)
    for node in (s.here, s.there):
        err = await refusal(node.account(s.phone))
        assert (err.kind, err.code) == (ErrorKind.UNAUTHENTICATED, "signed_out")
        assert await node.account(s.laptop) == "alice"
        assert await node.account(s.bob) == "bob"


async def test_sign_out_everywhere_ends_every_token_of_the_account(
    live_pair: tuple[LiveState, LiveState],
) -> None:
    s = signed_in(live_pair)
    await s.there.sign_out_all(s.laptop)
    for node in (s.here, s.there):
        for token in (s.phone, s.laptop):
            assert (await refusal(node.account(token))).code == "signed_out"
        assert await node.account(s.bob) == "bob"
    # Signing in again afterwards works (a later token: issued in a later millisecond
    # than the sign-out, as any real sign-in, with its password hash, is).
    ended_ms = time.time_ns() // 1_000_000
    await eventually(lambda: time.time_ns() // 1_000_000 > ended_ms, 1, "the next millisecond")
    fresh = s.tokens.issue_account(Handle("alice"))
    assert await s.here.account(fresh) == "alice"
