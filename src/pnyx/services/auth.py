"""Passwords (argon2id) and signed, expiring tokens (JWT, HS256).

Two kinds of token: an *account* token from signing in, and a *listener* token from
joining a space (anonymous or not), which carries the listener id and the space.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pnyx.domain.types import Handle, ListenerId, SpaceId
from pnyx.errors import ErrorKind, PnyxError

_ALG = "HS256"


@dataclass(frozen=True, slots=True)
class ListenerClaims:
    listener: ListenerId
    space: SpaceId
    handle: Handle | None


class Passwords:
    """Hashing is deliberately slow, so it runs in a worker thread, never on the loop."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, hashed: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(hashed, password)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)


class Tokens:
    def __init__(self, secret: str, *, account_ttl_s: int, listener_ttl_s: int) -> None:
        self._secret = secret
        self._account_ttl = account_ttl_s
        self._listener_ttl = listener_ttl_s

    def _issue(self, claims: dict[str, Any], ttl: int) -> str:
        now = int(time.time())
        return jwt.encode({**claims, "iat": now, "exp": now + ttl}, self._secret, algorithm=_ALG)

    def _decode(self, token: str, typ: str) -> dict[str, Any]:
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
        return self._issue({"sub": handle, "typ": "account"}, self._account_ttl)

    def account(self, token: str) -> Handle:
        return Handle(str(self._decode(token, "account")["sub"]))

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
            ListenerId(str(claims["sub"])), space, Handle(hdl) if isinstance(hdl, str) else None
        )
