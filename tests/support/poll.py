"""Polling with a deadline, never a blind sleep: one helper for async tests, one for
threads and processes.

Both call ``check`` every ``interval`` seconds until it returns something truthy, and
return that. After ``within`` seconds they raise AssertionError saying what was awaited
and the last value ``check`` returned (or the last exception named in ``ignoring``). A
check with more to say than False returns a :class:`Seen`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Seen:
    """What a check saw: true when ``ok``; a timeout reports ``detail``."""

    ok: bool
    detail: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return self.detail


async def eventually(
    check: Callable[[], T] | Callable[[], Awaitable[T]],
    within: float,
    what: str,
    *,
    interval: float = 0.05,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """Await ``check()`` (sync or async) until truthy; return it. AssertionError after
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        last: Any
        try:
            last = check()
            if inspect.isawaitable(last):
                last = await last
        except ignoring as exc:
            last = exc
        else:
            if last:
                return last  # type: ignore[no-any-return]
        if time.monotonic() >= deadline:
            raise _timed_out(what, within, last)
        await asyncio.sleep(interval)


def wait_until(
    check: Callable[[], T],
    within: float,
    what: str,
    *,
    interval: float = 0.05,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``check()`` until truthy; return it. AssertionError after ``within`` seconds.
    It blocks: not for a test's event loop (use :func:`eventually` there)."""
    deadline = time.monotonic() + within
    while True:
        last: Any
        try:
            last = check()
        except ignoring as exc:
            last = exc
        else:
            if last:
                return last  # type: ignore[no-any-return]
        if time.monotonic() >= deadline:
            raise _timed_out(what, within, last)
        time.sleep(interval)


def _timed_out(what: str, within: float, last: object) -> AssertionError:
    return AssertionError(f"not within {within:g} s: {what}; last seen: {last!r}")
