"""Accounts and sessions: sign up, sign in, sign out (this session or every one)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from pnyx.api.deps import Account, AccountToken, ClientAddress, ServicesDep
from pnyx.api.schemas import AccountOut, ErrorOut, NewAccount, SessionOut, SignIn

router = APIRouter(prefix="/v1", tags=["accounts"])

_RETRY_HEADERS: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds until the request can succeed.",
        "schema": {"type": "integer"},
    },
    "Pnyx-Retry-Jitter": {
        "description": "Add up to this fraction of Retry-After at random before retrying "
        "(0.5: wait 1 to 1.5 times Retry-After), so refused clients do not return in step.",
        "schema": {"type": "number"},
    },
}


def _limited(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        429: {
            "description": f"Rate limited: {what}. Codes `signin_handle_limited`, "
            "`signin_address_limited`, `signup_address_limited`. The limits are token "
            "buckets shared by every node.",
            "model": ErrorOut,
            "headers": _RETRY_HEADERS,
        },
        503: {
            "description": "Too many password checks in progress on this node (`busy`, "
            "`argon2_queue`), or the server is shedding load (`overloaded`).",
            "model": ErrorOut,
            "headers": _RETRY_HEADERS,
        },
    }


_NOT_SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "No valid account token: missing, expired, or signed out (`signed_out`).",
        "model": ErrorOut,
    },
}


@router.post(
    "/accounts",
    status_code=201,
    summary="Sign up",
    description="Create an account. The password must be `min_password_len` to 256 "
    "characters and not guessable (zxcvbn score `password_min_score`): a refusal (422, "
    "`weak_password`) says why, e.g. `password too common: This is a top-10 common "
    "password. Add another word or two.` Limited per client address (`signup_address_*`); "
    "refused input does not count. 409: the handle is taken.",
    responses={
        409: {"description": "The handle is taken.", "model": ErrorOut},
        422: {"description": "A bad handle, or a refused password.", "model": ErrorOut},
        **_limited("too many new accounts from this client address"),
    },
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
    responses={
        401: {"description": "Wrong handle or password.", "model": ErrorOut},
        **_limited("too many sign-in attempts for this account, or from this address"),
    },
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
    responses={204: {"description": "Signed out."}, **_NOT_SIGNED_IN},
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
    responses={204: {"description": "Signed out everywhere."}, **_NOT_SIGNED_IN},
)
async def sign_out_all(token: AccountToken, services: ServicesDep) -> Response:
    await services.sessions.sign_out_all(token)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.get("/accounts/{handle}")
async def profile(handle: str, services: ServicesDep) -> AccountOut:
    p = await services.accounts.profile(handle)
    return AccountOut(handle=p.handle, display_name=p.display_name, followers=p.followers)


@router.post("/accounts/{handle}/follow", status_code=204)
async def follow(handle: str, me: Account, services: ServicesDep) -> Response:
    await services.accounts.follow(me, handle)
    return Response(status_code=204)


@router.delete("/accounts/{handle}/follow", status_code=204)
async def unfollow(handle: str, me: Account, services: ServicesDep) -> Response:
    await services.accounts.unfollow(me, handle)
    return Response(status_code=204)


@router.post("/accounts/{handle}/block", status_code=204)
async def block(handle: str, me: Account, services: ServicesDep) -> Response:
    await services.accounts.block(me, handle)
    return Response(status_code=204)


@router.delete("/accounts/{handle}/block", status_code=204)
async def unblock(handle: str, me: Account, services: ServicesDep) -> Response:
    await services.accounts.unblock(me, handle)
    return Response(status_code=204)
