"""Argument checks shared by the repositories, so that SQLite (which ignores column
lengths) and PostgreSQL (which enforces them) refuse the same inputs the same way."""

from __future__ import annotations

from pnyx.domain.types import SPACE_ID_MAX_LEN
from pnyx.errors import ErrorKind, PnyxError
from pnyx.store.models import HANDLE_MAX_LEN


def check_handle(handle: str) -> None:
    if not 1 <= len(handle) <= HANDLE_MAX_LEN:
        raise PnyxError(
            ErrorKind.INVALID,
            f"a handle has 1 to {HANDLE_MAX_LEN} characters, not {len(handle)}",
            code="invalid_handle",
        )


def check_space_id(space_id: str) -> None:
    if not 1 <= len(space_id) <= SPACE_ID_MAX_LEN:
        raise PnyxError(
            ErrorKind.INVALID,
            f"a space id has 1 to {SPACE_ID_MAX_LEN} characters, not {len(space_id)}",
            code="invalid_space_id",
        )


def check_limit(limit: int) -> None:
    if limit < 1:
        raise PnyxError(
            ErrorKind.INVALID, f"limit must be at least 1, not {limit}", code="bad_limit"
        )
