"""The listener's path: join, heartbeat, leave, react, and the cacheable state read."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from pnyx.api.deps import Listener, MaybeAccount, ServicesDep
from pnyx.api.openapi import raises
from pnyx.api.schemas import (
    FrontRowOut,
    HeartbeatOut,
    JoinOut,
    ReactionIn,
    SpaceIdPath,
    StateOut,
    state_response,
)
from pnyx.domain.types import SpaceId
from pnyx.errors import ErrorKind
from pnyx.services.listeners import CLIENT_ID, Joined

router = APIRouter(prefix="/v1/spaces/{space_id}", tags=["listeners"])

CLIENT = Query(
    None,
    pattern=CLIENT_ID.pattern,
    description="an id this client keeps across joins (the web client keeps a random one "
    "in localStorage): anonymous listeners are counted once per client in the analytics' "
    "unique listeners. Used for nothing else; signed-in listeners count by account.",
)

_ADMITTED = raises(
    notes={
        ErrorKind.FORBIDDEN: "You were removed (`removed`) or the host blocked you "
        "(`blocked`); a listener token of another space (`token_other_space`).",
        ErrorKind.CONFLICT: "The space is not live (`not_live`, `space_over`).",
    }
)


@router.post("/join", responses=_ADMITTED)
async def join(
    space_id: SpaceIdPath,
    me: MaybeAccount,
    services: ServicesDep,
    response: Response,
    client: str | None = CLIENT,
) -> JoinOut:
    """Join as a listener: anonymous for a public or unlisted space, or signed in (then
    blocks and removals apply). A private space admits only its audience: anonymous 401,
    others 403 (`private_space`). Listening itself needs no token; this one is for
    heartbeats and reactions. `media` holds the links to listen with: for a private
    space they are signed (`/p/{exp}/{sig}/…`), and the only way in; so is `frontrow`'s
    `url` when offered."""
    joined = await services.listeners.join(SpaceId(space_id), me, client)
    response.headers["Cache-Control"] = "no-store"
    return join_out(joined)


def join_out(joined: Joined) -> JoinOut:
    """The join's answer (this route's, and the lean path's in ``api/heartbeat.py``)."""
    return JoinOut(
        listener_id=joined.listener_id,
        token=joined.token,
        heartbeat_s=joined.heartbeat_s,
        media=joined.media,
        latency=joined.latency,
        frontrow=None
        if joined.frontrow is None
        else FrontRowOut(url=joined.frontrow.url, default=joined.frontrow.default),
    )


@router.post("/heartbeat", responses=_ADMITTED)
async def heartbeat(space_id: SpaceIdPath, who: Listener, services: ServicesDep) -> HeartbeatOut:
    return HeartbeatOut(heartbeat_s=await services.listeners.heartbeat(who))


@router.post("/leave", status_code=204)
async def leave(space_id: SpaceIdPath, who: Listener, services: ServicesDep) -> Response:
    await services.listeners.leave(who)
    return Response(status_code=204)


@router.post(
    "/reactions",
    status_code=202,
    response_class=Response,  # counted: an empty answer, no body to document
    responses=raises(
        notes={
            ErrorKind.CONFLICT: "The space is not live (`not_live`).",
            ErrorKind.RATE_LIMITED: "Too many reactions (`reaction_rate`).",
        }
    ),
)
async def react(
    space_id: SpaceIdPath, body: ReactionIn, who: Listener, services: ServicesDep
) -> Response:
    await services.listeners.react(who, body.emoji)
    return Response(status_code=202)


ANSWERED_MAX_AGE_S = 10


@router.get(
    "/state",
    response_model=StateOut,
    responses=raises(notes={ErrorKind.UNAVAILABLE: "The state is not published yet."}),
)
async def state(
    space_id: SpaceIdPath,
    services: ServicesDep,
    me: MaybeAccount,
    after: int | None = Query(
        None, ge=0, description="wait (up to ~15 s) until the version is greater than this"
    ),
) -> Response:
    """The space as every listener sees it. With ``after=V`` equal to the current version
    this waits for the next version (like LL-HLS blocking playlist reload). Without
    credentials the response is public and identical for all listeners, so an HTTP cache
    serves one copy to everyone waiting on the same ``after``. With a stage member's
    account token it also says who raised a hand, and is private."""
    view = await services.state.read(SpaceId(space_id), after, me)
    response = state_response(view)
    if me is not None:
        response.headers["Cache-Control"] = "private, no-store"
    elif after is not None and view.version > after:
        # "Something newer than V" stays true: an edge may keep this answer a while, so
        # listeners who come late for it do not each send the origin a refresh. They
        # then ask after the newer version and catch up at once.
        response.headers["Cache-Control"] = f"public, max-age={ANSWERED_MAX_AGE_S}"
    else:
        # An edge may serve it a second stale while it fetches the next, never older.
        response.headers["Cache-Control"] = "public, max-age=1, stale-while-revalidate=1"
    response.headers["X-Pnyx-Version"] = str(view.version)
    return response
