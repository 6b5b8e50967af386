"""/web serves the web client's folder and nothing outside it, on a real ``pnyx serve``
and through the nginx edge in front of it (which passes the request target on as sent).

Requests go over a raw socket, so the request target reaches the server exactly as an
attacker writes it (an HTTP client library would resolve ``..`` itself): literal ``..``,
percent-encoded dots and slashes (either case), double encoding, backslashes, overlong
UTF-8, absolute paths, NUL bytes and names too long for the file system. Each answers
404 (or 400 where the HTTP parser refuses the target), with no byte of the files aimed
at: the package's own modules, the project's ``pyproject.toml``, the node's data dir
(its kept ``link_secret``) and ``/etc/passwd``. A ``..`` that stays inside the folder is
served (the control that shows the raw targets do reach the file server unresolved).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.nginx import Edge, nginx_edge
from tests.support.pnyx_server import PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "pnyx" / "web"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    with pnyx_serve(tmp_path_factory.mktemp("traversal") / "data") as n:
        yield n


@pytest.fixture(scope="module")
def edge(node: PnyxProcess) -> Iterator[Edge]:
    with nginx_edge([node.url.removeprefix("http://")], varnish=False) as e:
        yield e


@pytest.fixture(params=["node", "edge"])
def server(request: pytest.FixtureRequest, node: PnyxProcess) -> str:
    """The base URL requests go to: the node itself, or the edge."""
    if request.param == "node":
        return node.url
    edge: Edge = request.getfixturevalue("edge")
    return edge.http_url


def raw(server: str, target: str, method: str = "GET") -> tuple[int, bytes]:
    """The status and whole answer (head and body) to one request, target as given."""
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: pnyx\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0].split()
    assert status_line[0].startswith(b"HTTP/1."), answer[:200]
    return int(status_line[1]), answer


def spellings(relative: str) -> list[str]:
    """Ways to write ``relative`` (a path with ``..`` in it, from the web folder) after
    ``/web/`` that a careless file server would resolve outside the folder."""
    dots, slash = relative, relative.replace("..", "%2e%2e")
    return [
        dots,
        f"js/../{dots}",
        f"js/views/../../{dots}",
        slash,
        relative.replace("..", "%2E%2E"),
        relative.replace("..", ".%2e"),
        relative.replace("/", "%2f"),
        slash.replace("/", "%2f"),
        f"js/{slash.replace('/', '%2F')}",
        relative.replace("..", "%252e%252e").replace("/", "%252f"),  # double encoding
        relative.replace("/", "%5c"),
        relative.replace("/", "%5C").replace("..", "%2e%2e"),
        relative.replace("../", "..%c0%af"),  # overlong UTF-8 slash
        relative.replace("..", "%c0%ae%c0%ae"),  # overlong UTF-8 dots
        relative.replace("../", "..;/"),
        relative.replace("../", "....//"),
        relative.replace("/", "//"),
    ]


def targets(node: PnyxProcess) -> dict[str, bytes]:
    """Files outside the web folder, by their path from it, with a line of each that the
    answer must not contain."""
    files = [ROOT / "pyproject.toml", ROOT / "src" / "pnyx" / "config.py"]
    files += [Path(node.log).parent / "link_secret", Path("/etc/passwd")]
    found = {}
    for path in files:
        if not path.exists():
            continue
        lines = [line for line in path.read_bytes().splitlines() if len(line.strip()) >= 8]
        up = os.path.relpath(path, WEB)
        if path.is_absolute() and path.parts[1] == "etc":  # deeper than the root: clamped
            up = "../" * (len(WEB.parts) + 3) + "etc/passwd"
        found[up] = max(lines, key=len)
    return found


def test_the_web_folder_is_served_and_dot_dot_inside_it_resolves(server: str) -> None:
    app_js = (WEB / "js" / "app.js").read_bytes()
    for target in ("/web/js/app.js", "/web/js/../js/app.js", "/web/js/%2e%2e/js/app.js"):
        status, answer = raw(server, target)
        assert status == 200, (target, answer[:300])
        assert answer.endswith(app_js), target


def test_no_spelling_of_dot_dot_leaves_the_web_folder(node: PnyxProcess, server: str) -> None:
    found = targets(node)
    assert len(found) >= 3, found  # the project's files and the data dir's at least
    assert "link_secret" in "".join(found), found
    tried = 0
    for relative, secret_line in found.items():
        for spelled in spellings(relative):
            for method in ("GET", "HEAD"):
                status, answer = raw(server, f"/web/{spelled}", method)
                tried += 1
                assert status in (400, 404), (spelled, method, answer[:400])
                assert secret_line not in answer, (spelled, method)
    assert tried >= 100


@pytest.mark.parametrize(
    "target",
    [
        "/web//etc/passwd",
        "/web/%2fetc%2fpasswd",
        "/web/%2F%2Fetc/passwd",
        "/web/%5cetc%5cpasswd",
        "/web/index.html%00",
        "/web/%00../../config.py",
        "/web/js/app.js%00.png",
        "/web/" + "a" * 4000,
        "/web/" + "a/" * 1500,
        "/web/",
        "/web",
        "/web/.",
        "/web/%2e",
    ],
)
def test_odd_targets_are_refused_not_failed(server: str, target: str) -> None:
    status, answer = raw(server, target)
    assert status in (307, 400, 404), (target, answer[:400])
    assert b"root:" not in answer
    if status == 307:  # a folder without its slash: only ever back into /web
        location = next(
            line for line in answer.split(b"\r\n") if line.lower().startswith(b"location:")
        )
        assert b"/web/" in location, location
    head, _, body = answer.partition(b"\r\n\r\n")
    if status in (400, 404) and b"application/json" in head.lower():
        assert b'"error"' in body, body[:200]  # the error body says what was wrong
