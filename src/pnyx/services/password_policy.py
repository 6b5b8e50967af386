"""Which new passwords are accepted: long enough, and not guessable.

Guessability is zxcvbn's estimate (the Python port of Dropbox's estimator, with its
dictionaries of common passwords, names, English words and keyboard patterns, shipped
with the package: nothing is fetched). A password must reach ``password_min_score``
(3 by default: an estimated 10^8 guesses or more). The refusal says why, in zxcvbn's
words ("This is a top-10 common password. Add another word or two…").
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from zxcvbn import zxcvbn

from pnyx.errors import ErrorKind, PnyxError

MAX_PASSWORD_LEN = 256
# zxcvbn's own bound: its matching is quadratic in the length. Beyond it, only the first
# this many characters are judged (about 40 ms for the worst case, in a worker thread).
_JUDGED_LEN = 72


def _refusal(warning: str, suggestions: Sequence[str]) -> PnyxError:
    lead = "too common" if "common" in warning.lower() else "too guessable"
    why = " ".join(part.strip() for part in (warning, *suggestions) if part.strip())
    return PnyxError(
        ErrorKind.INVALID,
        f"password {lead}: {why or 'choose a longer one, of several uncommon words'}",
        code="weak_password",
    )


class PasswordPolicy:
    def __init__(self, *, min_len: int, min_score: int) -> None:
        self.min_len = min_len
        self.min_score = min_score

    def judge(self, password: str, user_inputs: Sequence[str] = ()) -> None:
        """Raise ``PnyxError(INVALID)`` saying why, for a password that is refused."""
        if not self.min_len <= len(password) <= MAX_PASSWORD_LEN:
            raise PnyxError(
                ErrorKind.INVALID,
                f"a password is {self.min_len} to {MAX_PASSWORD_LEN} characters",
                code="bad_password",
            )
        if self.min_score <= 0:
            return
        result = zxcvbn(password[:_JUDGED_LEN], user_inputs=list(user_inputs))
        if result["score"] < self.min_score:
            feedback = result["feedback"]
            raise _refusal(feedback["warning"], feedback["suggestions"])

    async def check(self, password: str, user_inputs: Sequence[str] = ()) -> None:
        """``judge`` in a worker thread (zxcvbn takes up to tens of ms)."""
        if len(password) > MAX_PASSWORD_LEN:  # refused before any work
            self.judge(password)
        await asyncio.to_thread(self.judge, password, user_inputs)
