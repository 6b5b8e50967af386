"""Accounts and sessions."""

from __future__ import annotations

from fastapi import APIRouter, Response

from pnyx.api.deps import Account, ServicesDep
from pnyx.api.schemas import AccountOut, NewAccount, SessionOut, SignIn

router = APIRouter(prefix="/v1", tags=["accounts"])


@router.post("/accounts", status_code=201)
async def register(body: NewAccount, services: ServicesDep) -> AccountOut:
    rec = await services.accounts.register(body.handle, body.password, body.display_name)
    return AccountOut(handle=rec.handle, display_name=rec.display_name, created_at=rec.created_at)


@router.post("/sessions")
async def sign_in(body: SignIn, services: ServicesDep) -> SessionOut:
    token, rec = await services.accounts.sign_in(body.handle, body.password)
    return SessionOut(
        token=token,
        account=AccountOut(
            handle=rec.handle, display_name=rec.display_name, created_at=rec.created_at
        ),
    )


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
