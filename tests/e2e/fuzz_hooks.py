"""Schemathesis hooks for the API fuzzing test (loaded through SCHEMATHESIS_HOOKS).

* The publish route takes its SDP offer as ``application/sdp`` text.
* ``server_errors_are_retries`` replaces schemathesis's ``not_a_server_error``: any 5xx
  fails, except a 503 with ``Retry-After`` whose code says "not yet, retry": a recording
  being finished (``not_ready``), a stage moving between nodes (``stage_moving``), no free
  ICE port, or a compare-and-swap that gave up under contention. Those are answers the
  document promises, not failures; a 503 for anything else (the store or the live state
  failing under a fuzzer) is one.
* Every answer is tallied (method, path template, status, an error's code) into the
  file named by ``PNYX_FUZZ_TALLY``, so the test sees what a pass reached: a pass that
  lost its session answers 401 to nearly everything and would otherwise pass unnoticed.
* With ``PNYX_FUZZ_SIGNIN`` (JSON: url, handle, password) cases are signed in as that
  account, and signed in again once a case has ended the session (a sign-out, a password
  change or a deletion that succeeded, or a 401 ``signed_out``): for the operations that
  end the session they are sent with, so each case meets a live session and not the 401
  its predecessor left behind.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

import httpx
import schemathesis

RETRIES = frozenset({"not_ready", "stage_moving", "no_ice_port", "contended"})
# The operations that end the session they are sent with, when they succeed.
SESSION_ENDERS = frozenset(
    {"/v1/auth/signout", "/v1/auth/signout-all", "/v1/account/password", "/v1/account/delete"}
)


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


class _Session:
    """The account cases are signed in as (``PNYX_FUZZ_SIGNIN``): its current token, and
    every token it was given (cases generated ahead still carry old ones)."""

    account: ClassVar[dict[str, str] | None] = None
    token: ClassVar[str | None] = None
    issued: ClassVar[set[str]] = set()

    @classmethod
    def current(cls) -> str:
        if cls.token is None:
            assert cls.account is not None
            url = cls.account["url"]
            body = {k: cls.account[k] for k in ("handle", "password")}
            r = httpx.post(f"{url}/v1/sessions", json=body, timeout=30)
            if r.status_code == 401:  # deleted by an earlier case: the account again
                httpx.post(f"{url}/v1/accounts", json=body, timeout=30).raise_for_status()
                r = httpx.post(f"{url}/v1/sessions", json=body, timeout=30)
            r.raise_for_status()
            cls.token = str(r.json()["token"])
            cls.issued.add(cls.token)
        return cls.token


def _code(response: Any) -> str | None:
    """An error answer's code (``{"error": {"code": …}}``), if it has one."""
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def _ends_session(case: Any, response: Any) -> bool:
    if response.status_code == 401:
        return _code(response) == "signed_out"
    return 200 <= response.status_code < 300 and case.operation.path in SESSION_ENDERS


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """A case generated with a token of ours that has ended since goes with the current
    one (cases are generated ahead of their calls)."""
    headers = case.headers or {}
    sent = str(headers.get("Authorization", "")).removeprefix("Bearer ")
    if sent in _Session.issued and sent != _Session.current():
        headers["Authorization"] = f"Bearer {_Session.current()}"


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    tally = os.environ.get("PNYX_FUZZ_TALLY")
    if tally:
        with open(tally, "a") as f:
            code = _code(response) if response.status_code >= 400 else None
            line = f"{case.method.upper()} {case.operation.path} {response.status_code}"
            f.write(f"{line} {code}\n" if code else f"{line}\n")
    if _Session.account is not None and _ends_session(case, response):
        _Session.token = None


if signin := os.environ.get("PNYX_FUZZ_SIGNIN"):
    _Session.account = json.loads(signin)

    @schemathesis.auth(refresh_interval=None)
    class SignedIn:
        """Cases carry the account's current token (signed in again once one ended)."""

        def get(self, case: Any, context: Any) -> str:
            return _Session.current()

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {data}"
