"""Known-weak passwords are refused, saying why; good ones pass."""

from __future__ import annotations

import pytest

from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.password_policy import PasswordPolicy

POLICY = PasswordPolicy(min_len=8, min_score=3)


def refusal(password: str, *inputs: str) -> PnyxError:
    with pytest.raises(PnyxError) as caught:
        POLICY.judge(password, inputs)
    assert caught.value.kind is ErrorKind.INVALID
    return caught.value


@pytest.mark.parametrize("password", ["password", "12345678", "qwertyuiop", "iloveyou1"])
def test_common_passwords_are_refused_as_too_common(password: str) -> None:
    err = refusal(password)
    assert err.code == "weak_password"
    assert err.message.startswith("password too common: ")
    assert "Add another word" in err.message


def test_repeats_are_refused_as_too_guessable() -> None:
    err = refusal("aaaaaaaa")
    assert err.message.startswith("password too guessable: ")
    assert 'Repeats like "aaa"' in err.message


def test_the_handle_itself_is_guessable() -> None:
    POLICY.judge("kazimierz2024")
    refusal("kazimierz2024", "kazimierz")


def test_length_bounds_come_first() -> None:
    assert refusal("short").code == "bad_password"
    assert refusal("x" * 257).code == "bad_password"


@pytest.mark.parametrize(
    "password", ["correct horse", "correct horse battery staple", "Tr0ub4dor&3"]
)
def test_good_passwords_pass(password: str) -> None:
    POLICY.judge(password)


def test_score_zero_checks_only_the_length() -> None:
    PasswordPolicy(min_len=8, min_score=0).judge("12345678")
