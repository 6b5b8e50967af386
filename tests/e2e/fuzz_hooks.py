"""Schemathesis hooks for the API fuzzing test (loaded through SCHEMATHESIS_HOOKS).

* The publish route takes its SDP offer as ``application/sdp`` text.
* ``server_errors_are_retries`` replaces schemathesis's ``not_a_server_error``: any 5xx
  fails, except a 503 with ``Retry-After`` whose code says "not yet, retry": a recording
  being finished (``not_ready``), a stage moving between nodes (``stage_moving``), no free
  ICE port, or a compare-and-swap that gave up under contention. Those are answers the
  document promises, not failures; a 503 for anything else (the store or the live state
  failing under a fuzzer) is one.
"""

from __future__ import annotations

from typing import Any

import schemathesis

RETRIES = frozenset({"not_ready", "stage_moving", "no_ice_port", "contended"})


@schemathesis.serializer("application/sdp")
def sdp(ctx: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", errors="surrogatepass")


@schemathesis.check
def server_errors_are_retries(ctx: Any, response: Any, case: Any) -> None:
    status = response.status_code
    if status < 500:
        return
    if status == 503 and response.headers.get("retry-after"):
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        if code in RETRIES:
            return
    raise AssertionError(f"server error {status}: {response.text[:500]}")
