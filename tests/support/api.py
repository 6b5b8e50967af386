"""A small test client for the Pnyx HTTP API (speaks exactly the public protocol)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class User:
    handle: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Listener:
    listener_id: str
    token: str
    heartbeat_s: float
    media: dict[str, str] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json() if response.content else None


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["kind"] and body["error"]["message"], body
    return dict(body["error"])


def limited(response: httpx.Response, code: str) -> dict[str, Any]:
    """A rate limit's refusal: 429 with its code, ``Retry-After`` and the jitter hint."""
    err = error_of(response, 429)
    assert err["code"] == code, err
    assert err["kind"] == "rate_limited"
    assert err["message"].startswith("too many "), err
    assert int(response.headers["retry-after"]) >= 1
    assert float(response.headers["pnyx-retry-jitter"]) == 0.5
    return err


def register(c: httpx.Client, handle: str, password: str = "correct horse") -> User:
    ok(c.post("/v1/accounts", json={"handle": handle, "password": password}), 201)
    token = ok(c.post("/v1/sessions", json={"handle": handle, "password": password}))["token"]
    return User(handle, token)


async def sign_up(
    c: httpx.AsyncClient, handle: str, password: str = "correct horse"
) -> dict[str, str]:
    """:func:`register` for an async client (an app served in process); returns the
    Authorization header of the new account's session."""
    body = {"handle": handle, "password": password}
    assert (await c.post("/v1/accounts", json=body)).status_code == 201
    token = (await c.post("/v1/sessions", json=body)).json()["token"]
    return {"Authorization": f"Bearer {token}"}


_serial = iter(range(1_000_000))


def new_user(c: httpx.Client, prefix: str) -> User:
    """A freshly registered, signed-in account with a unique handle."""
    return register(c, f"{prefix}_{next(_serial)}")


def create_space(c: httpx.Client, host: User, **body: Any) -> str:
    out = ok(c.post("/v1/spaces", json={"title": "Town hall", **body}, headers=host.auth), 201)
    return str(out["id"])


def join(c: httpx.Client, space: str, user: User | None = None) -> Listener:
    headers = user.auth if user else {}
    out = ok(c.post(f"/v1/spaces/{space}/join", headers=headers))
    return Listener(out["listener_id"], out["token"], out["heartbeat_s"], out["media"])


def state(c: httpx.Client, space: str, after: int | None = None, **kw: Any) -> dict[str, Any]:
    params = {"after": after} if after is not None else {}
    return dict(ok(c.get(f"/v1/spaces/{space}/state", params=params, **kw)))


def wait_state(
    c: httpx.Client, space: str, pred: Any, *, timeout: float = 15.0, **kw: Any
) -> dict[str, Any]:
    """Long-poll the state like a listener until ``pred(state)`` holds (or fail)."""
    deadline = time.monotonic() + timeout
    s = state(c, space, **kw)
    while not pred(s):
        if time.monotonic() > deadline:
            raise AssertionError(f"state never matched; last: {s}")
        s = state(c, space, after=s["version"], **kw)
    return s


def on_stage(s: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["handle"]: m for m in s["stage"]}


class Heartbeats:
    """Keeps listeners heard, like their clients would, on a background thread; a
    listener whose heartbeat is refused (removed, space over) stops, as a client does."""

    def __init__(
        self, base_url: str, space: str, listeners: list[Listener], every_s: float
    ) -> None:
        import threading

        self._base = base_url
        self._space = space
        self._listeners = list(listeners)
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.refused: list[str] = []

    def __enter__(self) -> Heartbeats:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(base_url=self._base, timeout=5) as c:
            while not self._stop.is_set():
                for lst in list(self._listeners):
                    r = c.post(f"/v1/spaces/{self._space}/heartbeat", headers=lst.auth)
                    if r.status_code != 200:
                        self._listeners.remove(lst)
                        self.refused.append(lst.listener_id)
                self._stop.wait(self._every)
