"""Security headers on a ``pnyx serve``, and /docs from the assets the server ships.

* Every answer has ``X-Content-Type-Options: nosniff``; every HTML page (``/``,
  ``/s/{id}``, ``/docs``) a strict Content-Security-Policy (scripts and styles from the
  origin only, no ``unsafe-inline``), ``frame-ancestors 'none'``, ``X-Frame-Options:
  DENY`` and a ``Referrer-Policy``. JSON and media are not given a page's CSP.
* /docs in Chromium: every request that would leave the origin is failed by a Playwright
  route (and recorded); the page renders the operations list, with no console error and
  no CSP violation (tests/e2e/conftest.py).
* ``serve_docs = false`` switches /docs off; FastAPI's CDN pages (/redoc) never exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import create_space, new_user
from tests.support.browser import assert_clean, chromiums, require_browser, tone_wav
from tests.support.pnyx_server import PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e

WEB = Path(__file__).resolve().parents[2] / "src" / "pnyx" / "web"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    with pnyx_serve(tmp_path_factory.mktemp("headers")) as n:
        yield n


def directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_page_headers(r: httpx.Response) -> dict[str, list[str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] in ("no-referrer", "strict-origin-when-cross-origin")
    csp = directives(r.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert not any("unsafe" in v or "http" in v for vs in csp.values() for v in vs), csp
    return csp


def test_pages_carry_a_strict_policy_and_everything_nosniff(
    node: PnyxProcess, c: httpx.Client
) -> None:
    host = new_user(c, "hdr")
    space = create_space(c, host)
    pages = ("/", "/signin", "/new", "/settings", f"/s/{space}", f"/replay/{space}")
    for path in (*pages, f"/u/{host.handle}"):
        csp = assert_page_headers(c.get(path))
        assert csp["media-src"] == ["'self'", "blob:"] and csp["worker-src"] == ["'self'", "blob:"]
        assert csp["img-src"] == ["'self'"]
    assert assert_page_headers(c.get("/docs"))["img-src"] == ["'self'", "data:"]
    for path in (
        "/v1/spaces",
        f"/v1/spaces/{space}",
        "/web/js/app.js",
        "/web/styles.css",
        "/docs/swagger-ui-bundle.js",
        "/openapi.json",
        "/v1/spaces/nope",  # a JSON error
    ):
        r = c.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert "content-security-policy" not in r.headers, path
    assert c.get("/redoc").status_code == 404
    assert c.get("/docs/oauth2-redirect").status_code == 404


def test_the_client_page_has_no_inline_script_handler_or_style() -> None:
    html = (WEB / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert re.findall(r"\son[a-z]+\s*=", html) == []
    assert re.findall(r"\sstyle\s*=|<style", html) == []
    docs = (WEB / "docs" / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", docs) == []
    assert re.findall(r"\son[a-z]+\s*=|\sstyle\s*=|<style", docs) == []


def test_docs_render_from_the_origin_alone(node: PnyxProcess, tmp_path: Path) -> None:
    origin = node.url.rstrip("/")
    left: list[str] = []

    def only_the_origin(route: Any) -> None:
        url = route.request.url
        if url.startswith((origin + "/", "data:", "blob:")):
            route.continue_()
        else:
            left.append(url)
            route.abort()

    with chromiums(node.url, tone_wav(tmp_path / "t.wav", 440)) as (browser,):
        page, watch = browser.page("docs")
        page.context.route("**/*", only_the_origin)
        response = page.goto("/docs")
        assert response is not None and response.status == 200
        page.locator(".opblock").first.wait_for()
        summaries = page.locator(".opblock-summary-description").all_inner_texts()
        assert "Publish audio to the stage (WHIP-style)" in summaries, summaries
        assert page.locator(".opblock").count() >= 20
        page.locator(".opblock-summary").first.click()  # an operation opens
        page.locator(".opblock-body").first.wait_for()
        assert left == [], f"requests leaving the origin: {left}"
        assert_clean(watch)


def test_docs_can_be_switched_off(tmp_path: Path) -> None:
    with pnyx_serve(tmp_path, settings={"serve_docs": "false"}) as n, n.client() as c:
        assert c.get("/docs").status_code == 404
        assert c.get("/docs/swagger-ui-bundle.js").status_code == 404
        assert c.get("/openapi.json").status_code == 200
        assert_page_headers(c.get("/"))
