"""Listener media routes under /media/{space}/… and the recording download.

Every route here is a plain GET with no token and nothing per listener: the URL alone
decides the answer, so an edge cache collapses every listener onto one origin request.

* Parts, segments, init segments and recordings never change once they exist:
  ``public, max-age=31536000, immutable``. A replay (``replay.m3u8``, ``rec/…``,
  ``recording.m4a``) is served only once its recording is finished (complete, the same
  bytes from every node), so it is immutable too; before that the answer is an error:
  409 while the space is live, 503 ``not_ready`` with ``Retry-After`` while its
  recording is being finished (cached at most a second, like the other "not yet"s).
* Live playlists change every part: ``public, max-age=1`` — blocking reloads too (their
  URL, with ``_HLS_msn``/``_HLS_part``, is the same for every listener waiting on it).
* Errors are ``no-store``, except the "not yet" ones (no audio yet, part not produced yet,
  blocking reload timed out), which every listener asks at the same moment and which stop
  being true within a second: ``public, max-age=1``.
* ``Access-Control-Allow-Origin: *`` on everything (players on other origins).

Media objects are ``audio/mp4`` (the stream is audio-only fMP4/CMAF), captions
``text/vtt``; playlists are ``application/vnd.apple.mpegurl``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute

from pnyx.api.deps import ServicesDep
from pnyx.api.errors import error_response
from pnyx.api.openapi import raises
from pnyx.api.schemas import SpaceIdPath
from pnyx.domain.types import SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.facade import Services

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
MEDIA_TYPE = "audio/mp4"
VTT_TYPE = "text/vtt; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
LIVE = "public, max-age=1"
NOT_YET = {"no_audio", "not_ready", "not_available"}  # error codes worth caching briefly
CORS = {"Access-Control-Allow-Origin": "*"}


class MediaRoute(APIRoute):
    """Adds CORS to every answer, and the short cache to "not yet" errors."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except PnyxError as exc:
                response = error_response(exc)
                if exc.code in NOT_YET:
                    response.headers["Cache-Control"] = LIVE
            response.headers.update(CORS)
            return response

        return handle


router = APIRouter(tags=["media"], route_class=MediaRoute)

MsnQuery = Annotated[
    int | None,
    Query(alias="_HLS_msn", description="block until this media sequence number exists"),
]
PartQuery = Annotated[
    int | None,
    Query(alias="_HLS_part", description="…and this part of it (needs _HLS_msn)"),
]


_IMMUTABLE_HEADER = {"Cache-Control": {"schema": {"type": "string"}, "description": IMMUTABLE}}
_PLAYLIST_OK: dict[str, Any] = {"content": {PLAYLIST_TYPE: {"schema": {"type": "string"}}}}
_MEDIA_OK: dict[str, Any] = {
    "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    "headers": _IMMUTABLE_HEADER,
}


def _playlist(text: str, cache: str = LIVE) -> Response:
    return Response(text, media_type=PLAYLIST_TYPE, headers={"Cache-Control": cache})


async def _object(services: Services, space_id: str, name: str) -> Response:
    data = await services.origin.media_object(SpaceId(space_id), name)
    return Response(data, media_type=MEDIA_TYPE, headers={"Cache-Control": IMMUTABLE})


# -- live (from the live state) ----------------------------------------------------------
_LIVE_PLAYLIST: dict[int | str, dict[str, Any]] = {
    200: {"description": "The playlist (`public, max-age=1`).", **_PLAYLIST_OK},
    **raises(
        notes={
            ErrorKind.MALFORMED: "A bad blocking-reload directive (`bad_directive`), or one "
            "too far ahead of the playlist (`too_far_ahead`).",
            ErrorKind.NOT_FOUND: "No such space, or no audio yet (`no_audio`, with `Retry-After`).",
            ErrorKind.UNAVAILABLE: "The segment or part asked for did not appear within "
            "`hls_block_s` (`not_ready`): reload the playlist.",
        }
    ),
}
_MEDIA_OBJECT: dict[int | str, dict[str, Any]] = {
    200: {"description": "The media object (immutable).", **_MEDIA_OK},
    **raises(
        notes={
            ErrorKind.NOT_FOUND: "No such object (`no_such_object`), or not produced yet or "
            "expired (`not_available`, with `Retry-After`)."
        }
    ),
}


@router.get("/media/{space_id}/live.m3u8", response_class=Response, responses=_LIVE_PLAYLIST)
async def live_playlist(
    space_id: SpaceIdPath, services: ServicesDep, msn: MsnQuery = None, part: PartQuery = None
) -> Response:
    """The LL-HLS playlist. With ``_HLS_msn`` (and ``_HLS_part``) a blocking reload:
    held until that segment (part) exists, 400 if it is too far ahead, 503 if it did not
    appear within ``hls_block_s``. 404 until the space has audio."""
    return _playlist(await services.origin.playlist(SpaceId(space_id), "ll", msn, part))


@router.get("/media/{space_id}/plain.m3u8", response_class=Response, responses=_LIVE_PLAYLIST)
async def plain_playlist(
    space_id: SpaceIdPath, services: ServicesDep, msn: MsnQuery = None, part: PartQuery = None
) -> Response:
    """The same live window as whole segments, for players without LL-HLS."""
    return _playlist(await services.origin.playlist(SpaceId(space_id), "plain", msn, part))


@router.get(
    "/media/{space_id}/main.m3u8",
    response_class=Response,
    responses={
        200: {"description": "The multivariant playlist (`public, max-age=1`).", **_PLAYLIST_OK},
        **raises(notes={ErrorKind.NOT_FOUND: "No such space, or no audio yet (`no_audio`)."}),
    },
)
async def main_playlist(space_id: SpaceIdPath, services: ServicesDep) -> Response:
    """The multivariant playlist: the audio (``live.m3u8``) and, for a captioned space,
    its WebVTT subtitles rendition (``captions.m3u8``, ``#EXT-X-MEDIA:TYPE=SUBTITLES``)."""
    return _playlist(await services.origin.rendition(SpaceId(space_id), "main"))


@router.get(
    "/media/{space_id}/captions.m3u8",
    response_class=Response,
    responses={
        200: {"description": "The subtitles playlist (`public, max-age=1`).", **_PLAYLIST_OK},
        **raises(
            notes={
                ErrorKind.NOT_FOUND: "No such space, no audio yet (`no_audio`), or the "
                "space is not captioned (`no_captions`)."
            }
        ),
    },
)
async def captions_playlist(space_id: SpaceIdPath, services: ServicesDep) -> Response:
    """The live captions as an HLS subtitles rendition: one WebVTT file per audio segment
    (same sequence numbers), each holding the cues recognised while that segment was made,
    timed by ``X-TIMESTAMP-MAP`` on the audio's own clock."""
    return _playlist(await services.origin.rendition(SpaceId(space_id), "captions"))


@router.get(
    "/media/{space_id}/vtt/{msn}.{half}.vtt",
    response_class=Response,
    responses={
        200: {
            "description": "A segment's captions (immutable).",
            "content": {VTT_TYPE: {"schema": {"type": "string"}}},
            "headers": _IMMUTABLE_HEADER,
        },
        **raises(
            notes={
                ErrorKind.NOT_FOUND: "No such object (`no_such_object`), or not produced yet "
                "or expired (`not_available`, with `Retry-After`)."
            }
        ),
    },
)
async def media_captions(
    space_id: SpaceIdPath, msn: str, half: str, services: ServicesDep
) -> Response:
    """The captions recognised while the first (``half`` 0) or second half of segment
    ``msn``'s parts were made (their times are their speech's: a few seconds earlier)."""
    data = await services.origin.media_object(SpaceId(space_id), f"vtt/{msn}.{half}.vtt")
    return Response(data, media_type=VTT_TYPE, headers={"Cache-Control": IMMUTABLE})


@router.get("/media/{space_id}/init.mp4", response_class=Response, responses=_MEDIA_OBJECT)
async def media_init(space_id: SpaceIdPath, services: ServicesDep) -> Response:
    return await _object(services, space_id, "init.mp4")


@router.get(
    "/media/{space_id}/part/{msn}.{part}.m4s", response_class=Response, responses=_MEDIA_OBJECT
)
async def media_part(space_id: SpaceIdPath, msn: str, part: str, services: ServicesDep) -> Response:
    """An LL-HLS part; the preload-hinted next part is held until it exists."""
    return await _object(services, space_id, f"part/{msn}.{part}.m4s")


@router.get("/media/{space_id}/seg/{msn}.m4s", response_class=Response, responses=_MEDIA_OBJECT)
async def media_segment(space_id: SpaceIdPath, msn: str, services: ServicesDep) -> Response:
    return await _object(services, space_id, f"seg/{msn}.m4s")


# -- the replay (from the durable store, once its recording is finished) ------------------
_REPLAY_ERRORS = raises(
    notes={
        ErrorKind.NOT_FOUND: "No such space, not recorded, or nothing was recorded "
        "(`no_space`, `no_recording`).",
        ErrorKind.CONFLICT: "The space is still live (`still_live`).",
        ErrorKind.UNAVAILABLE: "The space has ended and its recording is being finished "
        "(`not_ready`; cached at most a second).",
    }
)


@router.get(
    "/media/{space_id}/replay.m3u8",
    response_class=Response,
    responses={
        200: {
            "description": "The finished recording as a VOD playlist (immutable).",
            **_PLAYLIST_OK,
            "headers": _IMMUTABLE_HEADER,
        },
        **_REPLAY_ERRORS,
    },
)
async def replay_playlist(space_id: SpaceIdPath, services: ServicesDep) -> Response:
    """The recording as a VOD playlist, the same from every node; served only once the
    recording is finished: 404 for an unknown or unrecorded space, 409 while it is live,
    503 `not_ready` (with `Retry-After`) while its recording is being finished."""
    return _playlist(await services.replays.playlist(SpaceId(space_id)), IMMUTABLE)


@router.get(
    "/media/{space_id}/rec/{name}",
    response_class=Response,
    responses={
        200: {"description": "The recorded header or segment (immutable).", **_MEDIA_OK},
        **raises(notes={ErrorKind.NOT_FOUND: "No such recorded object (`no_recording`)."}),
    },
)
async def recorded(space_id: SpaceIdPath, name: str, services: ServicesDep) -> Response:
    """``rec/init.mp4`` and ``rec/{msn}.m4s``: the recorded header and segments."""
    data = await services.replays.recorded(SpaceId(space_id), name)
    return Response(data, media_type=MEDIA_TYPE, headers={"Cache-Control": IMMUTABLE})


@router.get(
    "/v1/spaces/{space_id}/recording.m4a",
    response_class=Response,
    responses={
        200: {
            "description": "The finished recording as one fragmented MP4 (AAC audio), "
            "streamed; byte-identical from every node (immutable).",
            **_MEDIA_OK,
        },
        **_REPLAY_ERRORS,
    },
)
async def recording(space_id: SpaceIdPath, services: ServicesDep) -> Response:
    """The whole recording as one fragmented MP4 (AAC audio) to download: the same
    errors as `replay.m3u8` until the recording is finished."""
    export = await services.replays.export(SpaceId(space_id))
    headers = {
        "Cache-Control": IMMUTABLE,
        "Content-Length": str(export.size),
        "Content-Disposition": f'attachment; filename="pnyx-{space_id}.m4a"',
    }
    return StreamingResponse(export.chunks, media_type=MEDIA_TYPE, headers=headers)
