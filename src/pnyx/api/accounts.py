"""Accounts and sessions: sign up, sign in, sign out (this session or every one)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from pnyx.api.deps import Account, AccountToken, ClientAddress, MaybeAccount, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import (
    AccountDeletion,
    AccountOut,
    DeletedOut,
    HandlePath,
    NewAccount,
    PasswordChange,
    ProfileIn,
    ProfileOut,
    SessionOut,
    SignIn,
    SpaceOut,
    SpacePage,
)
from pnyx.domain.types import Handle, SpaceStatus
from pnyx.errors import ErrorKind

router = APIRouter(prefix="/v1", tags=["accounts"])

_NOT_SELF = raises(notes={ErrorKind.INVALID: "That is your own account (`self`)."})
MAX_PAGE = 50
MAX_OFFSET = 1000  # paging by offset stays bounded work per request
_BUSY = "Too many password checks in progress on this node (`busy`, `argon2_queue`)."


@router.post(
    "/accounts",
    status_code=201,
    summary="Sign up",
    description="Create an account. The password must be `min_password_len` to 256 "
    "characters and not guessable (zxcvbn score `password_min_score`): a refusal (422, "
    "`weak_password`) says why, e.g. `password too common: This is a top-10 common "
    "password. Add another word or two.` Limited per client address (`signup_address_*`); "
    "refused input does not count. 409: the handle is taken.",
    responses=raises(
        notes={
            ErrorKind.CONFLICT: "The handle is taken (`handle_taken`).",
            ErrorKind.INVALID: "`bad_handle`, `bad_password` (too short for this node), "
            "`weak_password` (too guessable: the message says why).",
            ErrorKind.RATE_LIMITED: "Too many new accounts from this client address "
            "(`signup_address_limited`); the limits are token buckets shared by every node.",
            ErrorKind.UNAVAILABLE: _BUSY,
        }
    ),
)
async def register(body: NewAccount, client: ClientAddress, services: ServicesDep) -> AccountOut:
    rec = await services.accounts.register(
        body.handle, body.password, body.display_name, client=client
    )
    return AccountOut(handle=rec.handle, display_name=rec.display_name, created_at=rec.created_at)


@router.post(
    "/sessions",
    summary="Sign in",
    description="An account token (`Authorization: Bearer …`), valid for `token_ttl_s` "
    "unless signed out. 401 `bad_credentials` for a wrong handle or password, in the same "
    "time either way. Limited per handle (`signin_handle_*`) and per client address "
    "(`signin_address_*`): every attempt counts.",
    responses=raises(
        notes={
            ErrorKind.UNAUTHENTICATED: "Wrong handle or password (`bad_credentials`).",
            ErrorKind.RATE_LIMITED: "Too many sign-in attempts for this account "
            "(`signin_handle_limited`) or from this client address "
            "(`signin_address_limited`).",
            ErrorKind.UNAVAILABLE: _BUSY,
        }
    ),
)
async def sign_in(body: SignIn, client: ClientAddress, services: ServicesDep) -> SessionOut:
    token, rec = await services.accounts.sign_in(body.handle, body.password, client=client)
    return SessionOut(
        token=token,
        account=AccountOut(
            handle=rec.handle, display_name=rec.display_name, created_at=rec.created_at
        ),
    )


@router.post(
    "/auth/signout",
    status_code=204,
    summary="Sign out",
    description="End the account token this request carries: every node refuses it from "
    "now on (within `session_check_s` on the others). Other sessions of the account, and "
    "listener tokens already handed out, are unaffected.",
    responses={
        204: {"description": "Signed out."},
        **raises(
            notes={
                ErrorKind.INVALID: "A token issued before sign-out existed carries no id "
                "(`no_token_id`): sign out everywhere instead.",
                ErrorKind.UNAUTHENTICATED: "Already signed out (`signed_out`).",
            }
        ),
    },
)
async def sign_out(token: AccountToken, services: ServicesDep) -> Response:
    await services.sessions.sign_out(token)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.post(
    "/auth/signout-all",
    status_code=204,
    summary="Sign out everywhere",
    description="End every token of the caller's account issued until now: account tokens "
    "on every device, and the listener tokens joined with them. Open stage sockets close "
    "(4001) within `session_check_s`. Signing in again gives a new token.",
    responses={
        204: {"description": "Signed out everywhere."},
        **raises(notes={ErrorKind.UNAUTHENTICATED: "Already signed out (`signed_out`)."}),
    },
)
async def sign_out_all(token: AccountToken, services: ServicesDep) -> Response:
    await services.sessions.sign_out_all(token)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.get(
    "/accounts/{handle}",
    summary="A profile",
    description="Display name, bio, follower and following counts, and (signed in) whether "
    "you follow the account. A deleted account is 404 `no_account`.",
)
async def profile(
    handle: HandlePath, caller: MaybeAccount, services: ServicesDep, response: Response
) -> ProfileOut:
    p = await services.profiles.profile(handle, caller)
    _per_caller(response, caller, services.config.space_cache_s)
    return ProfileOut.of(p)


@router.get(
    "/accounts/{handle}/spaces",
    summary="A host's spaces",
    description="The spaces the account hosts in `state` (live newest first, scheduled "
    "soonest first, ended most recently ended first), `limit` per page from `offset`. "
    "Public spaces only, unless you are that account: then unlisted and private ones too. "
    "An ended space with `record: true` has a replay (`/media/{id}/replay.m3u8`).",
)
async def hosted_spaces(
    handle: HandlePath,
    caller: MaybeAccount,
    services: ServicesDep,
    response: Response,
    state: Literal["live", "scheduled", "ended"] = "live",
    limit: int = Query(20, ge=1, le=MAX_PAGE),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> SpacePage:
    spaces = await services.profiles.spaces(handle, caller, SpaceStatus(state), limit, offset)
    _per_caller(response, caller, services.config.space_cache_s)
    more = len(spaces) == limit and offset + limit <= MAX_OFFSET
    return SpacePage(
        spaces=[SpaceOut.of(s) for s in spaces], next_offset=offset + limit if more else None
    )


@router.post("/accounts/{handle}/follow", status_code=204, responses=_NOT_SELF)
async def follow(handle: HandlePath, me: Account, services: ServicesDep) -> Response:
    await services.accounts.follow(me, handle)
    return Response(status_code=204)


@router.delete("/accounts/{handle}/follow", status_code=204, responses=_NOT_SELF)
async def unfollow(handle: HandlePath, me: Account, services: ServicesDep) -> Response:
    await services.accounts.unfollow(me, handle)
    return Response(status_code=204)


@router.post("/accounts/{handle}/block", status_code=204, responses=_NOT_SELF)
async def block(handle: HandlePath, me: Account, services: ServicesDep) -> Response:
    await services.accounts.block(me, handle)
    return Response(status_code=204)


@router.delete("/accounts/{handle}/block", status_code=204, responses=_NOT_SELF)
async def unblock(handle: HandlePath, me: Account, services: ServicesDep) -> Response:
    await services.accounts.unblock(me, handle)
    return Response(status_code=204)


# -- profiles ---------------------------------------------------------------------------
def _per_caller(response: Response, caller: Handle | None, max_age: int) -> None:
    """Anonymous answers are the same for everyone (cacheable); a signed-in caller's
    says whether they follow, or shows their own unlisted and private spaces."""
    response.headers["Vary"] = "Authorization"
    response.headers["Cache-Control"] = (
        f"public, max-age={max_age}" if caller is None else "private, no-store"
    )


# -- the caller's own account -------------------------------------------------------------
_GONE = "The account was deleted meanwhile (`no_account`)."
_PASSWORD_CHECKED = {
    ErrorKind.UNAUTHENTICATED: "No account token, or one signed out (`signed_out`).",
    ErrorKind.NOT_FOUND: _GONE,
    ErrorKind.INVALID: "The current password is wrong (`wrong_password`).",
    ErrorKind.RATE_LIMITED: "Too many password checks for this account "
    "(`signin_handle_limited`: the sign-in limit).",
    ErrorKind.UNAVAILABLE: _BUSY,
}


@router.get(
    "/account",
    summary="Your account",
    description="Your own profile, for settings.",
    responses=raises(notes={ErrorKind.NOT_FOUND: _GONE}),
)
async def my_account(me: Account, services: ServicesDep, response: Response) -> ProfileOut:
    response.headers["Cache-Control"] = "private, no-store"
    return ProfileOut.of(await services.profiles.mine(me))


@router.patch(
    "/account",
    summary="Edit your profile",
    description="Set your display name (1 to 64 characters, not blank) and/or bio (at most "
    "280 characters); a field left out stays as it is. The stages of the live spaces you "
    "host show the new name at once, other stages you are on from their next change. "
    "Limited per account (`profile_edit_*`).",
    responses=raises(
        notes={
            ErrorKind.INVALID: "`bad_display_name`, `bad_bio`.",
            ErrorKind.NOT_FOUND: _GONE,
            ErrorKind.RATE_LIMITED: "Too many profile changes for this account "
            "(`profile_edit_limited`; `profile_edit_burst`, then `profile_edit_per_min`).",
        },
    ),
)
async def edit_account(body: ProfileIn, me: Account, services: ServicesDep) -> ProfileOut:
    p = await services.profiles.update(me, display_name=body.display_name, bio=body.bio)
    return ProfileOut.of(p)


@router.post(
    "/account/password",
    summary="Change your password",
    description="Needs the current password; the new one must pass the same policy as at "
    "sign-up (422 `weak_password`, `bad_password`). Every session of the account is signed "
    "out, this one included: the answer carries a fresh token for this device.",
    responses=raises(
        notes={
            **_PASSWORD_CHECKED,
            ErrorKind.INVALID: "The current password is wrong (`wrong_password`), or the new "
            "one is too short (`bad_password`) or too guessable (`weak_password`).",
        }
    ),
)
async def change_password(
    body: PasswordChange, token: AccountToken, services: ServicesDep, response: Response
) -> SessionOut:
    fresh, rec = await services.profiles.change_password(
        token, body.old_password, body.new_password
    )
    response.headers["Cache-Control"] = "no-store"
    return SessionOut(
        token=fresh,
        account=AccountOut(
            handle=rec.handle, display_name=rec.display_name, created_at=rec.created_at
        ),
    )


@router.post(
    "/account/delete",
    summary="Delete your account",
    description="Needs the current password. Live spaces you host end and scheduled ones are "
    "cancelled; then deleted: your follows (both ways), blocks (both ways), notifications "
    "to you or about your spaces, your invitations into private spaces, and your ended "
    "spaces that have no recording. Kept: recorded spaces and their recordings (others "
    "may have spoken in them; they show your handle). Your handle stays taken, so nobody "
    "can take it over; every session is signed out.",
    responses=raises(
        notes={
            **_PASSWORD_CHECKED,
            ErrorKind.CONFLICT: "A space of yours changed state while it was being ended; retry.",
            ErrorKind.FORBIDDEN: "Never for your own spaces (the host may end them).",
            ErrorKind.UNAVAILABLE: f"{_BUSY} Or a space of yours is being changed by many at "
            "once (`contended`): retry.",
        }
    ),
)
async def delete_account(
    body: AccountDeletion, token: AccountToken, services: ServicesDep, response: Response
) -> DeletedOut:
    done = await services.profiles.delete(token, body.password)
    response.headers["Cache-Control"] = "no-store"
    r = done.removed
    return DeletedOut(
        handle=done.handle,
        spaces_ended=done.ended,
        spaces_deleted=r.spaces,
        follows_deleted=r.follows,
        blocks_deleted=r.blocks,
        notifications_deleted=r.notifications,
        invitations_deleted=r.invites,
        clips_deleted=r.clips,
        webhooks_deleted=r.webhooks,
    )
