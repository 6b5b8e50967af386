"""Search and discovery on a running node: `GET /v1/spaces?q=` over titles and hosts
(public spaces only), live spaces ordered by their audience, and bad queries refused."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import create_space, error_of, join, ok
from tests.support.api import new_user as user
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import Seen, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    with pnyx_serve(Path(tmp_path_factory.mktemp("discovery"))) as n:
        yield n


def ids(c: httpx.Client, **params: str) -> list[str]:
    return [s["id"] for s in ok(c.get("/v1/spaces", params=params))["spaces"]]


def test_search_finds_public_spaces_by_title_and_host(node: PnyxProcess, c: httpx.Client) -> None:
    word = f"zyx{secrets.token_hex(3)}"  # unique to this run
    ada, bob = user(c, "searchada"), user(c, "searchbob")
    live = create_space(c, ada, title=f"Live {word} talk")
    later = create_space(c, bob, title=f"Later {word} talk", scheduled_start="2099-01-01T10:00:00Z")
    create_space(
        c,
        bob,
        title=f"Hidden {word}",
        visibility="unlisted",
        scheduled_start="2099-01-02T10:00:00Z",
    )
    create_space(
        c, bob, title=f"Secret {word}", visibility="private", scheduled_start="2099-01-03T10:00:00Z"
    )
    assert ids(c, q=word) == [live, later]  # live first; never unlisted or private
    assert ids(c, q=f"{word} live") == [live]
    assert ids(c, q=word, state="scheduled") == [later]
    assert ids(c, q=word, limit="1") == [live]
    assert live in ids(c, q=ada.handle)  # by host
    assert ids(c, q=f"{word} nothingmatchesthis") == []
    r = c.get("/v1/spaces", params={"q": word})
    assert "public" in r.headers["cache-control"]
    error_of(c.get("/v1/spaces", params={"q": ""}), 422)
    error_of(c.get("/v1/spaces", params={"q": "x" * 201}), 422)
    error_of(c.get("/v1/spaces", params={"state": "ended"}), 422)


def test_live_spaces_are_listed_by_audience(node: PnyxProcess, c: httpx.Client) -> None:
    quiet_host, busy_host = user(c, "quiethost"), user(c, "busyhost")
    busy = create_space(c, busy_host, title="Busy")
    quiet = create_space(c, quiet_host, title="Quiet")  # newer: first without an audience
    for _ in range(3):
        join(c, busy)

    def busy_first() -> Seen:
        listed = ok(c.get("/v1/spaces"))["spaces"]
        order = [s["id"] for s in listed if s["id"] in (busy, quiet)]
        counts = {s["id"]: s["listeners"] for s in listed}
        return Seen(order == [busy, quiet], f"order {order}, counts {counts}")

    wait_until(busy_first, within=15, what="the space with listeners listed first")
    for host, space in ((busy_host, busy), (quiet_host, quiet)):
        ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth))
