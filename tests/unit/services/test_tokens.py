"""Tokens: the quick check of tokens exactly as we issue them agrees with PyJWT on every
token, ours or not: the same claims for good ones, the same refusal for the rest."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from pnyx.domain.types import Handle, ListenerId, SpaceId
from pnyx.errors import PnyxError
from pnyx.services.auth import Tokens

SECRET = "tokens-test-secret-0123456789abcdef0123"
SPACE = SpaceId("s1")


def tokens(ttl: int = 60) -> Tokens:
    return Tokens(SECRET, account_ttl_s=ttl, listener_ttl_s=ttl)


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def outcome(token: str) -> object:
    try:
        return tokens().listener(token, SPACE)
    except PnyxError as exc:
        return exc.code


def pyjwt_outcome(token: str) -> object:
    """What the listener check answered before the quick path: PyJWT alone."""
    t = tokens()
    t._checked = lambda token: None  # type: ignore[method-assign]
    try:
        return t.listener(token, SPACE)
    except PnyxError as exc:
        return exc.code


def now() -> int:
    return int(time.time())


def cases() -> dict[str, str]:
    """Made when a test runs (tokens expire: collection may be minutes before)."""
    good = tokens().issue_listener(ListenerId("l1"), SPACE, Handle("bob"))
    return {
        "ours": good,
        "anonymous": tokens().issue_listener(ListenerId("l2"), SPACE, None),
        "expired": Tokens(SECRET, account_ttl_s=1, listener_ttl_s=-1).issue_listener(
            ListenerId("l3"), SPACE, None
        ),
        "other space": tokens().issue_listener(ListenerId("l4"), SpaceId("s2"), None),
        "account": tokens().issue_account(Handle("bob")),
        "tampered signature": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "tampered claims": ".".join(
            [
                good.split(".")[0],
                b64({"sub": "x", "typ": "listener", "spc": "s1", "exp": now() + 60}),
                good.split(".")[2],
            ]
        ),
        "other key": jwt.encode(
            {"sub": "x", "typ": "listener", "spc": "s1", "exp": now() + 60},
            "another-secret-0123456789abcdef-0123",
            algorithm="HS256",
        ),
        "alg none": b64({"alg": "none", "typ": "JWT"})
        + "."
        + b64({"sub": "x", "typ": "listener", "spc": "s1", "exp": now() + 60})
        + ".",
        "an audience": jwt.encode(
            {"sub": "x", "typ": "listener", "spc": "s1", "exp": now() + 60, "aud": "them"},
            SECRET,
            algorithm="HS256",
        ),
        "not yet valid": jwt.encode(
            {"sub": "x", "typ": "listener", "spc": "s1", "exp": now() + 60, "nbf": now() + 30},
            SECRET,
            algorithm="HS256",
        ),
        "sub not a string": jwt.encode(
            {"sub": 5, "typ": "listener", "spc": "s1", "exp": now() + 60}, SECRET, algorithm="HS256"
        ),
        "no exp": jwt.encode(
            {"sub": "x", "typ": "listener", "spc": "s1"}, SECRET, algorithm="HS256"
        ),
        "four segments": good + ".x",
        "garbage": "garbage",
        "bad base64": good.split(".")[0] + ".@@@." + good.split(".")[2],
    }


NAMES = sorted(cases())


@pytest.mark.parametrize("case", NAMES)
def test_the_quick_check_agrees_with_pyjwt(case: str) -> None:
    token = cases()[case]
    assert outcome(token) == pyjwt_outcome(token)


def test_the_quick_check_takes_our_tokens_and_nothing_else() -> None:
    t = tokens()
    CASES = cases()
    assert t._checked(CASES["ours"]) is not None
    assert t._checked(CASES["anonymous"]) is not None
    for case in sorted(set(CASES) - {"ours", "anonymous", "other space", "account"}):
        assert t._checked(CASES[case]) is None, case
