"""Accounts and sessions: sign up, sign in, sign out (this session or every one)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from pnyx.api.deps import Account, AccountToken, ClientAddress, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import AccountOut, HandlePath, NewAccount, SessionOut, SignIn
from pnyx.errors import ErrorKind

router = APIRouter(prefix="/v1", tags=["accounts"])

_NOT_SELF = raises(notes={ErrorKind.INVALID: "That is your own account (`self`)."})
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


@router.get("/accounts/{handle}")
async def profile(handle: HandlePath, services: ServicesDep) -> AccountOut:
    p = await services.accounts.profile(handle)
    return AccountOut(handle=p.handle, display_name=p.display_name, followers=p.followers)


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
