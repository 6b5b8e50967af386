"""Live captions and transcripts in the web client (Chromium), against a real node that
recognises real speech: the host publishes words spoken by espeak-ng over WebRTC (an
aiortc speaker, tests/support/speech.py) and the node's recogniser captions them.

- The new space form asks for live captions (ticked at first).
- The captions box itself (js/captions.js, in the page): a late cue still shows, for a
  while past its end; at most three lines; each cue is announced once to screen readers,
  however often the box is drawn; off hides and forgets everything.
- A listener turns captions on with CC and reads the spoken words under the player, with
  the speaker's display name; off hides them and the player stops fetching them; the
  choice is remembered across a reload. Screenshot: docs/screenshots/captions-desktop.png.
- The replay of a recorded, captioned space lists its transcript; a click on a line plays
  the recording from that line. Screenshot: docs/screenshots/replay-transcript-desktop.png.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests.support.api import User, create_space, new_user, ok
from tests.support.browser import (
    DESKTOP,
    assert_clean,
    chromiums,
    poll,
    require_browser,
    screenshot,
    sign_in,
    tone_wav,
)
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.speech import say, speaking

pytestmark = pytest.mark.e2e

SAID = "Welcome to the garden party. The weather is lovely today, and the music is wonderful."
WORDS = {"welcome", "garden", "party", "weather", "lovely", "today", "music", "wonderful"}
HOST_NAME = "Garden Host"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    with pnyx_serve(tmp_path_factory.mktemp("web-captions")) as n:
        yield n


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> npt.NDArray[np.float32]:
    return say(SAID, tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The browser's fake microphone (a listener never uses it)."""
    return tone_wav(tmp_path_factory.mktemp("quiet") / "quiet.wav", 440, seconds=1)


def words_in(text: str) -> set[str]:
    return WORDS & set(re.findall(r"[a-z]+", text.lower()))


def named_host(c: httpx.Client) -> User:
    host = new_user(c, "gardener")
    ok(c.patch("/v1/account", json={"display_name": HOST_NAME}, headers=host.auth))
    return host


CAPTIONS_LOGIC = """async () => {
  const m = await import("/web/js/captions.js");
  const c = new m.Captions({ nameOf: (handle) => (handle === "ann" ? "Ann Bee" : null) });
  document.body.append(c.el);
  const lines = () => [...c.lines.querySelectorAll(".caption")].map((p) => p.textContent);
  const log = () => [...c.log.children].map((p) => p.textContent);
  const out = {
    text: m.cueText("<v Bob>Fish &amp; chips &lt;3</v>"),
    split: [m.splitSpeaker("@Ann_B: hello there"), m.splitSpeaker("no speaker: here")],
    hiddenAtFirst: c.el.hidden,
  };
  c.setOn(true);
  out.shownWhenOn = !c.el.hidden;
  // Arrives 4 s after its end (recognition is slow): shown, until 3 s past its arrival.
  c.add([{ start: 10, end: 12, text: "@ann: late words" }], 16);
  out.late = lines();
  c.render(18.9);
  out.lateStill = lines();
  c.render(19.1);
  out.lateGone = lines();
  // Not yet reached: not shown, not announced; then shown once reached.
  c.add([{ start: 30, end: 31, text: "@bob: early" }], 29);
  out.early = [lines(), log().length];
  c.render(30);
  out.reached = lines();
  // Five at once: the last three show; each is announced once, however often drawn.
  c.add([1, 2, 3, 4, 5].map((i) => ({ start: 40 + i / 10, end: 41, text: `line ${i}` })), 41);
  c.add([{ start: 40.1, end: 41, text: "line 1" }], 41); // the same cue again
  for (let t = 41; t < 42; t += 0.1) c.render(t);
  out.capped = lines();
  out.log = log();
  // Long past: forgotten, and not taken again when handed over again (native HLS re-reads).
  c.render(200);
  c.add([{ start: 10, end: 12, text: "@ann: late words" }], 200);
  c.render(200);
  out.forgotten = [c.cues.length, lines().length, log().length];
  out.logRole = [c.log.getAttribute("role"), c.log.getAttribute("aria-live")];
  out.boxHidden = c.lines.getAttribute("aria-hidden");
  c.setOn(false);
  out.off = [c.el.hidden, lines().length, log().length, c.cues.length];
  return out;
}"""


def test_captions_box_logic(node: PnyxProcess, quiet: Path) -> None:
    with chromiums(node.url, quiet) as (browser,):
        page, watch = browser.page("logic")
        page.goto("/")
        out: dict[str, Any] = page.evaluate(CAPTIONS_LOGIC)
    assert out["text"] == "Fish & chips <3"
    assert out["split"] == [
        {"handle": "ann_b", "words": "hello there"},
        {"handle": None, "words": "no speaker: here"},
    ]
    assert out["hiddenAtFirst"] and out["shownWhenOn"]
    assert out["late"] == ["Ann Beelate words"]  # name and words in separate spans
    assert out["lateStill"] == out["late"]
    assert out["lateGone"] == []
    assert out["early"] == [[], 1]  # only the late cue announced so far
    assert out["reached"] == ["@bobearly"]
    assert out["capped"] == ["line 3", "line 4", "line 5"]
    assert out["log"] == [
        "Ann Bee: late words",
        "@bob: early",
        "line 1",
        "line 2",
        "line 3",
        "line 4",
        "line 5",
    ]
    assert out["forgotten"] == [0, 0, 7]
    assert out["logRole"] == ["log", "polite"]
    assert out["boxHidden"] == "true"  # read through the log only
    assert out["off"] == [True, 0, 0, 0]
    assert_clean(watch)


def test_the_new_space_form_asks_for_captions(node: PnyxProcess, quiet: Path) -> None:
    """ "Live captions" is ticked at first and sent as ``captions`` either way."""
    from playwright.sync_api import expect

    with httpx.Client(base_url=node.url, timeout=20) as c:
        host = new_user(c, "former")
    later = (datetime.now(UTC).astimezone() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    made = {}
    with chromiums(node.url, quiet) as (browser,):
        page, watch = browser.page("host")
        for captioned in (True, False):
            sign_in(page, host.handle, host.token, "/new")
            box = page.get_by_label("Live captions")
            expect(box).to_be_checked()
            if not captioned:
                box.uncheck()
            page.get_by_label("Title").fill(f"Talk captioned={captioned}")
            page.get_by_label("Later, at").check()  # scheduled: no media for this test
            page.get_by_label("Start time").fill(later)
            page.get_by_role("button", name="Schedule").click()
            page.wait_for_url(re.compile(r"/s/[\w-]+$"))
            made[captioned] = page.url.rsplit("/", 1)[-1]
            expect(page.locator("#space-badge")).to_have_text("Scheduled")
    with httpx.Client(base_url=node.url, timeout=20) as c:
        for captioned, space in made.items():
            assert ok(c.get(f"/v1/spaces/{space}"))["captions"] is captioned
    assert_clean(watch)


def test_live_captions_under_the_player(
    node: PnyxProcess, speech: npt.NDArray[np.float32], quiet: Path
) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=node.url, timeout=20) as c:
        host = named_host(c)
        space = create_space(c, host, title=f"Garden party {secrets.token_hex(2)}", captions=True)
        assert ok(c.get(f"/v1/spaces/{space}"))["captions"] is True

    with (
        speaking(node.url, space, host.token, speech),
        chromiums(node.url, quiet) as (browser,),
    ):
        page, watch = browser.page("listener")
        page.goto(f"/s/{space}")
        cc = page.locator("#cc-button")
        box = page.locator("#captions")
        expect(cc).to_be_visible()
        expect(cc).to_have_attribute("aria-pressed", "false")  # off until asked for
        expect(box).to_be_hidden()

        page.get_by_role("button", name="Play the space").click()
        cc.click()
        expect(cc).to_have_attribute("aria-pressed", "true")
        expect(box).to_be_visible()
        lines = page.locator("#captions-lines")
        heard = poll(
            lambda: len(words_in(lines.inner_text())) >= 2 and lines.inner_text(),
            timeout=60,
            what="two of the spoken words under the player",
        )
        # The speaker's display name, apart from the words.
        expect(page.locator("#captions-lines .caption-speaker").first).to_have_text(HOST_NAME)
        assert words_in(page.locator("#captions-log").inner_text()), heard
        screenshot(page, "captions-desktop", DESKTOP)

        # Off: hidden, and the player no longer fetches the captions.
        cc.click()
        expect(cc).to_have_attribute("aria-pressed", "false")
        expect(box).to_be_hidden()
        assert page.evaluate("() => window.pnyx.space.captions") == {
            "on": False,
            "subtitleTrack": -1,
            "cues": 0,
        }

        # Remembered across a reload: off stays off...
        page.reload()
        expect(cc).to_be_visible()
        expect(cc).to_have_attribute("aria-pressed", "false")
        expect(box).to_be_hidden()
        # ...and on stays on, the cues coming back once it plays.
        cc.click()
        page.reload()
        expect(cc).to_have_attribute("aria-pressed", "true")
        expect(box).to_be_visible()
        page.get_by_role("button", name="Play the space").click()
        poll(
            lambda: words_in(page.locator("#captions-lines").inner_text()),
            timeout=60,
            what="captions again after the reload",
        )
    assert_clean(watch)


def test_replay_transcript_seeks(
    node: PnyxProcess, speech: npt.NDArray[np.float32], quiet: Path
) -> None:
    from playwright.sync_api import expect

    with httpx.Client(base_url=node.url, timeout=20) as c:
        host = named_host(c)
        title = f"Garden replay {secrets.token_hex(2)}"
        space = create_space(c, host, title=title, captions=True, record=True)
        with speaking(node.url, space, host.token, speech):
            poll(
                lambda: len(ok(c.get(f"/v1/spaces/{space}/transcript"))["cues"]) >= 3,
                timeout=90,
                what="three cues in the live transcript",
            )
        ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth))
        transcript = poll(
            lambda: (t := ok(c.get(f"/v1/spaces/{space}/transcript")))["complete"] and t,
            timeout=60,
            what="the finished transcript",
        )
        poll(
            lambda: c.get(f"/media/{space}/replay.m3u8").status_code == 200,
            timeout=30,
            what="the replay playlist",
        )
    cues = transcript["cues"]
    assert words_in(" ".join(cue["text"] for cue in cues)), cues

    with chromiums(node.url, quiet) as (browser,):
        page, watch = browser.page("replay")
        sign_in(page, host.handle, host.token, f"/replay/{space}")  # the host: figures too
        panel = page.locator("#transcript-panel")
        expect(panel).to_be_visible()
        rows = page.locator("#transcript-lines li")
        expect(rows).to_have_count(len(cues))
        expect(rows.first.locator(".transcript-text")).to_have_text(cues[0]["text"])
        if cues[0]["speaker"]:
            expect(rows.first.locator(".transcript-speaker")).to_have_text(HOST_NAME)
        expect(page.locator("#transcript-vtt")).to_have_attribute(
            "href", f"/v1/spaces/{space}/transcript.vtt"
        )
        expect(page.locator("#transcript-txt")).to_have_attribute(
            "href", f"/v1/spaces/{space}/transcript.txt"
        )

        # A click on a line plays the recording from there, and that line is the current one.
        target = len(cues) - 1
        start = cues[target]["start"]
        rows.nth(target).get_by_role("button").click()
        poll(
            lambda: (
                (t := page.evaluate("() => window.pnyx.replay.currentTime")) >= start
                and t < start + 5
                and page.evaluate("() => window.pnyx.replay.playerStatus") == "playing"
            ),
            timeout=30,
            what=f"the replay playing from {start:.2f} s",
        )
        expect(rows.nth(target)).to_have_class(re.compile(r"\bis-current\b"))
        expect(rows.nth(target).get_by_role("button")).to_have_attribute("aria-current", "true")
        # Another line, while it plays: it jumps back.
        first = cues[0]["start"]
        rows.first.get_by_role("button").click()
        poll(
            lambda: first <= page.evaluate("() => window.pnyx.replay.currentTime") < first + 5,
            timeout=20,
            what=f"the replay back at {first:.2f} s",
        )
        expect(rows.first).to_have_class(re.compile(r"\bis-current\b"))
        screenshot(page, "replay-transcript-desktop", DESKTOP)

        # The downloads answer with the transcript.
        for suffix, kind in ((".vtt", "text/vtt"), (".txt", "text/plain")):
            r = httpx.get(f"{node.url}/v1/spaces/{space}/transcript{suffix}", timeout=10)
            assert r.status_code == 200 and r.headers["content-type"].startswith(kind), r

        # A space without captions: no transcript section.
        with httpx.Client(base_url=node.url, timeout=20) as c:
            plain = create_space(c, host, title="Uncaptioned", captions=False, record=True)
            ok(c.post(f"/v1/spaces/{plain}/end", headers=host.auth))
        page.goto(f"/replay/{plain}")
        expect(page.get_by_role("heading", name="Replay: Uncaptioned")).to_be_visible()
        expect(page.locator("#transcript-panel")).to_be_hidden()
    assert_clean(watch)
