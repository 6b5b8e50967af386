"""Follower notifications over HTTP: a host below the fan-out threshold (rows written in
the background) and one above it (nothing written; followers see it on read)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import User, create_space, new_user, ok
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import wait_until

pytestmark = pytest.mark.e2e

THRESHOLD = 2


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    settings = {"fanout_threshold": str(THRESHOLD)}
    with pnyx_serve(Path(tmp_path_factory.mktemp("notifications")), settings=settings) as n:
        yield n


def followers_of(c: httpx.Client, host: User, n: int) -> list[User]:
    fans = [new_user(c, "fan") for _ in range(n)]
    for fan in fans:
        ok(c.post(f"/v1/accounts/{host.handle}/follow", headers=fan.auth), 204)
    return fans


def notifications(c: httpx.Client, who: User) -> list[dict[str, Any]]:
    body = ok(c.get("/v1/notifications", headers=who.auth))
    return list(body["notifications"])


@pytest.mark.parametrize("followers", [THRESHOLD, THRESHOLD + 3], ids=["write", "read"])
def test_followers_hear_when_a_space_goes_live(c: httpx.Client, followers: int) -> None:
    host = new_user(c, "host")
    fans = followers_of(c, host, followers)
    stranger = new_user(c, "stranger")

    space = create_space(c, host, title="tonight")

    for fan in fans:

        def notified(fan: User = fan) -> bool:
            return notifications(c, fan) != []

        wait_until(notified, 15, "a notification")
        (item,) = notifications(c, fan)
        assert (item["kind"], item["space"], item["host"], item["title"]) == (
            "space_live",
            space,
            host.handle,
            "tonight",
        )
        live = ok(c.get("/v1/following/live", headers=fan.auth))["spaces"]
        assert [s["id"] for s in live] == [space]
    assert notifications(c, stranger) == []
    assert ok(c.get("/v1/following/live", headers=stranger.auth)) == {"spaces": []}


def test_notifications_need_an_account_token(c: httpx.Client) -> None:
    assert c.get("/v1/notifications").status_code == 401
    assert c.get("/v1/following/live").status_code == 401
