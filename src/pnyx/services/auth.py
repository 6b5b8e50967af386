"""Passwords (argon2id) and signed, expiring tokens (JWT, HS256).

Two kinds of token: an *account* token from signing in, and a *listener* token from
joining a space (anonymous or not), which carries the listener id and the space. Account
tokens carry an id (``jti``) and their time of issue in ms (``ims``), so one can be signed
out, or all of an account's issued until a moment (``services/sessions.py``).

Argon2 is a CPU sink by design, so at most ``argon2_concurrency`` hashes run at once (in
worker threads) and at most ``argon2_queue`` more wait: a flood of sign-ins is refused
(503 busy) instead of filling the event loop's thread pool, which everything else blocking
(file reads, codec joins) shares. A sign-in for a handle that does not exist verifies
against a dummy hash made once at start with the same parameters, so it costs what a
wrong password costs: the time of an answer does not say whether an account exists.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pnyx.domain.types import Handle, ListenerId, SpaceId
from pnyx.errors import ErrorKind, PnyxError

_ALG = "HS256"
_ISSUED = frozenset({"sub", "typ", "spc", "hdl", "jti", "iat", "ims", "exp"})  # claims we put


@dataclass(frozen=True, slots=True)
class ListenerClaims:
    listener: ListenerId
    space: SpaceId
    handle: Handle | None
    issued_ms: int = 0  # when the token was issued (ms since the epoch)


@dataclass(frozen=True, slots=True)
class AccountClaims:
    handle: Handle
    jti: str | None  # None: a token from before tokens had ids (cannot be signed out alone)
    issued_ms: int  # ms since the epoch
    expires: int  # s since the epoch


class Passwords:
    """Hashing is deliberately slow, so it runs in a worker thread, never on the loop, and
    at most ``concurrency`` at once (0: the CPU count); more than ``queue`` waiting are
    refused."""

    def __init__(self, *, concurrency: int = 0, queue: int = 64) -> None:
        self._hasher = PasswordHasher()
        self.concurrency = concurrency or os.cpu_count() or 1
        self._slots = asyncio.Semaphore(self.concurrency)
        self._most = self.concurrency + queue
        self._busy = 0  # hashing or waiting to
        # Same parameters as every real hash: verifying against it costs the same.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(24))

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._busy >= self._most:
            raise PnyxError(
                ErrorKind.UNAVAILABLE,
                "too many sign-ins and sign-ups in progress on this server; retry shortly",
                code="busy",
                retry_after=1.0,
            )
        self._busy += 1
        try:
            async with self._slots:
                return await asyncio.to_thread(fn, *args)
        finally:
            self._busy -= 1

    async def hash(self, password: str) -> str:
        return str(await self._run(self._hasher.hash, password))

    def _check(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, hashed: str | None, password: str) -> bool:
        """Whether ``password`` matches ``hashed``; with no hash (no such account), the same
        work against the dummy hash, and False."""
        if hashed is None:
            await self._run(self._check, self._dummy, password)
            return False
        return bool(await self._run(self._check, hashed, password))


class Tokens:
    def __init__(self, secret: str, *, account_ttl_s: int, listener_ttl_s: int) -> None:
        self._secret = secret
        self._key = secret.encode()
        self._account_ttl = account_ttl_s
        self._listener_ttl = listener_ttl_s
        # The first segment of every token this issues (PyJWT's header for HS256).
        self._header = jwt.encode({}, secret, algorithm=_ALG).partition(".")[0]

    @property
    def longest_ttl_s(self) -> int:
        """No token lives longer than this."""
        return max(self._account_ttl, self._listener_ttl)

    def _issue(self, claims: dict[str, Any], ttl: int) -> str:
        now_ms = int(time.time() * 1000)
        now = now_ms // 1000
        return jwt.encode(
            {**claims, "iat": now, "ims": now_ms, "exp": now + ttl}, self._secret, algorithm=_ALG
        )

    def _checked(self, token: str) -> dict[str, Any] | None:
        """The claims of a token exactly as this issues them (our header, HS256, well
        signed, unexpired, nothing PyJWT would refuse), else ``None``: PyJWT then decides,
        and words the refusal. The heartbeat's hot path: a third of PyJWT's cost."""
        head, _, rest = token.partition(".")
        payload, _, sig = rest.partition(".")
        if head != self._header or not payload or "." in sig:
            return None
        mac = hmac.new(self._key, f"{head}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(base64.urlsafe_b64encode(mac).rstrip(b"="), sig.encode()):
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(claims, dict) or not claims.keys() <= _ISSUED:
            return None
        exp, sub, iat = claims.get("exp"), claims.get("sub"), claims.get("iat", 0)
        if not (isinstance(exp, int) and isinstance(sub, str) and isinstance(iat, int)):
            return None
        if exp <= time.time() or not isinstance(claims.get("jti", ""), str):
            return None
        return claims

    def _decode(self, token: str, typ: str) -> dict[str, Any]:
        checked = self._checked(token)
        if checked is not None and checked.get("typ") == typ:
            return checked
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[_ALG], options={"require": ["exp", "sub"]}
            )
        except jwt.ExpiredSignatureError as exc:
            raise PnyxError(
                ErrorKind.UNAUTHENTICATED,
                "token expired: sign in (or join) again for a fresh one",
                code="token_expired",
            ) from exc
        except jwt.PyJWTError as exc:
            raise PnyxError(
                ErrorKind.UNAUTHENTICATED, "invalid token", code="token_invalid"
            ) from exc
        if claims.get("typ") != typ:
            raise PnyxError(
                ErrorKind.UNAUTHENTICATED,
                f"wrong kind of token: this needs a {typ} token",
                code="token_wrong_kind",
            )
        return claims

    def issue_account(self, handle: Handle) -> str:
        claims = {"sub": handle, "typ": "account", "jti": secrets.token_urlsafe(12)}
        return self._issue(claims, self._account_ttl)

    def account(self, token: str) -> Handle:
        """The handle of a well-signed, unexpired account token (not checked against
        sign-outs: ``Sessions.account`` does that)."""
        return self.account_claims(token).handle

    def account_claims(self, token: str) -> AccountClaims:
        claims = self._decode(token, "account")
        jti = claims.get("jti")
        return AccountClaims(
            Handle(str(claims["sub"])),
            jti if isinstance(jti, str) else None,
            _issued_ms(claims),
            int(claims["exp"]),
        )

    def issue_listener(self, listener: ListenerId, space: SpaceId, handle: Handle | None) -> str:
        claims: dict[str, Any] = {"sub": listener, "typ": "listener", "spc": space}
        if handle is not None:
            claims["hdl"] = handle
        return self._issue(claims, self._listener_ttl)

    def listener(self, token: str, space: SpaceId) -> ListenerClaims:
        claims = self._decode(token, "listener")
        if claims.get("spc") != space:
            raise PnyxError(
                ErrorKind.FORBIDDEN,
                "this listener token was issued for another space",
                code="token_other_space",
            )
        hdl = claims.get("hdl")
        return ListenerClaims(
            ListenerId(str(claims["sub"])),
            space,
            Handle(hdl) if isinstance(hdl, str) else None,
            _issued_ms(claims),
        )


def _issued_ms(claims: dict[str, Any]) -> int:
    ims = claims.get("ims")
    if isinstance(ims, int):
        return ims
    iat = claims.get("iat")
    return int(iat) * 1000 if isinstance(iat, int | float) else 0
