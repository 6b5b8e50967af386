"""Where the Redis live state is: a plain Redis URL, or Sentinels that know the primary.

A plain URL (``redis://``, ``rediss://``, ``unix://``) names one server. A Sentinel URL
names the Sentinels and the service they watch; the live state then asks them for the
current primary, and asks again whenever a connection is lost, so it follows a failover::

    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]
        [?sentinel_password=...&sentinel_username=...]

    redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/mymaster/0

The port defaults to 26379 and the database to 0; IPv6 hosts go in brackets. The user and
password (in the URL or as ``username``/``password`` query parameters) are the primary's;
``sentinel_username``/``sentinel_password`` are the Sentinels' own, if they require one.
Percent-encode reserved characters in passwords. Pure parsing: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from pnyx.errors import ErrorKind, PnyxError

SENTINEL_SCHEME = "redis+sentinel"
PLAIN_SCHEMES = frozenset({"redis", "rediss", "unix"})
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_FORM = "redis+sentinel://host:26379[,host:26379...]/service[/db]"
_QUERY_KEYS = ("username", "password", "sentinel_username", "sentinel_password")


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """What a Sentinel URL says (``repr`` never shows the passwords)."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def __repr__(self) -> str:
        hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
        return f"SentinelTarget({SENTINEL_SCHEME}://{hosts}/{self.service}/{self.db})"


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


def is_sentinel_url(url: str) -> bool:
    return _scheme(url) == SENTINEL_SCHEME


def check_redis_url(url: str) -> None:
    """Raise ``PnyxError(INVALID)`` saying what is wrong with a live-state URL (start-up
    validation: a plain URL's scheme, a Sentinel URL in full)."""
    scheme = _scheme(url)
    if scheme == SENTINEL_SCHEME:
        parse_sentinel_url(url)
    elif scheme not in PLAIN_SCHEMES:
        raise _bad(
            f"unsupported scheme {scheme or '(none)'!r}: use redis://host:6379/0, "
            f"rediss://, unix://, or {SENTINEL_FORM}"
        )


def parse_sentinel_url(url: str) -> SentinelTarget:
    """The Sentinels, service, database and credentials of a ``redis+sentinel://`` URL;
    ``PnyxError(INVALID)`` naming the problem (never echoing a password) otherwise."""
    if not is_sentinel_url(url):
        raise _bad(f"not a Sentinel URL: expected {SENTINEL_FORM}")
    rest = url.partition("://")[2]
    rest, _, fragment = rest.partition("#")
    if fragment:
        raise _bad("a Sentinel URL has no #fragment")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon and secret else None
    sentinels = tuple(_address(part) for part in hosts.split(","))
    service, db = _service_and_db(path)
    extra = _query(query)
    if password is not None and "password" in extra:
        raise _bad("the password is given twice (in the URL and as ?password=)")
    if username is not None and "username" in extra:
        raise _bad("the username is given twice (in the URL and as ?username=)")
    return SentinelTarget(
        sentinels=sentinels,
        service=service,
        db=db,
        username=extra.get("username", username),
        password=extra.get("password", password),
        sentinel_username=extra.get("sentinel_username"),
        sentinel_password=extra.get("sentinel_password"),
    )


def _address(part: str) -> tuple[str, int]:
    part = part.strip()
    if not part:
        raise _bad(f"a Sentinel address is empty: expected {SENTINEL_FORM}")
    if part.startswith("["):  # [IPv6] or [IPv6]:port
        host, close, tail = part[1:].partition("]")
        if not close or not host:
            raise _bad(f"bad Sentinel address {part!r}: an IPv6 address goes in [brackets]")
        if tail and not tail.startswith(":"):
            raise _bad(f"bad Sentinel address {part!r}: expected [address]:port")
        port_text = tail[1:] if tail else ""
    else:
        host, _, port_text = part.partition(":")
        if not host or ":" in port_text:
            raise _bad(f"bad Sentinel address {part!r}: expected host:port")
    return host, _port(part, port_text)


def _port(part: str, text: str) -> int:
    if not text:
        return DEFAULT_SENTINEL_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _bad(f"bad Sentinel address {part!r}: the port must be a number 1-65535")
    return int(text)


def _service_and_db(path: str) -> tuple[str, int]:
    names = path.split("/") if path else []
    if names and names[-1] == "":
        names.pop()  # a trailing slash
    if not names or not names[0]:
        raise _bad(f"no service name (the primary's name in the Sentinels): {SENTINEL_FORM}")
    if len(names) > 2:
        raise _bad(f"too many path segments after the Sentinels: {SENTINEL_FORM}")
    service = unquote(names[0])
    if len(names) == 1:
        return service, 0
    if not names[1].isdigit():
        raise _bad(f"the database must be a number, not {names[1]!r}: {SENTINEL_FORM}")
    return service, int(names[1])


def _query(query: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _QUERY_KEYS:
            raise _bad(f"unknown query parameter {key!r}; known: {', '.join(_QUERY_KEYS)}")
        if key in out:
            raise _bad(f"query parameter {key!r} is given twice")
        out[key] = value
    return out


def _bad(problem: str) -> PnyxError:
    return PnyxError(ErrorKind.INVALID, f"bad live-state (Redis) URL: {problem}")
