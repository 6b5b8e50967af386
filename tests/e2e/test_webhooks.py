"""Webhooks end to end: the routes, the events a host's spaces send, the signature
checked by a receiver the test runs, SSRF refusals, a node killed in the middle of a
retry (the event still arrives, once), and two nodes sharing one outbox."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import User, create_space, error_of, new_user, ok
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import Seen, wait_until
from tests.support.procs import free_port
from tests.support.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.e2e

EVERY = [
    "space.scheduled",
    "space.started",
    "space.ended",
    "recording.ready",
    "recording.deleted",
    "clip.created",
]
QUICK = {
    "webhook_allow_private": "true",  # the receiver is on loopback
    "webhook_retries_s": "0.5,0.5,0.5",
    "webhook_jitter": "0",
    "webhook_poll_s": "0.2",
    "max_live_spaces_per_account": "5",
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver(free_port()) as r:
        yield r


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    with pnyx_serve(Path(tmp_path_factory.mktemp("webhooks")), settings=QUICK) as n:
        yield n


def register(
    c: httpx.Client, receiver: Receiver, who: User, path: str, **body: Any
) -> dict[str, Any]:
    out: dict[str, Any] = ok(
        c.post("/v1/webhooks", json={"url": receiver.url + path, **body}, headers=who.auth), 201
    )
    receiver.secrets[path] = out["secret"]
    return out


def wait_events(receiver: Receiver, path: str, n: int, within: float = 20) -> list[str]:
    def enough() -> Seen:
        got = receiver.events(path)
        return Seen(len(got) >= n, f"{got}")

    wait_until(enough, within, f"{n} webhook events at {path}")
    return receiver.events(path)


def test_register_list_test_and_delete(c: httpx.Client, receiver: Receiver) -> None:
    host, other = new_user(c, "hooker"), new_user(c, "other")

    made = register(c, receiver, host, "/routes", description="my bot")

    assert made["id"].startswith("wh_") and made["secret"].startswith("whsec_")
    assert (made["events"], made["description"]) == (EVERY, "my bot")
    listed = ok(c.get("/v1/webhooks", headers=host.auth))["webhooks"]
    assert [w["id"] for w in listed] == [made["id"]]
    assert "secret" not in listed[0]
    assert ok(c.get("/v1/webhooks", headers=other.auth))["webhooks"] == []

    queued = ok(c.post(f"/v1/webhooks/{made['id']}/test", headers=host.auth), 202)
    wait_events(receiver, "/routes", 1)
    (got,) = receiver.delivered("/routes")
    assert got.msg_id == queued["id"] and got.signature_ok is True
    assert got.headers["content-type"] == "application/json"
    assert got.payload["type"] == "webhook.test"
    assert got.payload["data"] == {"endpoint": made["id"]}
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 30

    def settled() -> list[dict[str, Any]] | None:
        found = ok(c.get(f"/v1/webhooks/{made['id']}/deliveries", headers=host.auth))
        return found["deliveries"] if found["deliveries"][0]["state"] == "delivered" else None

    (delivery,) = wait_until(settled, 10, "the delivery to be marked delivered")
    assert (delivery["msg_id"], delivery["attempts"], delivery["last_status"]) == (
        queued["id"],
        1,
        204,
    )
    assert delivery["next_attempt_at"] is None

    # Someone else's endpoint is not there for them.
    for method, path in (
        ("GET", f"/v1/webhooks/{made['id']}/deliveries"),
        ("POST", f"/v1/webhooks/{made['id']}/test"),
        ("DELETE", f"/v1/webhooks/{made['id']}"),
    ):
        assert error_of(c.request(method, path, headers=other.auth), 404)["code"] == "no_webhook"
    ok(c.delete(f"/v1/webhooks/{made['id']}", headers=host.auth), 204)
    assert error_of(c.delete(f"/v1/webhooks/{made['id']}", headers=host.auth), 404)
    assert ok(c.get("/v1/webhooks", headers=host.auth))["webhooks"] == []
    error_of(c.get("/v1/webhooks"), 401)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://example.com/x"}, "bad_webhook_url"),
        ({"url": "https://user:pw@example.com/x"}, "bad_webhook_url"),
        ({"url": "http://no-such-host.invalid/x"}, "webhook_url_unresolvable"),
        ({"url": "https://example.com/x", "events": ["webhook.test"]}, "bad_request"),
        ({"url": "https://example.com/x", "events": []}, "bad_request"),
        ({"url": "https://example.com/x", "colour": "red"}, "bad_request"),
    ],
)
def test_bad_registrations_are_refused(c: httpx.Client, body: dict[str, Any], code: str) -> None:
    host = new_user(c, "badhook")
    assert error_of(c.post("/v1/webhooks", json=body, headers=host.auth), 422)["code"] == code


def test_a_hosts_spaces_send_their_events(c: httpx.Client, receiver: Receiver) -> None:
    host, stranger = new_user(c, "eventful"), new_user(c, "stranger")
    register(c, receiver, host, "/all")
    register(c, receiver, host, "/ended", events=["space.ended"])
    register(c, receiver, stranger, "/stranger")

    start = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    space = create_space(c, host, title="Launch party", scheduled_start=start)
    ok(c.post(f"/v1/spaces/{space}/start", headers=host.auth))
    ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth))

    wait_events(receiver, "/all", 3)
    # In the order they happened (the order of arrival is not promised: a retry reorders).
    scheduled, started, ended = sorted(
        (a.payload for a in receiver.delivered("/all")), key=lambda p: p["timestamp"]
    )
    assert [p["type"] for p in (scheduled, started, ended)] == [
        "space.scheduled",
        "space.started",
        "space.ended",
    ]
    assert all(a.signature_ok for a in receiver.delivered("/all"))
    assert scheduled["data"]["space"]["id"] == space
    assert scheduled["data"]["space"]["title"] == "Launch party"
    assert scheduled["data"]["space"]["host"] == host.handle
    assert scheduled["data"]["space"]["status"] == "scheduled"
    assert scheduled["data"]["space"]["scheduled_start"] is not None
    assert started["data"]["space"]["status"] == "live"
    assert started["data"]["space"]["started_at"] is not None
    assert ended["data"]["space"]["status"] == "ended"
    assert ended["data"]["space"]["end_reason"] is not None
    assert wait_events(receiver, "/ended", 1) == ["space.ended"]
    (only,) = receiver.delivered("/ended")
    assert only.msg_id == next(  # one event, one id
        a.msg_id for a in receiver.delivered("/all") if a.payload["type"] == "space.ended"
    )
    assert receiver.delivered("/stranger") == []

    # A cancelled scheduled space ends too.
    other = create_space(c, host, title="Maybe later", scheduled_start=start)
    ok(c.post(f"/v1/spaces/{other}/end", headers=host.auth))
    wait_events(receiver, "/all", 5)
    about_other = [a.payload for a in receiver.delivered("/all")]
    about_other = [p for p in about_other if p["data"]["space"]["id"] == other]
    assert sorted(p["type"] for p in about_other) == ["space.ended", "space.scheduled"]
    (cancelled,) = [p for p in about_other if p["type"] == "space.ended"]
    assert cancelled["data"]["space"]["status"] == "cancelled"


def test_a_finished_recording_is_announced(c: httpx.Client, receiver: Receiver) -> None:
    host = new_user(c, "recorder")
    register(c, receiver, host, "/recording", events=["recording.ready"])
    space = create_space(c, host, title="On the record", record=True)
    ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth))

    def announced() -> bool:
        c.get(f"/v1/spaces/{space}/recording.m4a")  # a reader seals it if nobody did
        return bool(receiver.delivered("/recording"))

    wait_until(announced, 30, "recording.ready")
    (got,) = receiver.delivered("/recording")
    data = got.payload["data"]
    assert got.payload["type"] == "recording.ready" and got.signature_ok
    assert data["space"]["id"] == space
    assert data["recording"]["download"] == f"/v1/spaces/{space}/recording.m4a"
    assert data["recording"]["finished_at"] is not None


def test_private_addresses_are_refused_by_default(tmp_path: Path) -> None:
    with pnyx_serve(tmp_path / "strict") as strict, strict.client() as c:
        host = new_user(c, "ssrf")
        for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://169.254.169.254/"):
            refused = error_of(c.post("/v1/webhooks", json={"url": url}, headers=host.auth), 422)
            assert refused["code"] == "webhook_url_private", refused


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_node_restart_in_the_middle_of_a_retry_loses_nothing(
    tmp_path: Path, request: pytest.FixtureRequest, database: str
) -> None:
    """The receiver fails the first two attempts. The node is killed (SIGKILL) after the
    first; another process on the same store makes the second and third: the event
    arrives, signed, once."""
    db = request.getfixturevalue("pg_database_url") if database == "postgres" else None
    settings = {**QUICK, "webhook_retries_s": "4,0.5,0.5,0.5"}
    with webhook_receiver(free_port(), fail_first=2) as receiver:
        with pnyx_serve(tmp_path / "node", database=db, settings=settings) as first:
            with first.client() as c:
                host = new_user(c, "restart")
                hook = register(c, receiver, host, "/restart")
                msg = ok(c.post(f"/v1/webhooks/{hook['id']}/test", headers=host.auth), 202)["id"]
                url = f"/v1/webhooks/{hook['id']}/deliveries"

                def first_failed() -> bool:
                    (row,) = ok(c.get(url, headers=host.auth))["deliveries"]
                    return bool(row["attempts"] == 1 and row["state"] == "pending")

                wait_until(first_failed, 10, "the first attempt's failure stored")
            first.proc.kill()  # between the first attempt and its retry, 4 s later
            first.proc.wait()
            killed_at = time.time()
            assert len(receiver.of(msg)) == 1
        with (
            pnyx_serve(tmp_path / "node", database=db, settings=settings) as second,
            second.client() as c,
        ):

            def delivered() -> list[dict[str, Any]] | None:
                found = ok(c.get(url, headers=host.auth))["deliveries"]
                return found if found[0]["state"] == "delivered" else None

            (delivery,) = wait_until(delivered, 30, "the event delivered after the restart")
        attempts = receiver.of(msg)
        assert [a.status for a in attempts] == [500, 500, 204]
        assert all(a.signature_ok for a in attempts)
        assert all(a.msg_id == msg for a in attempts)
        assert len(receiver.delivered("/restart")) == 1
        assert delivery["attempts"] == 3
        assert int(attempts[1].headers["webhook-timestamp"]) >= int(killed_at) - 1


def test_two_nodes_share_the_outbox_without_sending_twice(
    tmp_path: Path, pg_database_url: str, redis_clean_url: str
) -> None:
    settings = {**QUICK, "webhook_test_burst": "1000", "webhook_test_per_min": "100000"}
    shared = {"database": pg_database_url, "redis": redis_clean_url, "settings": settings}
    n = 40
    with (
        webhook_receiver(free_port()) as receiver,
        pnyx_serve(tmp_path / "a", **shared) as a,  # type: ignore[arg-type]
        pnyx_serve(tmp_path / "b", **shared) as b,  # type: ignore[arg-type]
        a.client() as ca,
        b.client() as cb,
    ):
        host = new_user(ca, "shared")
        hook = register(ca, receiver, host, "/shared")
        sent = [
            ok((ca, cb)[i % 2].post(f"/v1/webhooks/{hook['id']}/test", headers=host.auth), 202)[
                "id"
            ]
            for i in range(n)
        ]

        def all_in() -> Seen:
            got = {a.msg_id for a in receiver.delivered("/shared")}
            return Seen(got >= set(sent), f"{len(got)} of {n}")

        wait_until(all_in, 30, "every test event")
        ids = [a.msg_id for a in receiver.delivered("/shared")]
        assert sorted(ids) == sorted(sent)  # each once
        assert all(a.signature_ok for a in receiver.delivered("/shared"))


def test_an_endpoint_that_never_answers_is_given_up_on(c: httpx.Client) -> None:
    host = new_user(c, "giveup")
    closed = f"http://127.0.0.1:{free_port()}/nobody"  # nothing listens there
    made = ok(c.post("/v1/webhooks", json={"url": closed}, headers=host.auth), 201)
    ok(c.post(f"/v1/webhooks/{made['id']}/test", headers=host.auth), 202)

    def failed() -> dict[str, Any] | None:
        found = ok(c.get(f"/v1/webhooks/{made['id']}/deliveries", headers=host.auth))
        row: dict[str, Any] = found["deliveries"][0]
        return row if row["state"] == "failed" else None

    row = wait_until(failed, 20, "the delivery to be given up")
    assert row["attempts"] == 4  # the first and one per webhook_retries_s (3)
    assert row["last_status"] is None and row["last_error"]
    assert row["next_attempt_at"] is None and row["done_at"] is not None


def test_a_named_host_is_called_at_its_checked_address_with_its_own_name(
    c: httpx.Client, receiver: Receiver
) -> None:
    host = new_user(c, "named")
    port = receiver.url.rsplit(":", 1)[1]
    url = f"http://localhost:{port}/named"
    made = ok(c.post("/v1/webhooks", json={"url": url}, headers=host.auth), 201)
    receiver.secrets["/named"] = made["secret"]
    ok(c.post(f"/v1/webhooks/{made['id']}/test", headers=host.auth), 202)

    wait_events(receiver, "/named", 1)
    (got,) = receiver.delivered("/named")
    assert got.headers["host"] == f"localhost:{port}" and got.signature_ok


def test_a_clip_is_announced_to_the_host(c: httpx.Client, receiver: Receiver) -> None:
    host, fan = new_user(c, "clipped"), new_user(c, "clipfan")
    register(c, receiver, host, "/clip", events=["clip.created"])
    space = create_space(c, host, title="Worth a clip")

    def clipped() -> dict[str, Any] | None:
        # A listener's clip of the first seconds, once a segment is finished.
        r = c.post(f"/v1/spaces/{space}/clips", json={"seconds": 1}, headers=fan.auth)
        return r.json() if r.status_code == 201 else None

    clip = wait_until(clipped, 20, "a clip of the live space")
    wait_until(lambda: receiver.delivered("/clip"), 20, "clip.created")
    (got,) = receiver.delivered("/clip")
    assert got.payload["type"] == "clip.created" and got.signature_ok
    data = got.payload["data"]
    assert data["clip"]["id"] == clip["id"] and data["clip"]["creator"] == fan.handle
    assert data["space"]["id"] == space
    ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth))
