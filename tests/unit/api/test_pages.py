"""The share pages' renderer (api/pages.py): every value escaped, the tags present, the
rest of the page untouched."""

from __future__ import annotations

import html
import re

from pnyx.api.app import WEB_DIR
from pnyx.api.pages import MAX_TITLE, Preview, page

TEMPLATE = (WEB_DIR / "index.html").read_text(encoding="utf-8")
EVIL = '"><script>alert(1)</script><meta http-equiv="refresh" content="0;url=//evil">'


def tags(text: str) -> dict[str, str]:
    found = re.findall(r'<meta (?:property|name)="([^"]+)" content="([^"]*)">', text)
    return {key: html.unescape(value) for key, value in found}


def test_values_stay_text_whatever_they_hold() -> None:
    out = page(TEMPLATE, Preview(EVIL, f"by {EVIL}", "/s/x", extra={"profile:username": EVIL}))
    assert "<script>" not in out and 'http-equiv="refresh"' not in out
    assert out.count("<script") == TEMPLATE.count("<script")  # only the app's own
    got = tags(out)
    assert got["og:title"] == EVIL and got["twitter:title"] == EVIL
    assert got["og:description"] == f"by {EVIL}" and got["description"] == f"by {EVIL}"
    assert got["profile:username"] == EVIL
    assert re.search(r"<title>&quot;&gt;&lt;script&gt;", out)


def test_the_page_is_the_app_with_its_preview() -> None:
    out = page(
        TEMPLATE, Preview("Town hall · Pnyx", "Live now.", "/s/abc"), base_url="https://x.org/"
    )
    got = tags(out)
    assert got["og:url"] == "https://x.org/s/abc"
    assert (got["og:type"], got["og:site_name"], got["twitter:card"]) == (
        "website",
        "Pnyx",
        "summary",
    )
    assert out.count("<title>") == 1 and "<title>Town hall · Pnyx</title>" in out
    body = TEMPLATE.index("<body>")
    assert out[out.index("<body>") :] == TEMPLATE[body:]  # the app itself, untouched
    head = TEMPLATE.index('<meta name="description"')
    assert out[:head] == TEMPLATE[:head]
    assert "og:url" not in page(TEMPLATE, Preview("t", "d", "/s/abc"))  # no base: no og:url


def test_long_or_control_laden_values_are_bounded() -> None:
    out = page(TEMPLATE, Preview("a\x00b\n" + "x" * 1000, "d", "/u/h"))
    title = tags(out)["og:title"]
    assert len(title) == MAX_TITLE and title.endswith("…") and title.startswith("a b x")
