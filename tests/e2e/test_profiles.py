"""Profiles, account settings and share previews against a real ``pnyx serve``:
a profile's counts and whether you follow, a host's spaces (never unlisted or private
ones to others), editing the name and bio (the stage shows the name), changing the
password (other sessions signed out, a fresh token here), deleting an account (its
spaces end, its data goes, the handle stays taken), and the OpenGraph tags of /s/{id}
and /u/{handle} (escaped; a private space previews as a generic one)."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import User, create_space, error_of, ok, state, wait_state
from tests.support.api import new_user as user
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.postgres_server import PostgresServer

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse"  # tests/support/api.py register's
NEW_PASSWORD = "violet lantern harbour quietly"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PnyxProcess]:
    """One node on a SQLite file, one on a PostgreSQL database of its own."""
    settings = {"max_live_spaces_per_account": "5", "share_base_url": "https://pnyx.example"}
    server: PostgresServer | None = None
    database = None
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        name = f"profiles_{secrets.token_hex(6)}"
        server.psql(f"CREATE DATABASE {name}")
        database = server.url(name)
    folder = Path(tmp_path_factory.mktemp("profiles"))
    try:
        with pnyx_serve(folder, database=database, settings=settings) as n:
            yield n
    finally:
        if server is not None and database is not None:
            server.psql(f"DROP DATABASE {database.rsplit('/', 1)[-1]} WITH (FORCE)")


@pytest.fixture
def c(node: PnyxProcess) -> Iterator[httpx.Client]:
    with node.client() as client:
        yield client


def meta(page: str) -> dict[str, str]:
    """The page's og:/twitter:/description meta tags, unescaped."""
    found = re.findall(r'<meta (?:property|name)="([^"]+)" content="([^"]*)">', page)
    return {key: html.unescape(value) for key, value in found}


def test_a_profile_shows_counts_and_whether_you_follow(c: httpx.Client) -> None:
    ada, bob, cy = user(c, "ada"), user(c, "bob"), user(c, "cy")
    ok(c.patch("/v1/account", json={"display_name": "Ada L.", "bio": "Talks"}, headers=ada.auth))
    ok(c.post(f"/v1/accounts/{ada.handle}/follow", headers=bob.auth), 204)
    ok(c.post(f"/v1/accounts/{cy.handle}/follow", headers=ada.auth), 204)

    anonymous = c.get(f"/v1/accounts/{ada.handle}")
    p = ok(anonymous)
    assert (p["display_name"], p["bio"], p["followers"], p["following"]) == (
        "Ada L.",
        "Talks",
        1,
        1,
    )
    assert p["you_follow"] is None
    assert anonymous.headers["cache-control"].startswith("public")
    seen_by_bob = c.get(f"/v1/accounts/{ada.handle}", headers=bob.auth)
    assert ok(seen_by_bob)["you_follow"] is True
    assert seen_by_bob.headers["cache-control"] == "private, no-store"
    assert ok(c.get(f"/v1/accounts/{ada.handle}", headers=cy.auth))["you_follow"] is False
    ok(c.delete(f"/v1/accounts/{ada.handle}/follow", headers=bob.auth), 204)
    after = ok(c.get(f"/v1/accounts/{ada.handle}", headers=bob.auth))
    assert (after["followers"], after["you_follow"]) == (0, False)
    assert ok(c.get("/v1/account", headers=ada.auth))["bio"] == "Talks"
    assert error_of(c.get("/v1/accounts/nobody_here"), 404)["code"] == "no_account"


def test_a_host_s_spaces_show_only_what_the_caller_may_find(c: httpx.Client) -> None:
    host, other = user(c, "host"), user(c, "other")
    public = create_space(c, host, title="Open")
    unlisted = create_space(c, host, title="Quiet", visibility="unlisted")
    private = create_space(c, host, title="Secret", visibility="private")
    soon = create_space(c, host, title="Later", scheduled_start="2099-01-01T10:00:00Z")
    ended = create_space(c, host, title="Done", record=True)
    ok(c.post(f"/v1/spaces/{ended}/end", headers=host.auth))

    def ids(who: User | None, state_: str) -> list[str]:
        headers = who.auth if who else {}
        params = {"state": state_}
        page = ok(c.get(f"/v1/accounts/{host.handle}/spaces", params=params, headers=headers))
        return [s["id"] for s in page["spaces"]]

    assert ids(None, "live") == [public]
    assert ids(other, "live") == [public]
    assert set(ids(host, "live")) == {public, unlisted, private}
    assert ids(None, "scheduled") == [soon]
    assert ids(None, "ended") == [ended]
    first = ok(
        c.get(
            f"/v1/accounts/{host.handle}/spaces",
            params={"state": "live", "limit": 1},
            headers=host.auth,
        )
    )
    assert len(first["spaces"]) == 1 and first["next_offset"] == 1
    assert error_of(c.get(f"/v1/accounts/{host.handle}/spaces", params={"limit": 51}), 422)
    assert error_of(c.get(f"/v1/accounts/{host.handle}/spaces", params={"state": "x"}), 422)
    assert error_of(c.get("/v1/accounts/nobody_here/spaces"), 404)["code"] == "no_account"


def test_a_new_display_name_shows_on_the_stage(c: httpx.Client) -> None:
    host = user(c, "named")
    space = create_space(c, host, title="Names")
    assert state(c, space)["stage"][0]["display_name"] == host.handle
    before = state(c, space)
    ok(c.patch("/v1/account", json={"display_name": "Grace H."}, headers=host.auth))
    # The stage of a live space it hosts shows the name at once: a new state version.
    after = wait_state(c, space, lambda s: s["stage"][0]["display_name"] == "Grace H.")
    assert after["version"] > before["version"]
    assert after["stage"] == [{**before["stage"][0], "display_name": "Grace H."}]


def test_bad_profile_edits_are_refused_saying_why(c: httpx.Client) -> None:
    me = user(c, "edits")
    assert error_of(c.patch("/v1/account", json={"display_name": "   "}, headers=me.auth), 422)
    assert error_of(c.patch("/v1/account", json={"bio": "x" * 281}, headers=me.auth), 422)
    assert error_of(c.patch("/v1/account", json={"colour": "red"}, headers=me.auth), 422)
    assert error_of(c.patch("/v1/account", json={"bio": "hi"}), 401)
    ok(c.patch("/v1/account", json={"bio": "  trimmed  "}, headers=me.auth))
    assert ok(c.get("/v1/account", headers=me.auth))["bio"] == "trimmed"


def test_profile_edits_are_limited_per_account(c: httpx.Client) -> None:
    me = user(c, "busy")
    for i in range(10):  # profile_edit_burst
        ok(c.patch("/v1/account", json={"bio": f"take {i}"}, headers=me.auth))
    refused = c.patch("/v1/account", json={"bio": "one more"}, headers=me.auth)
    assert error_of(refused, 429)["code"] == "profile_edit_limited"
    assert float(refused.headers["retry-after"]) > 0
    ok(c.patch("/v1/account", json={"bio": "mine"}, headers=user(c, "calm").auth))


def test_a_password_change_signs_out_the_other_sessions(c: httpx.Client) -> None:
    me = user(c, "pw")
    other = ok(c.post("/v1/sessions", json={"handle": me.handle, "password": PASSWORD}))
    other_auth = {"Authorization": f"Bearer {other['token']}"}
    wrong = {"old_password": "not it at all", "new_password": NEW_PASSWORD}
    assert error_of(c.post("/v1/account/password", json=wrong, headers=me.auth), 422)["code"] == (
        "wrong_password"
    )
    weak = {"old_password": PASSWORD, "new_password": "password"}
    assert error_of(c.post("/v1/account/password", json=weak, headers=me.auth), 422)["code"] in (
        "weak_password",
        "bad_password",
    )
    good = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    fresh = ok(c.post("/v1/account/password", json=good, headers=me.auth))
    fresh_auth = {"Authorization": f"Bearer {fresh['token']}"}

    assert ok(c.get("/v1/account", headers=fresh_auth))["handle"] == me.handle
    assert error_of(c.get("/v1/account", headers=me.auth), 401)["code"] == "signed_out"
    assert error_of(c.get("/v1/account", headers=other_auth), 401)["code"] == "signed_out"
    old = {"handle": me.handle, "password": PASSWORD}
    assert error_of(c.post("/v1/sessions", json=old), 401)["code"] == "bad_credentials"
    ok(c.post("/v1/sessions", json={"handle": me.handle, "password": NEW_PASSWORD}))


def test_deleting_an_account_ends_its_spaces_and_keeps_its_handle(c: httpx.Client) -> None:
    me, fan = user(c, "leaving"), user(c, "fan")
    ok(c.post(f"/v1/accounts/{me.handle}/follow", headers=fan.auth), 204)
    live = create_space(c, me, title="Bye")
    soon = create_space(c, me, title="Never", scheduled_start="2099-01-01T10:00:00Z")
    assert error_of(
        c.post("/v1/account/delete", json={"password": "wrong one here"}, headers=me.auth), 422
    )
    assert error_of(c.post("/v1/account/delete", json={"password": PASSWORD}), 401)

    done = ok(c.post("/v1/account/delete", json={"password": PASSWORD}, headers=me.auth))

    assert done["spaces_ended"] == 2 and done["follows_deleted"] == 1
    assert done["spaces_deleted"] == 2  # neither was recorded
    assert error_of(c.get(f"/v1/accounts/{me.handle}"), 404)["code"] == "no_account"
    assert error_of(c.get(f"/v1/spaces/{live}"), 404)
    assert error_of(c.get(f"/v1/spaces/{soon}"), 404)
    assert error_of(c.get("/v1/account", headers=me.auth), 401)["code"] == "signed_out"
    signin = {"handle": me.handle, "password": PASSWORD}
    assert error_of(c.post("/v1/sessions", json=signin), 401)["code"] == "bad_credentials"
    again = {"handle": me.handle, "password": PASSWORD}
    assert error_of(c.post("/v1/accounts", json=again), 409)["code"] == "handle_taken"
    assert ok(c.get(f"/v1/accounts/{fan.handle}"))["following"] == 0
    assert error_of(c.post(f"/v1/accounts/{me.handle}/follow", headers=fan.auth), 404)


def test_share_pages_carry_escaped_previews(c: httpx.Client) -> None:
    host = user(c, "sharer")
    ok(
        c.patch(
            "/v1/account",
            json={"display_name": 'Eve "<b>"', "bio": "I host <i>things</i>"},
            headers=host.auth,
        )
    )
    evil = '</title><script>alert(1)</script>"><img src=x>'
    space = create_space(c, host, title=evil)

    r = c.get(f"/s/{space}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "public, max-age=30"
    assert "<script>alert" not in r.text and "<img src=x>" not in r.text
    tags = meta(r.text)
    assert tags["og:title"] == f"{evil} · Pnyx"
    assert tags["twitter:title"] == tags["og:title"]
    assert "Live now" in tags["og:description"]
    assert f'Eve "<b>" (@{host.handle})' in tags["og:description"]
    assert tags["og:url"] == f"https://pnyx.example/s/{space}"
    assert tags["twitter:card"] == "summary"
    assert re.search(r"<title>[^<]*&lt;/title&gt;&lt;script&gt;", r.text)
    assert '<script type="module" src="/web/js/app.js"></script>' in r.text  # still the app

    later = create_space(c, host, title="Far away", scheduled_start="2099-03-04T18:30:00Z")
    assert (
        "Scheduled for Wed 04 Mar 2099, 18:30 UTC"
        in meta(c.get(f"/s/{later}").text)["og:description"]
    )

    secret = create_space(c, host, title="Top secret plans", visibility="private")
    page = c.get(f"/s/{secret}").text
    assert "Top secret" not in page and host.handle not in page
    assert meta(page)["og:title"] == "A private space on Pnyx"

    profile = meta(c.get(f"/u/{host.handle}").text)
    assert profile["og:title"] == f'Eve "<b>" (@{host.handle}) · Pnyx'
    assert profile["og:description"].startswith("I host <i>things</i>")
    assert profile["og:type"] == "profile"
    assert "<i>things" not in c.get(f"/u/{host.handle}").text
    unknown = meta(c.get("/u/nobody_at_all").text)
    assert unknown["og:title"] == "A profile on Pnyx"
    assert meta(c.get("/s/no-such-space").text)["og:title"] == "A space on Pnyx"
