"""Where the load goes: URL parsing (``http://`` or ``https://``), the loopback guard,
file-descriptor limits, and the few plain set-up calls (stdlib ``http.client``: not the
hot path)."""

from __future__ import annotations

import http.client
import ipaddress
import json
import resource
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pnyx.errors import ErrorKind, PnyxError
from pnyx.loadtest.tls import TlsOptions, client_context, describe_failure

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    tls: bool = False  # https://

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def setup_error(message: str) -> PnyxError:
    return PnyxError(ErrorKind.INVALID, message, code="loadtest_setup")


def parse_target(url: str, *, allow_remote: bool) -> Target:
    """``http://host:port`` or ``https://host:port`` (ports 80 and 443 by default) →
    Target. Refuses anything but loopback unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise setup_error(
            f"--url must look like http://127.0.0.1:8080 or https://127.0.0.1:8443 (got {url!r})"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise setup_error(f"--url has a bad port (got {url!r})") from exc
    if parts.path not in ("", "/"):
        raise setup_error(f"--url takes no path (got {url!r})")
    host = parts.hostname
    if not allow_remote and not is_loopback(host):
        raise setup_error(
            f"refusing to load {host}: not a loopback address (127.0.0.0/8, ::1, localhost). "
            "Rehearse against your own machine, or pass --allow-remote for a deployment "
            "you are allowed to load."
        )
    return Target(host, port or DEFAULT_PORTS[parts.scheme], parts.scheme == "https")


def tls_options(target: Target, *, cacert: str | None, insecure: bool) -> TlsOptions | None:
    """The TLS options of a target (None for http://); checks the flags fit the URL."""
    if not target.tls:
        if cacert is not None or insecure:
            raise setup_error("--cacert and --insecure are for https:// URLs")
        return None
    if cacert is not None and insecure:
        raise setup_error("give --cacert FILE (verify against it) or --insecure, not both")
    return TlsOptions(target.host, cacert, insecure)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; returns the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def fd_hard_limit() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return (1 << 20) if hard == resource.RLIM_INFINITY else int(hard)


FD_MARGIN = 64  # descriptors a worker needs beside its connections


def check_fds(connections: int, what: str) -> None:
    allowed = fd_hard_limit()
    if connections + FD_MARGIN > allowed:
        raise setup_error(
            f"{what} need {connections} connections (+{FD_MARGIN} spare) in one process but "
            f"the open-files hard limit is {allowed}: use more --procs or raise the limit "
            "(ulimit -Hn, limits.conf)"
        )


class Api:
    """Plain blocking JSON calls for set-up (accounts, spaces)."""

    def __init__(
        self, target: Target, tls: TlsOptions | None = None, timeout: float = 15.0
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.context: ssl.SSLContext | None = None if tls is None else client_context(tls)

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        host, port = self.target.host, self.target.port
        conn = (
            http.client.HTTPConnection(host, port, self.timeout)
            if self.context is None
            else http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self.context)
        )
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            said = describe_failure(exc, self.target.host_header)
            if said is not None:
                raise setup_error(said) from exc
            raise setup_error(
                f"cannot reach {self.target.host_header} ({method} {path}): {exc}"
            ) from exc
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw.decode("utf-8", "replace")

    def ok(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        status, out = self.call(method, path, body, token)
        if status >= 300:
            raise setup_error(f"{method} {path} answered {status}: {_message(out)}")
        return out


def _message(out: Any) -> str:
    if isinstance(out, dict) and isinstance(out.get("error"), dict):
        return str(out["error"].get("message") or out["error"])
    return str(out)[:300]
