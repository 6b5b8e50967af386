"""What the web client needs of notifications, over HTTP against a real node: the unread
count and read mark, "remind me" for anyone signed in (and never for a private space one
may not join), editing and rescheduling a scheduled space (told to followers and the
reminded), cancelling with a reason, invitations to speak, and browser push, checked at
a push service this test runs (it decrypts each message and verifies its VAPID
signature, as a real push service and browser would)."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.api import User, create_space, error_of, new_user, ok
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import wait_until

pytestmark = pytest.mark.e2e

REMIND_BEFORE_S = 3600  # a space within the hour is "starting soon"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    settings = {
        "remind_before_s": str(REMIND_BEFORE_S),
        "notify_poll_s": "7",
        "push_allow_http": "true",
        "max_live_spaces_per_account": "5",
    }
    with pnyx_serve(Path(tmp_path_factory.mktemp("notify")), settings=settings) as n:
        yield n


def notes(c: httpx.Client, who: User) -> dict[str, Any]:
    return dict(ok(c.get("/v1/notifications", headers=who.auth)))


def kinds(c: httpx.Client, who: User, space: str) -> list[str]:
    return [n["kind"] for n in notes(c, who)["notifications"] if n["space"] == space]


def wait_kind(c: httpx.Client, who: User, space: str, kind: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        for n in notes(c, who)["notifications"]:
            if n["space"] == space and n["kind"] == kind:
                return dict(n)
        return None

    wait_until(lambda: found() is not None, 25, f"@{who.handle}'s {kind} for {space}")
    item = found()
    assert item is not None
    return item


def later(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def follow(c: httpx.Client, fan: User, host: User) -> None:
    ok(c.post(f"/v1/accounts/{host.handle}/follow", headers=fan.auth), 204)


def test_unread_count_and_read_mark(c: httpx.Client) -> None:
    host, fan = new_user(c, "host"), new_user(c, "fan")
    follow(c, fan, host)
    body = notes(c, fan)
    assert (body["unread"], body["read_at"], body["poll_s"]) == (0, None, 7)

    first = create_space(c, host, title="one")
    wait_kind(c, fan, first, "space_live")
    assert notes(c, fan)["unread"] == 1

    mark = ok(c.post("/v1/notifications/read", headers=fan.auth))["read_at"]
    body = notes(c, fan)
    assert (body["unread"], body["read_at"]) == (0, mark)
    # The mark never moves back.
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert ok(c.post("/v1/notifications/read", json={"until": past}, headers=fan.auth)) == {
        "read_at": mark
    }
    ok(c.post(f"/v1/spaces/{first}/end", headers=host.auth))
    second = create_space(c, host, title="two")
    wait_kind(c, fan, second, "space_live")
    assert notes(c, fan)["unread"] == 1
    assert c.post("/v1/notifications/read").status_code == 401
    error_of(c.post("/v1/notifications/read", json={"until": "soon"}, headers=fan.auth), 422)


def test_remind_me_reschedule_and_cancel_with_a_reason(c: httpx.Client) -> None:
    host, fan, stranger, other = (new_user(c, p) for p in ("host", "fan", "stranger", "other"))
    follow(c, fan, host)
    space = create_space(c, host, title="Planning", scheduled_start=later(180))

    # Anyone signed in may ask; it is idempotent and can be read back.
    reminder = f"/v1/spaces/{space}/reminder"
    assert ok(c.get(reminder, headers=stranger.auth)) == {"space": space, "reminded": False}
    for _ in range(2):
        assert ok(c.post(reminder, headers=stranger.auth)) == {"space": space, "reminded": True}
    assert ok(c.get(reminder, headers=stranger.auth))["reminded"] is True
    ok(c.post(reminder, headers=other.auth))
    assert ok(c.delete(reminder, headers=other.auth)) == {"space": space, "reminded": False}
    assert c.post(reminder).status_code == 401
    error_of(c.post("/v1/spaces/nope/reminder", headers=stranger.auth), 404)

    # Only the host edits; bad values are refused with what was wrong.
    patch = f"/v1/spaces/{space}"
    assert error_of(c.patch(patch, json={"title": "x"}, headers=fan.auth), 403)["code"] == (
        "host_only"
    )
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    bad = error_of(c.patch(patch, json={"scheduled_start": past}, headers=host.auth), 422)
    assert bad["code"] == "bad_schedule"
    error_of(c.patch(patch, json={"title": "   "}, headers=host.auth), 422)
    error_of(c.patch(patch, json={"colour": "red"}, headers=host.auth), 422)

    # Retitled and moved into the reminder window: followers and the reminded hear the new
    # time, then "starting soon" once; the one who took their request back hears nothing.
    new_start = later(30)
    out = ok(
        c.patch(
            patch,
            json={
                "title": "Planning, moved",
                "scheduled_start": new_start,
                "who_can_speak": "nobody",
            },
            headers=host.auth,
        )
    )
    assert (out["title"], out["state"], out["speak_policy"]) == (
        "Planning, moved",
        "scheduled",
        "nobody",
    )
    assert datetime.fromisoformat(out["scheduled_start"]) == datetime.fromisoformat(new_start)
    for who in (fan, stranger):
        moved = wait_kind(c, who, space, "space_rescheduled")
        assert datetime.fromisoformat(moved["detail"]) == datetime.fromisoformat(new_start)
        assert moved["title"] == "Planning, moved"
        wait_kind(c, who, space, "space_soon")
    assert kinds(c, other, space) == []
    assert kinds(c, stranger, space).count("space_soon") == 1

    # Cancelled with a reason: told to both, and kept on the space.
    ended = ok(c.post(f"/v1/spaces/{space}/end", json={"reason": "host is ill"}, headers=host.auth))
    assert (ended["state"], ended["cancel_reason"]) == ("cancelled", "host is ill")
    for who in (fan, stranger):
        assert wait_kind(c, who, space, "space_cancelled")["detail"] == "host is ill"
    assert ok(c.get(f"/v1/spaces/{space}"))["cancel_reason"] == "host is ill"

    # Over: no more reminders, no more edits.
    assert error_of(c.post(reminder, headers=other.auth), 409)["code"] == "not_scheduled"
    assert error_of(c.patch(patch, json={"title": "again"}, headers=host.auth), 409)["code"] == (
        "not_scheduled"
    )
    error_of(c.post(f"/v1/spaces/{space}/end", json={"reason": "x" * 501}, headers=host.auth), 422)


def test_the_reminded_hear_when_it_starts(c: httpx.Client) -> None:
    host, someone = new_user(c, "host"), new_user(c, "someone")
    space = create_space(c, host, title="Later", scheduled_start=later(180))
    ok(c.post(f"/v1/spaces/{space}/reminder", headers=someone.auth))
    ok(c.post(f"/v1/spaces/{space}/start", headers=host.auth))
    wait_kind(c, someone, space, "space_live")
    assert ok(c.get(f"/v1/spaces/{space}/reminder", headers=someone.auth))["reminded"]
    error_of(c.post(f"/v1/spaces/{space}/reminder", headers=someone.auth), 409)


def test_reminders_never_reach_a_private_space_outsider(c: httpx.Client) -> None:
    host, guest, outsider = (new_user(c, p) for p in ("host", "guest", "outsider"))
    space = create_space(c, host, title="Board", scheduled_start=later(180), visibility="private")
    reminder = f"/v1/spaces/{space}/reminder"
    assert error_of(c.post(reminder, headers=outsider.auth), 403)["code"] == "private_space"
    ok(c.post(f"/v1/spaces/{space}/invites", json={"handle": guest.handle}, headers=host.auth), 201)
    ok(c.post(reminder, headers=guest.auth))
    # Invitation revoked after asking: the reminder is not sent to them.
    ok(c.delete(f"/v1/spaces/{space}/invites/{guest.handle}", headers=host.auth), 204)
    ok(c.patch(f"/v1/spaces/{space}", json={"scheduled_start": later(20)}, headers=host.auth))
    ok(
        c.post(f"/v1/spaces/{space}/invites", json={"handle": outsider.handle}, headers=host.auth),
        201,
    )
    wait_kind(c, outsider, space, "space_soon")  # invited accounts hear it
    assert "space_soon" not in kinds(c, guest, space)
    assert "space_rescheduled" not in kinds(c, guest, space)


def test_an_invitation_to_speak_is_a_notification(c: httpx.Client) -> None:
    host, guest = new_user(c, "host"), new_user(c, "guest")
    space = create_space(c, host, title="Open mic")
    ok(
        c.put(
            f"/v1/spaces/{space}/members/{guest.handle}/role",
            json={"role": "speaker"},
            headers=host.auth,
        )
    )
    item = wait_kind(c, guest, space, "speak_invite")
    assert (item["host"], item["title"]) == (host.handle, "Open mic")


# -- browser push, against a push service run here ---------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PushService:
    """Records every POST; answers 201, or 410 on paths under /gone/."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.received.append((self.path, dict(self.headers.items()), body))
                self.send_response(410 if self.path.startswith("/gone/") else 201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def to(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for p, h, b in self.received if p == path]


class Browser:
    """What a browser's PushManager keeps: a P-256 key pair and a 16-byte secret."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def subscription(self) -> dict[str, Any]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": _b64(point), "auth": _b64(self.auth)},
        }

    def open(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return dict(json.loads(plain))


@pytest.fixture
def push_service() -> Iterator[PushService]:
    service = PushService()
    yield service
    service.close()


def check_vapid(headers: dict[str, str], audience: str, public_key: str) -> None:
    scheme, _, params = headers["Authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(p.split("=", 1) for p in params.split(","))
    assert fields["k"] == public_key
    point = _unb64(fields["k"])
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    claims = jwt.decode(fields["t"], key, algorithms=["ES256"], audience=audience)
    assert claims["sub"].startswith(("mailto:", "https:"))
    assert headers["Content-Encoding"] == "aes128gcm"
    assert int(headers["TTL"]) > 0


def test_push_reaches_subscribed_browsers(c: httpx.Client, push_service: PushService) -> None:
    host, fan = new_user(c, "host"), new_user(c, "fan")
    follow(c, fan, host)
    key = ok(c.get("/v1/push/key"))["public_key"]
    assert len(_unb64(key)) == 65

    browser = Browser(f"{push_service.origin}/sub/{fan.handle}")
    stale = Browser(f"{push_service.origin}/gone/{fan.handle}")
    for b in (browser, stale):
        ok(c.post("/v1/push/subscriptions", json=b.subscription(), headers=fan.auth), 204)

    space = create_space(c, host, title="Pushed")
    wait_until(
        lambda: push_service.to(browser.endpoint.removeprefix(push_service.origin)), 20, "a push"
    )
    ((headers, body),) = push_service.to(f"/sub/{fan.handle}")
    check_vapid(headers, push_service.origin, key)
    message = browser.open(body)
    assert (message["kind"], message["space"], message["title"]) == ("space_live", space, "Pushed")

    # The 410 removed the stale subscription: the next push goes to the live one only.
    wait_until(lambda: push_service.to(f"/gone/{fan.handle}"), 10, "the stale push")
    ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth))
    second = create_space(c, host, title="Again")
    wait_until(lambda: len(push_service.to(f"/sub/{fan.handle}")) == 2, 20, "a second push")
    assert browser.open(push_service.to(f"/sub/{fan.handle}")[1][1])["space"] == second
    assert len(push_service.to(f"/gone/{fan.handle}")) == 1

    # Unsubscribed: nothing more.
    ok(
        c.delete("/v1/push/subscriptions", params={"endpoint": browser.endpoint}, headers=fan.auth),
        204,
    )
    ok(c.post(f"/v1/spaces/{second}/end", headers=host.auth))
    third = create_space(c, host, title="Quiet")
    wait_kind(c, fan, third, "space_live")
    assert len(push_service.to(f"/sub/{fan.handle}")) == 2


# -- push for the followers of a host above fanout_threshold (fan-out on read) ------------


@pytest.fixture(scope="module")
def big_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    """A node whose hosts are "big" from 3 followers on; the big-host push job pages one
    subscribed follower at a time (so the keyset paging runs over several pages)."""
    settings = {
        "fanout_threshold": "2",
        "push_fanout_batch": "1",
        "push_fanout_per_s": "100",
        "push_allow_http": "true",
    }
    with pnyx_serve(Path(tmp_path_factory.mktemp("big-push")), settings=settings) as n:
        yield n


def metric(c: httpx.Client, name: str) -> float:
    """A counter's value from the node's /metrics (0 before its first increment)."""
    for line in c.get("/metrics").text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_push_reaches_subscribed_followers_of_a_big_host(
    big_node: PnyxProcess, push_service: PushService
) -> None:
    with big_node.client() as c:
        host = new_user(c, "star")
        subscribed = [new_user(c, "fan_push") for _ in range(2)]
        silent = [new_user(c, "fan_quiet") for _ in range(3)]
        stranger = new_user(c, "stranger")
        for fan in (*subscribed, *silent):
            follow(c, fan, host)
        browsers = {}
        for who in (*subscribed, stranger):
            browsers[who.handle] = Browser(f"{push_service.origin}/sub/{who.handle}")
            sub = browsers[who.handle].subscription()
            ok(c.post("/v1/push/subscriptions", json=sub, headers=who.auth), 204)
        key = ok(c.get("/v1/push/key"))["public_key"]
        paged_before = metric(c, "pnyx_push_big_host_accounts_total")
        done = 'pnyx_push_big_host_jobs_total{outcome="done"}'
        jobs_before = metric(c, done)

        space = create_space(c, host, title="Big night")

        # Fan-out on read: no rows for the host's followers, yet the subscribed ones hear.
        wait_until(lambda: metric(c, done) > jobs_before, 20, "the big-host push job to finish")
        for fan in subscribed:
            path = f"/sub/{fan.handle}"
            wait_until(lambda p=path: push_service.to(p), 20, f"a push to @{fan.handle}")
            ((headers, body),) = push_service.to(path)
            check_vapid(headers, push_service.origin, key)
            message = browsers[fan.handle].open(body)
            assert (message["kind"], message["space"], message["host"]) == (
                "space_live",
                space,
                host.handle,
            )
        # The follower without a subscription was never read (only the subscribed ones were
        # paged), and the subscribed non-follower was never pushed to.
        assert metric(c, "pnyx_push_big_host_accounts_total") - paged_before == len(subscribed)
        assert push_service.to(f"/sub/{stranger.handle}") == []
        assert [p for p, _, _ in push_service.received] == sorted(
            f"/sub/{fan.handle}" for fan in subscribed
        )
        # Followers still see it on read (the path for hosts above the threshold).
        assert kinds(c, silent[0], space) == ["space_live"]


def test_push_subscriptions_are_checked(c: httpx.Client) -> None:
    fan = new_user(c, "fan")
    good = Browser("https://push.example/x").subscription()
    bad_keys = {**good, "keys": {"p256dh": _b64(b"\x04" + b"\x01" * 64), "auth": _b64(b"a")}}
    assert (
        error_of(c.post("/v1/push/subscriptions", json=bad_keys, headers=fan.auth), 422)["code"]
        == "bad_push_keys"
    )
    ftp = {**good, "endpoint": "ftp://push.example/x"}
    assert (
        error_of(c.post("/v1/push/subscriptions", json=ftp, headers=fan.auth), 422)["code"]
        == "bad_push_endpoint"
    )
    error_of(c.post("/v1/push/subscriptions", json={"endpoint": "x"}, headers=fan.auth), 422)
    assert c.post("/v1/push/subscriptions", json=good).status_code == 401
