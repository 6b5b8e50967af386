"""Request dependencies: the node's services, and who is calling (bearer tokens).

Handlers get ``Services`` (services/facade.py), not the ``Node``: no store, live state or
settings to reach past the services with.

All ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, which for
work this small (an attribute read, an HMAC check) costs more than the work, on every
request — a third of a heartbeat's CPU when they were plain functions."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from pnyx.api.schemas import SpaceIdPath
from pnyx.domain.types import Handle, SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.auth import ListenerClaims
from pnyx.services.facade import Services

_bearer = HTTPBearer(auto_error=False, description="An account or listener token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_services(conn: HTTPConnection) -> Services:
    """The services of the node the app runs (set by the lifespan, ``api/app.py``); an
    ``HTTPConnection`` so that requests and WebSockets both get them."""
    return cast(Services, conn.app.state.services)


ServicesDep = Annotated[Services, Depends(get_services)]


def _token(creds: HTTPAuthorizationCredentials | None, what: str) -> str:
    if creds is None:
        raise PnyxError(
            ErrorKind.UNAUTHENTICATED,
            f"this needs {what}: send 'Authorization: Bearer <token>'",
            code="no_token",
        )
    return creds.credentials


_ACCOUNT = "an account token (POST /v1/sessions)"


async def account(services: ServicesDep, creds: Credentials) -> Handle:
    """The caller: a valid account token that was not signed out (services/sessions.py:
    no store read; the live state at most once per token every ``session_check_s``)."""
    return await services.sessions.account(_token(creds, _ACCOUNT))


async def account_token(creds: Credentials) -> str:
    """The account token itself (for signing it out: checked by the service)."""
    return _token(creds, _ACCOUNT)


async def optional_account(services: ServicesDep, creds: Credentials) -> Handle | None:
    return None if creds is None else await services.sessions.account(creds.credentials)


async def listener(
    space_id: SpaceIdPath, services: ServicesDep, creds: Credentials
) -> ListenerClaims:
    token = _token(creds, "a listener token (POST /v1/spaces/{id}/join)")
    return await services.sessions.listener(token, SpaceId(space_id))


async def client_address(conn: HTTPConnection, services: ServicesDep) -> str:
    """The client's address, for rate limits: the peer's, or, from a trusted proxy (the
    ``trusted_proxies`` setting), the right-most untrusted one in ``X-Forwarded-For``."""
    peer = conn.client.host if conn.client is not None else None
    return services.addresses.of(peer, conn.headers.getlist("x-forwarded-for"))


Account = Annotated[Handle, Depends(account)]
AccountToken = Annotated[str, Depends(account_token)]
MaybeAccount = Annotated[Handle | None, Depends(optional_account)]
Listener = Annotated[ListenerClaims, Depends(listener)]
ClientAddress = Annotated[str, Depends(client_address)]
