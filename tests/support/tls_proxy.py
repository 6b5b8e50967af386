"""A real nginx terminating TLS in front of a ``pnyx serve`` node, on a free loopback port.

Not the edge (``pnyx edge-config``): a plain reverse proxy, one worker, a self-signed
P-256 certificate (``tests/support/tls.py``), session tickets and a session cache on. It
logs ``$ssl_session_reused`` for every request ("r" resumed, "." not), so a test can see
from the server's side which handshakes resumed. ``keepalive_requests`` closes each client
connection after that many requests, to make clients reconnect.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.nginx import nginx_running
from tests.support.procs import free_port
from tests.support.tls import Cert, self_signed


@dataclass(frozen=True)
class TlsProxy:
    url: str  # https://127.0.0.1:PORT
    cert: Cert  # cert.cert is also the CA to trust (--cacert)
    reuse_log: Path  # one "r" or "." per request

    def handshakes(self) -> tuple[int, int]:
        """(requests on resumed sessions, requests on full handshakes) as nginx logged."""
        marks = self.reuse_log.read_text().split() if self.reuse_log.exists() else []
        return marks.count("r"), marks.count(".")


def _conf(root: Path, port: int, upstream: str, cert: Cert, keepalive_requests: int) -> str:
    return f"""worker_processes 1;
pid {root / "nginx.pid"};
events {{ worker_connections 4096; }}
http {{
    log_format reuse '$ssl_session_reused';
    access_log {root / "reuse.log"} reuse;
    keepalive_timeout 65;
    keepalive_requests {keepalive_requests};
    upstream origin {{
        server {upstream};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert.cert};
        ssl_certificate_key {cert.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:TLS:1m;
        ssl_session_tickets on;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


@contextmanager
def tls_proxy(upstream: str, *, keepalive_requests: int = 1000) -> Iterator[TlsProxy]:
    """nginx with TLS on a free port, proxying to ``upstream`` (``host:port``)."""
    root = Path(tempfile.mkdtemp(prefix="pnyx-tls-proxy-"))
    root.chmod(0o755)  # nginx's worker (an unprivileged user under root) writes its log here
    try:
        cert = self_signed(root / "cert")
        (root / "cert").chmod(0o755)
        port = free_port()
        conf = root / "nginx.conf"
        conf.write_text(_conf(root, port, upstream, cert, keepalive_requests))
        with nginx_running(conf, [port], log=root / "error.log", what="the TLS proxy to listen"):
            yield TlsProxy(f"https://127.0.0.1:{port}", cert, root / "reuse.log")
    finally:
        shutil.rmtree(root, ignore_errors=True)
