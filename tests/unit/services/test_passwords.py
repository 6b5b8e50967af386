"""Argon2 behind a bound: at most ``concurrency`` hashes at once, ``queue`` more waiting,
the rest refused at once; a missing account costs the same work as a wrong password."""

from __future__ import annotations

import asyncio

import pytest

from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.auth import Passwords


async def test_beyond_the_slots_and_the_queue_a_check_is_refused_at_once() -> None:
    passwords = Passwords(concurrency=1, queue=1)
    hashed = await passwords.hash("correct horse")
    outcomes = await asyncio.gather(
        *(passwords.verify(hashed, "correct horse") for _ in range(3)), return_exceptions=True
    )
    refused = [o for o in outcomes if isinstance(o, PnyxError)]
    assert outcomes.count(True) == 2
    assert len(refused) == 1
    assert (refused[0].kind, refused[0].code) == (ErrorKind.UNAVAILABLE, "busy")
    assert refused[0].retry_after == pytest.approx(1.0)
    # Once they are done, the next one is taken.
    assert await passwords.verify(hashed, "correct horse")


async def test_no_hash_verifies_against_the_dummy_and_fails() -> None:
    passwords = Passwords(concurrency=1, queue=0)
    assert not await passwords.verify(None, "anything at all")
    assert not await passwords.verify("not a hash", "anything at all")
