"""TLS for the load generator: what to trust, the client context, session resumption.

:class:`TlsOptions` is plain data (it crosses to ``--procs`` worker processes); each
process builds its own context with :func:`client_context`. Trust is the system's CA
store, or only ``--cacert FILE``, or nothing checked at all with ``--insecure`` (said
explicitly: never the default).

Resumption: asyncio (and uvloop) create the TLS object with ``SSLContext.wrap_bio`` and
offer no way to pass a session. :class:`ResumingContext` passes the one its caller put in
:data:`OFFERED` (a context variable, so each task offers its own) for the connection
being made, and a :class:`SessionSlot` keeps the newest session a server gave, as a
browser keeps a ticket per site: a simulated listener's two connections share one slot,
so a listener that reconnects resumes, and a listener that never connected (a new one)
does a full handshake.
"""

from __future__ import annotations

import contextvars
import ssl
from dataclasses import dataclass

from pnyx.errors import ErrorKind, PnyxError

OFFERED: contextvars.ContextVar[ssl.SSLSession | None] = contextvars.ContextVar(
    "pnyx_loadtest_tls_session", default=None
)


@dataclass(frozen=True)
class TlsOptions:
    """How to speak TLS to the target (picklable)."""

    server_hostname: str  # SNI and the name the certificate must carry
    cafile: str | None = None  # trust only this CA bundle (PEM); None: the system's
    insecure: bool = False  # verify nothing (explicit --insecure)


class ResumingContext(ssl.SSLContext):
    """An SSLContext whose new client connections offer the session in :data:`OFFERED`."""

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        if session is None and not server_side:
            session = OFFERED.get()
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)


class SessionSlot:
    """The newest TLS session one simulated client holds for the target."""

    __slots__ = ("session",)

    def __init__(self) -> None:
        self.session: ssl.SSLSession | None = None


def client_context(options: TlsOptions) -> ResumingContext:
    """A client context as a browser's: TLS 1.2 or newer, the default ciphers, hostname
    checked against the certificate; trust as ``options`` say."""
    ctx = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if options.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        if options.cafile is not None:
            ctx.load_verify_locations(cafile=options.cafile)
        else:
            ctx.load_default_certs()
    except (OSError, ssl.SSLError) as exc:
        raise PnyxError(
            ErrorKind.INVALID,
            f"--cacert {options.cafile}: cannot load it as PEM certificates "
            f"({getattr(exc, 'strerror', None) or exc})",
            code="loadtest_setup",
        ) from exc
    return ctx


def describe_failure(exc: BaseException, where: str) -> str | None:
    """A sentence for a TLS failure (None when ``exc`` is not one)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: the certificate of {where} is not trusted ({exc.verify_message}): pass "
            "--cacert FILE with the CA that signed it, or --insecure to skip verification"
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        hint = " (is it an https port?)" if "WRONG_VERSION" in str(reason) else ""
        return f"TLS handshake with {where} failed: {reason}{hint}"
    return None
