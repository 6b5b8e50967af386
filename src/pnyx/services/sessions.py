"""Sessions that can be ended: sign out one account token, or every token of an account.

A token is a signed JWT, valid on its own; ending one means remembering it until it would
have expired anyway, in the live state, so that every node knows:

- signing out one token writes the blob ``token/<jti>/ended`` with a TTL of the token's
  remaining life;
- signing out everywhere writes ``account/<handle>/ended`` holding the time (ms) it was
  done, for as long as any token lives: every token of that account issued up to then is
  refused, account tokens and the listener tokens joined with them alike; a later
  sign-in gets a fresh one.

Checking a request reads no store, and the live state at most once per token (and once
per account) every ``session_check_s``: what was read is kept in the process for that
long (``session_cache_entries`` at most), so a sign-out reaches the other nodes within
it; on the node that did it, at once. When the live state cannot be read the last value
read stands (or nothing is known ended): an outage of the live state does not sign
everyone out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pnyx.domain.types import Handle, SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState
from pnyx.live.keys import sessions_ended_key, token_ended_key
from pnyx.services.auth import AccountClaims, ListenerClaims, Tokens

log = logging.getLogger(__name__)

_SIGNED_OUT = PnyxError(
    ErrorKind.UNAUTHENTICATED, "this session was signed out: sign in again", code="signed_out"
)


class Sessions:
    def __init__(
        self,
        live: LiveState,
        tokens: Tokens,
        *,
        check_s: float,
        max_entries: int,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._live = live
        self._tokens = tokens
        self._check_s = check_s
        self._max = max_entries
        self._clock = clock
        self._monotonic = monotonic
        self._known: dict[str, tuple[float, int]] = {}  # blob key -> (read at, value)

    # -- checks -----------------------------------------------------------------------
    async def account(self, token: str) -> Handle:
        """The caller of a valid account token that was not signed out."""
        return (await self.account_claims(token)).handle

    async def account_claims(self, token: str) -> AccountClaims:
        claims = self._tokens.account_claims(token)
        if claims.issued_ms <= await self._read(sessions_ended_key(claims.handle)):
            raise _SIGNED_OUT
        if claims.jti is not None and await self._read(token_ended_key(claims.jti)):
            raise _SIGNED_OUT
        return claims

    async def listener(self, token: str, space: SpaceId) -> ListenerClaims:
        """A listener token's claims; one joined with an account ends with its sessions
        (sign-out everywhere). Anonymous ones read nothing."""
        claims = self._tokens.listener(token, space)
        if claims.handle is not None and claims.issued_ms <= await self._read(
            sessions_ended_key(claims.handle)
        ):
            raise _SIGNED_OUT
        return claims

    # -- ending -----------------------------------------------------------------------
    async def sign_out(self, token: str) -> None:
        """End this account token (and nothing else)."""
        claims = await self.account_claims(token)
        if claims.jti is None:
            raise PnyxError(
                ErrorKind.INVALID,
                "this token is too old to be signed out alone: sign out everywhere",
                code="no_token_id",
            )
        key = token_ended_key(claims.jti)
        ttl = max(1.0, claims.expires - self._clock() + 1)
        await self._live.put_blob(key, b"1", ttl)
        self._remember(key, 1)
        log.info("@%s signed out one session", claims.handle)

    async def sign_out_all(self, token: str) -> int:
        """End every token of the caller's account issued until now, this one included.
        Returns the time (ms) it took effect: only tokens issued after it are valid."""
        claims = await self.account_claims(token)
        key = sessions_ended_key(claims.handle)
        ended = max(int(self._clock() * 1000), claims.issued_ms)
        ttl = self._tokens.longest_ttl_s + 60
        await self._live.put_blob(key, str(ended).encode(), ttl)
        self._remember(key, ended)
        log.info("@%s signed out everywhere", claims.handle)
        return ended

    # -- the process's memory of what was read ---------------------------------------------
    def _remember(self, key: str, value: int) -> None:
        if len(self._known) >= self._max and key not in self._known:
            self._known.clear()  # simple and bounded: the next reads refill it
        self._known[key] = (self._monotonic(), value)

    async def _read(self, key: str) -> int:
        now = self._monotonic()
        known = self._known.get(key)
        if known is not None and now - known[0] < self._check_s:
            return known[1]
        try:
            raw = await self._live.get_blob(key)
        except PnyxError as exc:
            log.warning("sessions: cannot read %s (%s); using what is known", key, exc.message)
            value = known[1] if known is not None else 0
        else:
            value = int(raw) if raw and raw.isdigit() else 0
        self._remember(key, value)
        return value
