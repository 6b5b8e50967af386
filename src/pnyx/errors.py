"""Errors carry a kind; only the API edge knows HTTP status codes (docs/conventions.md, rule 7)."""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    MALFORMED = "malformed"  # unparseable input (bad JSON, garbage SDP): 400
    INVALID = "invalid"  # well-formed but wrong values: 422
    UNAUTHENTICATED = "unauthenticated"  # no, bad or expired credentials
    FORBIDDEN = "forbidden"  # authenticated, but this actor may not do this
    NOT_FOUND = "not_found"
    GONE = "gone"  # it was valid once and no longer is (an expired signed link): 410
    CONFLICT = "conflict"  # the request is well-formed but the current state forbids it
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported"  # a content type this route does not take: 415
    RATE_LIMITED = "rate_limited"  # a per-client limit: retry after a while
    UNAVAILABLE = "unavailable"  # overloaded or a dependency is down: retry after a while


class PnyxError(Exception):
    """An error the caller can act on: ``kind`` says what class of failure,
    ``message`` says what was wrong and, where possible, how to fix it."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        # A stable machine-readable reason, e.g. "stage_full"; defaults to the kind.
        self.code = code or kind.value
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"PnyxError({self.kind.value!r}, {self.message!r}, code={self.code!r})"
