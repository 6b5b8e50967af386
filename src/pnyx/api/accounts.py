"""Accounts and sessions."""

from __future__ import annotations

from fastapi import APIRouter, Response

from pnyx.api.deps import Account, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import AccountOut, HandlePath, NewAccount, SessionOut, SignIn
from pnyx.errors import ErrorKind

router = APIRouter(prefix="/v1", tags=["accounts"])

_NOT_SELF = raises(notes={ErrorKind.INVALID: "That is your own account (`self`)."})


@router.post(
    "/accounts",
    status_code=201,
    responses=raises(
        notes={
            ErrorKind.CONFLICT: "The handle is taken (`handle_taken`).",
            ErrorKind.INVALID: "`bad_handle`, `bad_password` (too short for this node).",
        }
    ),
)
async def register(body: NewAccount, services: ServicesDep) -> AccountOut:
    rec = await services.accounts.register(body.handle, body.password, body.display_name)
    return AccountOut(handle=rec.handle, display_name=rec.display_name, created_at=rec.created_at)


@router.post(
    "/sessions",
    responses=raises(
        notes={ErrorKind.UNAUTHENTICATED: "Wrong handle or password (`bad_credentials`)."}
    ),
)
async def sign_in(body: SignIn, services: ServicesDep) -> SessionOut:
    token, rec = await services.accounts.sign_in(body.handle, body.password)
    return SessionOut(
        token=token,
        account=AccountOut(
            handle=rec.handle, display_name=rec.display_name, created_at=rec.created_at
        ),
    )


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
