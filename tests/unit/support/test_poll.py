"""The tests' polling helpers (tests/support/poll.py): a deadline, and a failure that
says what was awaited and what was seen last."""

from __future__ import annotations

import itertools

import pytest

from tests.support.poll import Seen, eventually, wait_until


async def test_eventually_returns_the_first_truthy_value_sync_or_async() -> None:
    counter = itertools.count()
    assert await eventually(lambda: next(counter) >= 3 and "three", 1, "3", interval=0) == "three"

    async def seen() -> Seen:
        n = next(counter)
        return Seen(n >= 6, f"n={n}")

    got = await eventually(seen, 1, "6", interval=0)
    assert got.ok and got.detail == "n=6"


async def test_eventually_fails_with_what_and_the_last_value_seen() -> None:
    counter = itertools.count()
    with pytest.raises(AssertionError, match=r"not within 0.1 s: the answer; last seen: n=\d+"):
        await eventually(lambda: Seen(False, f"n={next(counter)}"), 0.1, "the answer")


async def test_eventually_keeps_going_through_the_exceptions_it_ignores() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("not yet")

    with pytest.raises(AssertionError, match=r"last seen: ConnectionRefusedError\('not yet'\)"):
        await eventually(refused, 0.1, "a connection", ignoring=(OSError,))
    with pytest.raises(ConnectionRefusedError):
        await eventually(refused, 0.1, "a connection")


def test_wait_until_is_the_same_for_threads_and_processes() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter) == 2, 1, "2", interval=0) is True
    with pytest.raises(AssertionError, match=r"not within 0.1 s: never; last seen: 0"):
        wait_until(lambda: 0, 0.1, "never")
    with pytest.raises(AssertionError, match="last seen: OSError"):
        wait_until(lambda: _raise(OSError()), 0.1, "x", ignoring=(OSError,))


def _raise(exc: Exception) -> bool:
    raise exc
