"""The interactive API documentation at /docs, from assets the server ships.

Swagger UI (``swagger-ui-dist``, pinned in package-lock.json, placed in
``web/vendor/swagger-ui/`` by ``make install`` like hls.js) with its start-up as a file
(``web/docs/init.js``), never from a CDN: /docs shares its origin with the web client,
whose ``localStorage`` holds account tokens. The page has its own Content-Security-Policy
(:data:`DOCS_CSP`: the page CSP plus ``data:`` images, which Swagger UI's stylesheet
uses for its icons). The setting ``serve_docs`` switches /docs off; ``/openapi.json``
stays. Without the vendored files /docs answers 503 saying how to install them.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response

from pnyx.api.headers import PAGE_CSP
from pnyx.errors import ErrorKind, PnyxError

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PAGE = WEB_DIR / "docs" / "index.html"
SWAGGER_DIR = WEB_DIR / "vendor" / "swagger-ui"
ASSETS = {  # URL under /docs/ → file, media type
    "init.js": (WEB_DIR / "docs" / "init.js", "text/javascript"),
    "icon.svg": (WEB_DIR / "icon.svg", "image/svg+xml"),
    "swagger-ui.css": (SWAGGER_DIR / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (SWAGGER_DIR / "swagger-ui-bundle.js", "text/javascript"),
}
DOCS_CSP = PAGE_CSP.replace("img-src 'self'", "img-src 'self' data:")


def installed() -> bool:
    return all(path.exists() for path, _ in ASSETS.values())


def _missing() -> PnyxError:
    return PnyxError(
        ErrorKind.UNAVAILABLE,
        f"the API documentation's assets are not installed in {SWAGGER_DIR}: run "
        "`make install` (npm ci, then the copy); /openapi.json is there all the same",
        code="docs_not_installed",
    )


def install(app: FastAPI) -> None:
    async def page() -> Response:
        if not installed():
            raise _missing()
        return FileResponse(
            PAGE,
            media_type="text/html",
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": DOCS_CSP},
        )

    async def asset(name: str) -> Response:
        found = ASSETS.get(name)
        if found is None:
            raise PnyxError(ErrorKind.NOT_FOUND, f"no /docs/{name}", code="not_found")
        path, media_type = found
        if not path.exists():
            raise _missing()
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})

    app.add_api_route("/docs", page, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/docs/{name}", asset, methods=["GET", "HEAD"], include_in_schema=False)
