"""Request dependencies: the node, and who is calling (bearer tokens).

All ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, which for
work this small (an attribute read, an HMAC check) costs more than the work, on every
request — a third of a heartbeat's CPU when they were plain functions."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pnyx.domain.types import Handle, SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.auth import ListenerClaims
from pnyx.services.node import Node

_bearer = HTTPBearer(auto_error=False, description="An account or listener token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_node(request: Request) -> Node:
    return cast(Node, request.app.state.node)


NodeDep = Annotated[Node, Depends(get_node)]


def _token(creds: HTTPAuthorizationCredentials | None, what: str) -> str:
    if creds is None:
        raise PnyxError(
            ErrorKind.UNAUTHENTICATED,
            f"this needs {what}: send 'Authorization: Bearer <token>'",
            code="no_token",
        )
    return creds.credentials


async def account(node: NodeDep, creds: Credentials) -> Handle:
    return node.tokens.account(_token(creds, "an account token (POST /v1/sessions)"))


async def optional_account(node: NodeDep, creds: Credentials) -> Handle | None:
    return None if creds is None else node.tokens.account(creds.credentials)


async def listener(space_id: str, node: NodeDep, creds: Credentials) -> ListenerClaims:
    token = _token(creds, "a listener token (POST /v1/spaces/{id}/join)")
    return node.tokens.listener(token, SpaceId(space_id))


Account = Annotated[Handle, Depends(account)]
MaybeAccount = Annotated[Handle | None, Depends(optional_account)]
Listener = Annotated[ListenerClaims, Depends(listener)]
