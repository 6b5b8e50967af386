"""Accounts: register, sign in, follow, block."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pnyx.domain.types import Handle
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.auth import Passwords, Tokens
from pnyx.store.db import Store
from pnyx.store.records import AccountRecord

HANDLE_RE = re.compile(r"^[a-z0-9_]{3,32}$")
MAX_PASSWORD_LEN = 256


@dataclass(frozen=True, slots=True)
class Profile:
    handle: Handle
    display_name: str
    followers: int


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
        self, store: Store, passwords: Passwords, tokens: Tokens, *, min_password_len: int
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._tokens = tokens
        self._min_password_len = min_password_len

    async def register(self, handle: str, password: str, display_name: str | None) -> AccountRecord:
        h = normalise_handle(handle)
        if not self._min_password_len <= len(password) <= MAX_PASSWORD_LEN:
            raise PnyxError(
                ErrorKind.INVALID,
                f"a password is {self._min_password_len} to {MAX_PASSWORD_LEN} characters",
                code="bad_password",
            )
        hashed = await self._passwords.hash(password)
        return await self._store.accounts.create(
            h, (display_name or h).strip()[:64] or h, hashed, datetime.now(UTC)
        )

    async def sign_in(self, handle: str, password: str) -> tuple[str, AccountRecord]:
        wrong = PnyxError(
            ErrorKind.UNAUTHENTICATED, "wrong handle or password", code="bad_credentials"
        )
        try:
            h = normalise_handle(handle)
        except PnyxError:
            raise wrong from None
        account = await self._store.accounts.get(h)
        if account is None or not await self._passwords.verify(account.password_hash, password):
            raise wrong
        return self._tokens.issue_account(account.handle), account

    async def profile(self, handle: str) -> Profile:
        account = await self._existing(handle)
        followers = await self._store.social.followers_count(account.handle)
        return Profile(account.handle, account.display_name, followers)

    async def _existing(self, handle: str) -> AccountRecord:
        account = await self._store.accounts.get(normalise_handle(handle))
        if account is None:
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
