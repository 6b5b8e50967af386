"""Profiles and the caller's own account: what a profile page shows (name, bio, follower
counts, whether the caller follows, the host's spaces), and account settings (display
name, bio, password change, deleting the account).

A profile lists only what the caller may find: public spaces for everyone, every space
(unlisted and private too) for the account itself. Changing the password or deleting the
account needs the current password (checked under the sign-in limit for the account, as
a guess at it would be) and signs out every other session (services/sessions.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from pnyx.domain import commands as cmd
from pnyx.domain.types import Handle, SpaceStatus, Visibility
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.accounts import normalise_handle
from pnyx.services.auth import Passwords, Tokens
from pnyx.services.directory import SpaceDirectory, SpaceSummary
from pnyx.services.password_policy import PasswordPolicy
from pnyx.services.ratelimits import RateKind, RateLimits
from pnyx.services.sessions import Sessions
from pnyx.services.spaces import SpaceService
from pnyx.store.db import Store
from pnyx.store.records import AccountDeletion, AccountRecord

log = logging.getLogger(__name__)

DISPLAY_NAME_MAX_LEN = 64  # as at sign-up (api/schemas.py NewAccount)
BIO_MAX_LEN = 280
# A host has at most max_live + max_scheduled spaces to end when deleting (the caps);
# this bounds the work even if the caps were raised a lot.
MAX_ENDED_ON_DELETE = 1000
_CLOCK_WAITS = 1000  # 1 ms sleeps; the sign-out's millisecond passes within a few
MAX_TOUCHED = 100  # live spaces of one host re-published on a new name (the cap is 1)
_LISTED = frozenset({Visibility.PUBLIC})


@dataclass(frozen=True, slots=True)
class ProfileView:
    handle: Handle
    display_name: str
    bio: str
    created_at: datetime
    followers: int
    following: int
    you_follow: bool | None  # None: asked anonymously, or about oneself


@dataclass(frozen=True, slots=True)
class Deleted:
    handle: Handle
    ended: int  # live spaces ended and scheduled ones cancelled
    removed: AccountDeletion


class ProfileService:
    def __init__(
        self,
        store: Store,
        passwords: Passwords,
        tokens: Tokens,
        sessions: Sessions,
        *,
        policy: PasswordPolicy,
        limits: RateLimits,
        spaces: SpaceService,
        directory: SpaceDirectory,
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._tokens = tokens
        self._sessions = sessions
        self._policy = policy
        self._limits = limits
        self._spaces = spaces
        self._directory = directory

    # -- reading ------------------------------------------------------------------------
    async def profile(self, handle: str, caller: Handle | None) -> ProfileView:
        return await self._view(await self._existing(handle), caller)

    async def mine(self, actor: Handle) -> ProfileView:
        """The caller's own profile (a deleted account's tokens are all signed out)."""
        return await self._view(await self._found(actor), actor)

    async def _view(self, account: AccountRecord, caller: Handle | None) -> ProfileView:
        followers = await self._store.social.followers_count(account.handle)
        following = await self._store.social.following_count(account.handle)
        you_follow = None
        if caller is not None and caller != account.handle:
            you_follow = await self._store.social.is_following(caller, account.handle)
        return ProfileView(
            account.handle,
            account.display_name,
            account.bio,
            account.created_at,
            followers,
            following,
            you_follow,
        )

    async def spaces(
        self, handle: str, caller: Handle | None, status: SpaceStatus, limit: int, offset: int
    ) -> list[SpaceSummary]:
        """``handle``'s spaces in ``status`` (ordered as the lists are): public ones, or
        all of them when the caller is that account."""
        account = await self._existing(handle)
        visible = None if caller == account.handle else _LISTED
        recs = await self._store.spaces.hosted_by(
            account.handle, status, limit, offset=offset, visibilities=visible
        )
        return await self._directory.summaries(recs)

    # -- settings -----------------------------------------------------------------------
    async def update(
        self, actor: Handle, *, display_name: str | None, bio: str | None
    ) -> ProfileView:
        name = None if display_name is None else display_name.strip()
        if name is not None and not 1 <= len(name) <= DISPLAY_NAME_MAX_LEN:
            raise PnyxError(
                ErrorKind.INVALID,
                f"a display name is 1 to {DISPLAY_NAME_MAX_LEN} characters, not blank",
                code="bad_display_name",
            )
        text = None if bio is None else bio.strip()
        if text is not None and len(text) > BIO_MAX_LEN:
            raise PnyxError(
                ErrorKind.INVALID,
                f"a bio is at most {BIO_MAX_LEN} characters, not {len(text)}",
                code="bad_bio",
            )
        await self._limits.check(RateKind.PROFILE_EDIT, actor)
        if not await self._store.accounts.update_profile(actor, display_name=name, bio=text):
            raise _no_account(actor)
        if name is not None:  # the stages of the spaces it hosts show the new name now
            for rec in await self._store.spaces.hosted_by(actor, SpaceStatus.LIVE, MAX_TOUCHED):
                try:
                    await self._spaces.touch(rec.id)
                except PnyxError as exc:  # the name is saved; the next change shows it
                    log.warning("space %s: not re-published (%s)", rec.id, exc.message)
        log.info("@%s updated their profile", actor)
        return await self.mine(actor)

    async def change_password(self, token: str, old: str, new: str) -> tuple[str, AccountRecord]:
        """Set a new password and sign out every session; returns a fresh token for this
        one (issued after the sign-out, so it stays valid)."""
        account = await self._checked(token, old)
        await self._policy.check(new, (account.handle, account.display_name))
        hashed = await self._passwords.hash(new)
        if not await self._store.accounts.set_password(account.handle, hashed):
            raise _no_account(account.handle)
        ended_ms = await self._sessions.sign_out_all(token)
        # A token issued in the sign-out's own millisecond would be ended with the rest:
        # wait (a few ms at most) until the wall clock is past it.
        for _ in range(_CLOCK_WAITS):
            if int(time.time() * 1000) > ended_ms:
                break
            await asyncio.sleep(0.001)
        log.info("@%s changed their password; every other session signed out", account.handle)
        return self._tokens.issue_account(account.handle), account

    async def delete(self, token: str, password: str) -> Deleted:
        """Delete the caller's account: its live spaces end and its scheduled ones are
        cancelled, then ``AccountRepo.delete`` removes its data and every session ends."""
        account = await self._checked(token, password)
        h = account.handle
        ended = 0
        for status in (SpaceStatus.LIVE, SpaceStatus.SCHEDULED):
            for rec in await self._store.spaces.hosted_by(h, status, MAX_ENDED_ON_DELETE):
                await self._spaces.execute(rec.id, cmd.EndSpace(h))
                ended += 1
        removed = await self._store.accounts.delete(h)
        await self._sessions.sign_out_all(token)
        log.info("@%s deleted their account (%d spaces ended, %s)", h, ended, removed)
        return Deleted(h, ended, removed)

    # -- helpers ------------------------------------------------------------------------
    async def _existing(self, handle: str) -> AccountRecord:
        return await self._found(normalise_handle(handle))

    async def _found(self, handle: Handle) -> AccountRecord:
        account = await self._store.accounts.get(handle)
        if account is None or account.deleted:
            raise _no_account(handle)
        return account

    async def _checked(self, token: str, password: str) -> AccountRecord:
        """The caller's account, if ``password`` is its password (a wrong one counts
        against the account's sign-in limit)."""
        handle = await self._sessions.account(token)
        await self._limits.check(RateKind.SIGN_IN_HANDLE, handle)
        account = await self._found(handle)
        if not await self._passwords.verify(account.password_hash, password):
            raise PnyxError(
                ErrorKind.INVALID, "the current password is wrong", code="wrong_password"
            )
        return account


def _no_account(handle: str) -> PnyxError:
    return PnyxError(ErrorKind.NOT_FOUND, f"no account @{handle}", code="no_account")
