"""Security headers, as one pure ASGI middleware.

Every HTTP answer gets ``X-Content-Type-Options: nosniff`` (a browser never guesses a
script or a page out of a media object or a JSON error). Every HTML answer also gets:

* a Content-Security-Policy (:data:`PAGE_CSP`, unless the route set its own, as /docs
  does: ``api/docs.py``): scripts and styles from this origin only (no inline script,
  handler or style attribute: the web client sets styles through the CSSOM), requests
  (fetch, XHR, the stage WebSocket) to this origin only, ``blob:`` for what hls.js makes
  (its transmuxing worker and the Media Source the player plays), no plugins, no
  ``<base>``, and ``frame-ancestors 'none'``: no other site frames the host's controls;
* ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``;
* ``Referrer-Policy: no-referrer``: a space's URL never leaks to the sites its pinned
  link leads to.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "media-src 'self' blob:",
        "worker-src 'self' blob:",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

_CSP = b"content-security-policy"
NOSNIFF = (b"x-content-type-options", b"nosniff")
_PAGE = (
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_OURS = frozenset({NOSNIFF[0], *(k for k, _ in _PAGE)})  # set here, whatever the route said


class SecurityHeaders:
    def __init__(self, app: ASGIApp, csp: str = PAGE_CSP) -> None:
        self.app = app
        self.csp = csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS]
                headers.append(NOSNIFF)
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if ctype.lower().startswith(b"text/html"):
                    if not any(k.lower() == _CSP for k, _ in headers):
                        headers.append((_CSP, self.csp))
                    headers.extend(_PAGE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
