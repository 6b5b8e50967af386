"""Third-party exceptions stop here (docs/conventions.md, rule 7): whatever SQLAlchemy or a driver
raises leaves the store as a ``PnyxError`` with a kind, ``raise … from exc``.

Repositories catch the ``IntegrityError`` they expect themselves (a taken handle, an
existing space id), because only they know what it means; ``translating`` is the net
under them for everything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from pnyx.errors import ErrorKind, PnyxError

RETRY_AFTER_S = 1.0


def unavailable(message: str, *, code: str = "database_unavailable") -> PnyxError:
    return PnyxError(ErrorKind.UNAVAILABLE, message, code=code, retry_after=RETRY_AFTER_S)


@contextmanager
def translating() -> Iterator[None]:
    """Translate database failures raised in the block into ``PnyxError``."""
    try:
        yield
    except PnyxError:
        raise
    except sa_exc.IntegrityError as exc:
        raise PnyxError(
            ErrorKind.CONFLICT,
            f"the change conflicts with stored data: {exc.orig}",
            code="constraint_violated",
        ) from exc
    except sa_exc.DataError as exc:
        raise PnyxError(
            ErrorKind.INVALID, f"a value does not fit its column: {exc.orig}", code="invalid_value"
        ) from exc
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise unavailable(f"the database is unreachable or failing: {exc.orig}") from exc
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise unavailable(f"the database connection was lost: {exc.orig}") from exc
        raise  # a programming error (bad SQL): a bug to see, not a condition to handle
    except sa_exc.StatementError as exc:
        if isinstance(exc.orig, ValueError):  # e.g. a naive datetime (models.UtcDateTime)
            raise PnyxError(ErrorKind.INVALID, str(exc.orig), code="invalid_value") from exc
        raise
    except (sa_exc.DisconnectionError, sa_exc.TimeoutError) as exc:
        raise unavailable(f"no database connection available: {exc}") from exc
    except OSError as exc:  # includes ConnectionRefusedError and builtin TimeoutError
        raise unavailable(f"cannot reach the database: {exc}") from exc
