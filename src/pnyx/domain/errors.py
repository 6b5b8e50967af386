"""The typed errors the domain raises. Each carries an ErrorKind and a stable code."""

from __future__ import annotations

from pnyx.errors import ErrorKind, PnyxError


class RuleViolation(PnyxError):
    """A command the rules of a space do not allow. The space is left unchanged."""

    def __init__(self, kind: ErrorKind, code: str, message: str) -> None:
        super().__init__(kind, message, code=code)


def forbidden(code: str, message: str) -> RuleViolation:
    return RuleViolation(ErrorKind.FORBIDDEN, code, message)


def conflict(code: str, message: str) -> RuleViolation:
    return RuleViolation(ErrorKind.CONFLICT, code, message)


def invalid(code: str, message: str) -> RuleViolation:
    return RuleViolation(ErrorKind.INVALID, code, message)


def not_found(code: str, message: str) -> RuleViolation:
    return RuleViolation(ErrorKind.NOT_FOUND, code, message)
