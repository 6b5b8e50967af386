"""The account menu's "Sign out" and "Sign out everywhere" in Chromium: the server ends
the token(s), not only the page forgetting them; and the sign-up form says why a weak
password is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import error_of, ok
from tests.support.browser import assert_clean, chromiums, require_browser, sign_in, tone_wav
from tests.support.pnyx_server import PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    with pnyx_serve(tmp_path_factory.mktemp("web-signout")) as server:
        yield server


def token(c: httpx.Client, handle: str) -> str:
    return str(ok(c.post("/v1/sessions", json={"handle": handle, "password": PASSWORD}))["token"])


def status(c: httpx.Client, tok: str) -> int:
    return c.get("/v1/notifications", headers={"Authorization": f"Bearer {tok}"}).status_code


def test_sign_out_buttons_end_sessions_on_the_server(node: PnyxProcess, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with node.client() as c, chromiums(node.url, tone_wav(tmp_path / "t.wav", 440)) as (browser,):
        ok(c.post("/v1/accounts", json={"handle": "alice", "password": PASSWORD}), 201)
        here, laptop, phone = token(c, "alice"), token(c, "alice"), token(c, "alice")

        # "Sign out": this session ends on the server; the others go on.
        page, watch = browser.page("sign out")
        sign_in(page, "alice", here, "/")
        expect(page.get_by_label("Signed in as @alice")).to_be_visible()
        page.get_by_role("button", name="Sign out", exact=True).click()
        expect(page.get_by_role("link", name="Sign in")).to_be_visible()
        assert (
            error_of(c.get("/v1/notifications", headers={"Authorization": f"Bearer {here}"}), 401)[
                "code"
            ]
            == "signed_out"
        )
        assert status(c, laptop) == status(c, phone) == 200

        # "Sign out everywhere", from the laptop: the phone's session ends too.
        page2, watch2 = browser.page("sign out everywhere")
        sign_in(page2, "alice", laptop, "/")
        page2.get_by_role("button", name="Sign out everywhere").click()
        expect(page2.get_by_role("link", name="Sign in")).to_be_visible()
        assert status(c, laptop) == status(c, phone) == 401
        assert status(c, token(c, "alice")) == 200  # signing in again works

        # The sign-up form gives the server's reason for a weak password.
        page2.goto("/signin?mode=signup&next=/")
        page2.get_by_label("Handle").fill("weakling")
        page2.get_by_label("Password").fill("password")
        page2.get_by_role("button", name="Sign up").click()
        expect(page2.get_by_text("password too common")).to_be_visible()
        assert_clean(watch)
        # The refused sign-up logs its 422 as a failed resource load; nothing else.
        assert all("422" in e for e in watch2.errors), watch2.errors
