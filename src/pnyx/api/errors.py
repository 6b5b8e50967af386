"""The only place that maps error kinds to HTTP (docs/conventions.md, rule 7).

Every error body is ``{"error": {"kind", "code", "message"}}``; refusals that invite a
retry carry ``Retry-After``.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pnyx.errors import ErrorKind, PnyxError

STATUS = {
    ErrorKind.MALFORMED: 400,
    ErrorKind.INVALID: 422,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.GONE: 410,
    ErrorKind.CONFLICT: 409,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.UNSUPPORTED: 415,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.UNAVAILABLE: 503,
}

_HTTP_KIND = {
    400: ErrorKind.MALFORMED,
    401: ErrorKind.UNAUTHENTICATED,
    403: ErrorKind.FORBIDDEN,
    404: ErrorKind.NOT_FOUND,
    405: ErrorKind.INVALID,
    409: ErrorKind.CONFLICT,
    410: ErrorKind.GONE,
    413: ErrorKind.TOO_LARGE,
    415: ErrorKind.UNSUPPORTED,
    429: ErrorKind.RATE_LIMITED,
    503: ErrorKind.UNAVAILABLE,
}


JITTER_HEADER = "pnyx-retry-jitter"
# Every answer with Retry-After also says how much randomness to add to it, so refused
# clients (rate limits included) do not come back in step.
RETRY_JITTER = 0.5


def error_body(kind: ErrorKind, code: str, message: str) -> dict[str, Any]:
    return {"error": {"kind": kind.value, "code": code, "message": message}}


def error_response(exc: PnyxError) -> JSONResponse:
    headers: dict[str, str] = {"Cache-Control": "no-store"}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        headers[JITTER_HEADER] = f"{RETRY_JITTER:g}"
    if exc.kind is ErrorKind.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        error_body(exc.kind, exc.code, exc.message), status_code=STATUS[exc.kind], headers=headers
    )


def _describe(errors: list[dict[str, Any]]) -> tuple[int, str, str]:
    parts = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        if err.get("type") == "json_invalid":
            return 400, "bad_json", f"the body is not valid JSON ({err.get('msg')})"
        if err.get("type") == "extra_forbidden":
            parts.append(f"unknown field '{where}'")
        elif err.get("type") == "missing":
            parts.append(f"missing field '{where}'")
        else:
            parts.append(f"{where}: {err.get('msg')}")
    return 422, "bad_request", "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(PnyxError)
    async def _pnyx(_: Request, exc: PnyxError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, code, message = _describe(list(exc.errors()))
        return JSONResponse(
            error_body(ErrorKind.MALFORMED if status == 400 else ErrorKind.INVALID, code, message),
            status_code=status,
            headers={"Cache-Control": "no-store"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _HTTP_KIND.get(exc.status_code, ErrorKind.INVALID)
        return JSONResponse(
            error_body(kind, kind.value, str(exc.detail)),
            status_code=exc.status_code,
            headers=exc.headers,
        )
