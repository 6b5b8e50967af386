"""The node's signed links and stock nginx's secure_link agree: a real nginx started by the
test, configured with ``secure_link_md5 "$exp$space $secret"`` (the contract the edge is
built on), answers every link the way ``services/links.py`` judges it: valid, tampered,
for another space, padded, expired."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.links import sign, verify
from tests.support.nginx import nginx_running
from tests.support.procs import free_port

SECRET = "Zq0_link-secret.for~the~nginx~test-0123456789"
CONF = """
worker_processes 1;
pid nginx.pid;
error_log stderr error;
events {{}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        location ~ ^/p/(?<exp>[0-9]+)/(?<sig>[^/]+)/media/(?<space>[^/]+)/ {{
            secure_link $sig,$exp;
            secure_link_md5 "$exp$space {secret}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
            return 200 "ok";
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="pnyx-links-"))
    root.chmod(0o755)
    try:
        port = free_port()
        conf = root / "nginx.conf"
        conf.write_text(CONF.format(port=port, secret=SECRET))
        with nginx_running(conf, [port], log=root / "nginx.log"):
            yield f"http://127.0.0.1:{port}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def node_says(space: str, exp: str, sig: str) -> int:
    try:
        verify(space, exp, sig, SECRET, time.time())
    except PnyxError as exc:
        return {ErrorKind.FORBIDDEN: 403, ErrorKind.GONE: 410}[exc.kind]
    return 200


def test_nginx_and_the_node_judge_every_link_alike(nginx: str) -> None:
    now = int(time.time())
    space, other = "p-AbCdEfGhIjKl", "p-ZyXwVuTsRqPo"
    future, past = now + 3600, now - 3600
    cases = {
        "valid": (space, str(future), sign(space, future, SECRET), 200),
        "expired": (space, str(past), sign(space, past, SECRET), 410),
        "another space's": (other, str(future), sign(space, future, SECRET), 403),
        "a later expiry": (space, str(future + 300), sign(space, future, SECRET), 403),
        "another secret": (space, str(future), sign(space, future, SECRET + "x"), 403),
        "tampered": (space, str(future), "AAAA" + sign(space, future, SECRET)[4:], 403),
    }
    with httpx.Client(timeout=5) as c:
        for name, (sid, exp, sig, expected) in cases.items():
            got = c.get(f"{nginx}/p/{exp}/{sig}/media/{sid}/live.m3u8").status_code
            assert (got, node_says(sid, exp, sig)) == (expected, expected), name
