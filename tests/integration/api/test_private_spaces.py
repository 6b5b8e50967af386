"""Unlisted and private spaces over the real app (its lifespan run, in process): who may
join, what the lists leave out, signed links (403 unsigned or tampered, 410 expired),
invitations, notifications, and the OpenAPI document."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pnyx.api.app import create_app
from pnyx.config import Settings
from pnyx.services.links import sign
from tests.support.api import sign_up
from tests.support.pnyx_server import ACCOUNTS_UNLIMITED
from tests.support.poll import eventually

LINK_SECRET = "link-secret-for-the-tests-0123456789"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(
        data_dir=tmp_path / "data",
        serve_web=False,
        link_secret=LINK_SECRET,
        # one client signs many accounts up, and hosts open several spaces each
        **ACCOUNTS_UNLIMITED,  # type: ignore[arg-type]
        max_live_spaces_per_account=20,
        space_creation_burst=1000,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


Headers = dict[str, str]


async def expect(response: Any, status: int, code: str | None = None) -> httpx.Response:
    r: httpx.Response = await response
    assert r.status_code == status, r.text
    if code is not None:
        assert r.json()["error"]["code"] == code, r.text
        assert r.json()["error"]["message"]
    return r


async def create(c: httpx.AsyncClient, host: Headers, **body: Any) -> dict[str, Any]:
    r = await expect(c.post("/v1/spaces", json={"title": "Hi", **body}, headers=host), 201)
    space: dict[str, Any] = r.json()
    return space


@pytest.fixture
async def people(client: httpx.AsyncClient) -> dict[str, Headers]:
    return {h: await sign_up(client, h) for h in ("hosty", "invitee", "stranger", "fan")}


async def test_a_private_space_has_a_p_id_and_signed_links(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    r = await expect(
        client.post(
            "/v1/spaces", json={"title": "Secret", "visibility": "private"}, headers=people["hosty"]
        ),
        201,
    )
    space = r.json()
    sid = space["id"]
    assert sid.startswith("p-")
    assert (space["visibility"], space["audience"]) == ("private", "invited")
    reads = ("self", "state", "hls", "hls_plain", "hls_main", "captions", "transcript")
    for key in (*reads, "replay", "recording"):
        assert space["links"][key].startswith("/p/"), space["links"]
        assert space["links"][key].endswith(f"/{sid}" if key == "self" else "")
    assert space["links"]["join"] == f"/v1/spaces/{sid}/join"
    assert r.headers["location"] == space["links"]["self"]
    _, p, exp, sig, *_ = space["links"]["hls"].split("/")
    assert (p, sig) == ("p", sign(sid, int(exp), LINK_SECRET))
    assert int(exp) % 300 == 0 and int(exp) > time.time() + 6 * 3600 - 1

    for visibility in ("public", "unlisted"):
        other = await create(client, people["hosty"], visibility=visibility)
        assert not other["id"].startswith("p-")
        assert other["visibility"] == visibility and other["audience"] is None
        assert other["links"]["hls"] == f"/media/{other['id']}/live.m3u8"


async def test_audience_is_only_for_private_spaces(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    body = {"title": "x", "visibility": "unlisted", "audience": "followers"}
    r = await expect(client.post("/v1/spaces", json=body, headers=people["hosty"]), 422)
    assert "audience is for private spaces" in r.json()["error"]["message"]
    body = {"title": "x", "visibility": "secret"}
    await expect(client.post("/v1/spaces", json=body, headers=people["hosty"]), 422)


async def test_unlisted_and_private_spaces_are_in_no_list(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    await expect(client.post("/v1/accounts/hosty/follow", headers=people["fan"]), 204)
    public = await create(client, people["hosty"])
    await create(client, people["hosty"], visibility="unlisted")
    await create(client, people["hosty"], visibility="private")
    await create(client, people["hosty"], visibility="private", audience="followers")
    soon = "2999-01-01T00:00:00+00:00"
    await create(client, people["hosty"], visibility="unlisted", scheduled_start=soon)
    await create(client, people["hosty"], visibility="private", scheduled_start=soon)

    live = (await expect(client.get("/v1/spaces?state=live"), 200)).json()["spaces"]
    assert [s["id"] for s in live] == [public["id"]]
    assert (await expect(client.get("/v1/spaces?state=scheduled"), 200)).json()["spaces"] == []
    following = await expect(client.get("/v1/following/live", headers=people["fan"]), 200)
    assert [s["id"] for s in following.json()["spaces"]] == [public["id"]]


async def test_an_unlisted_space_is_open_to_anyone_with_the_link(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    space = await create(client, people["hosty"], visibility="unlisted")
    sid = space["id"]
    got = await expect(client.get(f"/v1/spaces/{sid}"), 200)
    assert got.json()["visibility"] == "unlisted"
    await expect(client.get(f"/v1/spaces/{sid}/state"), 200)
    joined = await expect(client.post(f"/v1/spaces/{sid}/join"), 200)
    assert joined.json()["media"]["hls"] == f"/media/{sid}/live.m3u8"
    links = await expect(client.get(f"/v1/spaces/{sid}/links", headers=people["fan"]), 200)
    assert links.json()["expires_at"] is None


async def test_who_may_join_a_private_space(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    space = await create(client, people["hosty"], visibility="private")
    sid = space["id"]
    join = f"/v1/spaces/{sid}/join"
    await expect(client.post(join), 401, "private_space")
    r = await expect(client.post(join, headers=people["stranger"]), 403, "private_space")
    assert "not invited" in r.json()["error"]["message"]
    await expect(client.post("/v1/spaces/p-nosuchspace/join"), 404)

    await expect(
        client.post(
            f"/v1/spaces/{sid}/invites", json={"handle": "@Invitee"}, headers=people["hosty"]
        ),
        201,
    )
    joined = (await expect(client.post(join, headers=people["invitee"]), 200)).json()
    assert set(joined["media"]) == {
        "hls",
        "hls_plain",
        "hls_main",
        "captions",
        "transcript",
        "state",
        "self",
    }
    assert all(link.startswith("/p/") for link in joined["media"].values())
    assert joined["media"]["hls"].endswith(f"/media/{sid}/live.m3u8")
    await expect(client.post(join, headers=people["hosty"]), 200)  # the host may too
    # a stranger may not ask to speak either
    await expect(client.post(f"/v1/spaces/{sid}/hand", headers=people["stranger"]), 403)

    # followers are the audience only when the host says so
    await expect(client.post("/v1/accounts/hosty/follow", headers=people["fan"]), 204)
    await expect(client.post(join, headers=people["fan"]), 403, "private_space")
    for_fans = await create(client, people["hosty"], visibility="private", audience="followers")
    await expect(client.post(f"/v1/spaces/{for_fans['id']}/join", headers=people["fan"]), 200)
    await expect(client.post(f"/v1/spaces/{for_fans['id']}/join", headers=people["stranger"]), 403)


async def test_private_reads_need_a_valid_signed_link(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    space = await create(client, people["hosty"], visibility="private")
    sid = space["id"]
    links = space["links"]
    pre = links["self"].removesuffix(f"/v1/spaces/{sid}")
    for path in (
        f"/v1/spaces/{sid}",
        f"/v1/spaces/{sid}/state",
        f"/v1/spaces/{sid}/state?after=3",
        f"/media/{sid}/live.m3u8",
        f"/media/{sid}/init.mp4",
        f"/media/{sid}/part/1.0.m4s",
        f"/media/{sid}/replay.m3u8",
        f"/v1/spaces/{sid}/recording.m4a",
    ):
        r = await expect(client.get(path), 403, "signed_link_needed")
        assert "private" in r.json()["error"]["message"]
        assert r.headers["access-control-allow-origin"] == "*"
        assert r.headers["cache-control"] == "no-store"
        # with an account token too: listener reads are signed or refused
        await expect(client.get(path, headers=people["hosty"]), 403, "signed_link_needed")

    described = await expect(client.get(links["self"]), 200)
    assert described.json()["id"] == sid
    assert described.json()["links"]["hls"] == f"{pre}/media/{sid}/live.m3u8"
    assert described.headers["cache-control"] == "public, max-age=1"
    state = await expect(client.get(links["state"]), 200)
    assert state.json()["space"] == sid and state.headers["cache-control"] == (
        "public, max-age=1, stale-while-revalidate=1"
    )
    stage = await expect(client.get(links["state"], headers=people["hosty"]), 200)
    assert stage.headers["cache-control"] == "private, no-store"
    # no audio yet: the playlist read got past the signature to the origin
    await expect(client.get(links["hls"]), 404)

    _, _, exp, sig = pre.split("/")
    tampered = [
        f"/p/{exp}/{'A' if sig[0] != 'A' else 'B'}{sig[1:]}/v1/spaces/{sid}/state",
        f"/p/{int(exp) + 300}/{sig}/v1/spaces/{sid}/state",  # a later expiry
        f"/p/{exp}/{sig}/media/p-another0000/live.m3u8",  # another space
        f"/p/soon/{sig}/v1/spaces/{sid}",
    ]
    for path in tampered:
        await expect(client.get(path), 403, "bad_signature")
    old = int(time.time()) - 60
    await expect(
        client.get(f"/p/{old}/{sign(sid, old, LINK_SECRET)}/media/{sid}/live.m3u8"),
        410,
        "link_expired",
    )
    await expect(client.post(f"{pre}/v1/spaces/{sid}/join"), 403, "read_only_link")
    await expect(client.get(f"{pre}/v1/spaces/{sid}/invites"), 404, "not_a_signed_read")
    await expect(client.get(f"{pre}/v1/spaces"), 404, "not_a_signed_read")


async def test_public_spaces_keep_plain_reads_and_accept_signed_ones(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    sid = (await create(client, people["hosty"]))["id"]
    await expect(client.get(f"/v1/spaces/{sid}"), 200)
    exp = int(time.time()) + 600
    signed = await expect(
        client.get(f"/p/{exp}/{sign(sid, exp, LINK_SECRET)}/v1/spaces/{sid}/state"), 200
    )
    assert signed.json()["space"] == sid
    await expect(client.get(f"/p/{exp}/{sign('x', exp, LINK_SECRET)}/v1/spaces/{sid}"), 403)


async def test_links_for_the_audience_only(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    sid = (await create(client, people["hosty"], visibility="private"))["id"]
    url = f"/v1/spaces/{sid}/links"
    await expect(client.get(url), 401)
    await expect(client.get(url, headers=people["stranger"]), 403, "private_space")
    mine = (await expect(client.get(url, headers=people["hosty"]), 200)).json()
    assert mine["visibility"] == "private"
    assert mine["expires_at"] > time.time()
    assert mine["links"]["state"] == f"/p/{mine['expires_at']}/" + (
        f"{sign(sid, mine['expires_at'], LINK_SECRET)}/v1/spaces/{sid}/state"
    )
    await expect(client.get(mine["links"]["state"]), 200)
    assert "frontrow" not in mine["links"]  # no edge serves the front row here (no join offers it)


async def test_invitations_crud(client: httpx.AsyncClient, people: dict[str, Headers]) -> None:
    sid = (await create(client, people["hosty"], visibility="private"))["id"]
    url = f"/v1/spaces/{sid}/invites"
    host = people["hosty"]
    added = await expect(client.post(url, json={"handle": "invitee"}, headers=host), 201)
    assert added.json()["handle"] == "invitee" and added.json()["invited_by"] == "hosty"
    await expect(client.post(url, json={"handle": "invitee"}, headers=host), 201)  # idempotent
    await expect(client.post(url, json={"handle": "ghost_99"}, headers=host), 404)
    await expect(client.post(url, json={"handle": "!!"}, headers=host), 422)
    await expect(client.post(url, json={"handle": "fan"}), 401)
    await expect(
        client.post(url, json={"handle": "fan"}, headers=people["invitee"]), 403, "moderators_only"
    )
    await expect(client.get(url, headers=people["invitee"]), 403, "moderators_only")
    listed = (await expect(client.get(url, headers=host), 200)).json()["invites"]
    assert [i["handle"] for i in listed] == ["invitee"]

    notes = await expect(client.get("/v1/notifications", headers=people["invitee"]), 200)
    assert [(n["kind"], n["space"]) for n in notes.json()["notifications"]] == [
        ("space_invite", sid)
    ]

    await expect(client.delete(f"{url}/invitee", headers=host), 204)
    await expect(client.delete(f"{url}/invitee", headers=host), 404, "not_invited")
    await expect(client.post(f"/v1/spaces/{sid}/join", headers=people["invitee"]), 403)
    assert (await expect(client.get(url, headers=host), 200)).json()["invites"] == []

    public = (await create(client, host))["id"]
    await expect(
        client.post(f"/v1/spaces/{public}/invites", json={"handle": "fan"}, headers=host),
        409,
        "not_private",
    )


async def test_who_is_notified_when_a_space_goes_live(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    """Followers hear of public spaces and of private ones for followers; nobody of an
    unlisted one; only the invited of a private one for the invited."""
    host = people["hosty"]
    await expect(client.post("/v1/accounts/hosty/follow", headers=people["fan"]), 204)
    await create(client, host, visibility="unlisted")
    invited_only = await create(client, host, visibility="private", scheduled_start=None)
    url = f"/v1/spaces/{invited_only['id']}/invites"
    await expect(client.post(url, json={"handle": "invitee"}, headers=host), 201)
    soon = "2999-01-01T00:00:00+00:00"
    later = await create(client, host, visibility="private", scheduled_start=soon)
    await expect(
        client.post(f"/v1/spaces/{later['id']}/invites", json={"handle": "invitee"}, headers=host),
        201,
    )
    await expect(client.post(f"/v1/spaces/{later['id']}/start", headers=host), 200)
    for_fans = await create(client, host, visibility="private", audience="followers")
    public = await create(client, host)

    async def kinds(who: str) -> list[tuple[str, str]]:
        r = await expect(client.get("/v1/notifications", headers=people[who]), 200)
        return sorted((n["kind"], n["space"]) for n in r.json()["notifications"])

    expected_fan = sorted([("space_live", for_fans["id"]), ("space_live", public["id"])])
    await eventually(lambda: _equal(kinds("fan"), expected_fan), 5, "the fan's notifications")
    expected_invitee = sorted(
        [
            ("space_invite", invited_only["id"]),
            ("space_invite", later["id"]),
            ("space_live", later["id"]),
        ]
    )
    await eventually(
        lambda: _equal(kinds("invitee"), expected_invitee), 5, "the invitee's notifications"
    )
    assert await kinds("stranger") == []


async def _equal(got: Any, expected: list[tuple[str, str]]) -> bool:
    return bool(await got == expected)


async def test_the_openapi_document_describes_signed_reads_and_invitations(
    client: httpx.AsyncClient,
) -> None:
    doc = (await expect(client.get("/openapi.json"), 200)).json()
    paths = doc["paths"]
    for read in (
        "/media/{space_id}/live.m3u8",
        "/media/{space_id}/part/{msn}.{part}.m4s",
        "/v1/spaces/{space_id}",
        "/v1/spaces/{space_id}/state",
    ):
        signed = paths["/p/{exp}/{sig}" + read]["get"]
        names = [p["name"] for p in signed["parameters"]]
        assert names[:2] == ["exp", "sig"] and "space_id" in names
        assert {"403", "410"} <= set(signed["responses"])
        assert "403" in paths[read]["get"]["responses"]
    assert set(paths["/v1/spaces/{space_id}/invites"]) == {"get", "post"}
    assert set(paths["/v1/spaces/{space_id}/invites/{handle}"]) == {"delete"}
    assert "get" in paths["/v1/spaces/{space_id}/links"]
    new_space = doc["components"]["schemas"]["NewSpace"]["properties"]
    assert {"visibility", "audience"} <= set(new_space)
    assert "/p/{exp}/{sig}/v1/spaces/{space_id}/join" not in paths
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))


async def test_a_removed_or_blocked_invitee_gets_no_links(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    host = people["hosty"]
    sid = (await create(client, host, visibility="private"))["id"]
    for who in ("invitee", "fan"):
        url = f"/v1/spaces/{sid}/invites"
        await expect(client.post(url, json={"handle": who}, headers=host), 201)
        await expect(client.get(f"/v1/spaces/{sid}/links", headers=people[who]), 200)
    await expect(client.post("/v1/accounts/invitee/block", headers=host), 204)
    await expect(client.get(f"/v1/spaces/{sid}/links", headers=people["invitee"]), 403, "blocked")
    await expect(client.post(f"/v1/spaces/{sid}/join", headers=people["invitee"]), 403, "blocked")
    await expect(client.post(f"/v1/spaces/{sid}/members/fan/remove", headers=host), 200)
    await expect(client.get(f"/v1/spaces/{sid}/links", headers=people["fan"]), 403, "removed")
