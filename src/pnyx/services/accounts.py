"""Accounts: register, sign in, follow, block (profiles and settings: services/profiles.py).

Sign-ups are limited per client address, sign-ins per client address and per handle
(``services/ratelimits.py``), before any password work. A sign-in costs the same argon2
work whether the handle exists or not (``Passwords.verify`` with no hash)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pnyx.domain.types import Handle
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.auth import Passwords, Tokens
from pnyx.services.password_policy import PasswordPolicy
from pnyx.services.ratelimits import RateKind, RateLimits
from pnyx.store.db import Store
from pnyx.store.records import AccountRecord

HANDLE_RE = re.compile(r"^[a-z0-9_]{3,32}$")


def normalise_handle(raw: str) -> Handle:
    handle = raw.strip().lower()
    if not HANDLE_RE.match(handle):
        raise PnyxError(
            ErrorKind.INVALID,
            "a handle is 3 to 32 characters: letters a-z, digits and underscores",
            code="bad_handle",
        )
    return Handle(handle)


class AccountService:
    def __init__(
        self,
        store: Store,
        passwords: Passwords,
        tokens: Tokens,
        *,
        policy: PasswordPolicy,
        limits: RateLimits,
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._tokens = tokens
        self._policy = policy
        self._limits = limits

    @property
    def passwords(self) -> Passwords:
        return self._passwords

    @property
    def policy(self) -> PasswordPolicy:
        return self._policy

    async def register(
        self, handle: str, password: str, display_name: str | None, *, client: str
    ) -> AccountRecord:
        """A new account. Refused input costs the sign-up limit nothing (a person fixing a
        weak password is not flooding); what reaches the hash takes from it."""
        h = normalise_handle(handle)
        name = (display_name or h).strip()[:64] or h
        await self._policy.check(password, (h, name))
        await self._limits.check(RateKind.SIGN_UP_ADDRESS, client)
        hashed = await self._passwords.hash(password)
        return await self._store.accounts.create(h, name, hashed, datetime.now(UTC))

    async def sign_in(
        self, handle: str, password: str, *, client: str
    ) -> tuple[str, AccountRecord]:
        wrong = PnyxError(
            ErrorKind.UNAUTHENTICATED, "wrong handle or password", code="bad_credentials"
        )
        await self._limits.check(RateKind.SIGN_IN_ADDRESS, client)
        try:
            h = normalise_handle(handle)
        except PnyxError:
            raise wrong from None
        await self._limits.check(RateKind.SIGN_IN_HANDLE, h)
        account = await self._store.accounts.get(h)
        hashed = None if account is None or account.deleted else account.password_hash
        if not await self._passwords.verify(hashed, password) or account is None:
            raise wrong
        return self._tokens.issue_account(account.handle), account

    async def _existing(self, handle: str) -> AccountRecord:
        account = await self._store.accounts.get(normalise_handle(handle))
        if account is None or account.deleted:
            raise PnyxError(ErrorKind.NOT_FOUND, f"no account @{handle}", code="no_account")
        return account

    async def _other(self, actor: Handle, handle: str) -> Handle:
        target = (await self._existing(handle)).handle
        if target == actor:
            raise PnyxError(ErrorKind.INVALID, "that is your own account", code="self")
        return target

    async def follow(self, actor: Handle, handle: str) -> None:
        await self._store.social.follow(actor, await self._other(actor, handle), datetime.now(UTC))

    async def unfollow(self, actor: Handle, handle: str) -> None:
        await self._store.social.unfollow(actor, await self._other(actor, handle))

    async def block(self, actor: Handle, handle: str) -> None:
        await self._store.social.block(actor, await self._other(actor, handle), datetime.now(UTC))

    async def unblock(self, actor: Handle, handle: str) -> None:
        await self._store.social.unblock(actor, await self._other(actor, handle))
