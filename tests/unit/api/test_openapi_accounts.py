"""The OpenAPI document tells the truth about the account routes: the 429 with its body
and headers, and the sign-out routes."""

from __future__ import annotations

from pathlib import Path

from pnyx.api.app import create_app
from pnyx.config import Settings


def test_limits_and_sign_outs_are_documented(tmp_path: Path) -> None:
    doc = create_app(Settings(data_dir=tmp_path, serve_web=False)).openapi()
    for path in ("/v1/sessions", "/v1/accounts"):
        limited = doc["paths"][path]["post"]["responses"]["429"]
        assert {h.lower() for h in limited["headers"]} == {"retry-after", "pnyx-retry-jitter"}
        schema = limited["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorOut"}
    error = doc["components"]["schemas"]["ErrorDetail"]["properties"]
    assert set(error) == {"kind", "code", "message"}
    for path in ("/v1/auth/signout", "/v1/auth/signout-all"):
        responses = doc["paths"][path]["post"]["responses"]
        assert {"204", "401"} <= set(responses)
