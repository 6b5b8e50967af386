"""Clips of a replay, and deleting a recording, in the web client (Chromium).

The node's clip lengths are not the defaults (``clip_default_s`` 10, ``clip_max_s`` 20),
and the pages take them from the space document: the live space's button says "Clip the
last 10 s" and offers 5 to 20 s. A recorded space's replay is clipped at a chosen point
(the playhead, moved there) and length: the clip starts at the segment holding that
point, ffmpeg decodes it to the length the server states (at least the length chosen, at
most a segment more), and the clip's page plays it with the host's tone. Then the host
deletes the recording from the replay page, through its confirm step (Cancel first):
the replay routes answer 410, the page says the recording was deleted, the space page and
the recent replays no longer offer it, and the clip still plays. Screenshot:
docs/screenshots/replay-host-desktop.png (the host's replay page, the delete confirm open)."""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support import tones
from tests.support.api import create_space, new_user, ok
from tests.support.browser import (
    DESKTOP,
    assert_clean,
    chromiums,
    hearing,
    poll,
    require_browser,
    screenshot,
    sign_in,
    tone_present,
    tone_wav,
)
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.procs import require_binary

pytestmark = pytest.mark.e2e

HOST_HZ = 660
SEGMENT_S = 1.92
RATE = 48_000


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    require_browser()
    settings = {"clip_default_s": "10", "clip_max_s": "20"}
    with pnyx_serve(tmp_path_factory.mktemp("web-replay-clips"), settings=settings) as n:
        yield n


def decoded(data: bytes, folder: Path) -> np.ndarray:
    """The clip as ffmpeg decodes it: mono float samples at 48 kHz (run from a thread with
    Playwright's own event loop, so not tests/e2e/test_clips.py's async one)."""
    path = folder / "clip.m4a"
    path.write_bytes(data)
    done = subprocess.run(
        [require_binary("ffmpeg"), "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le",
         "-ac", "1", "-ar", str(RATE), "-"],
        capture_output=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, b""), done.stderr
    return np.frombuffer(done.stdout, dtype=np.float32)


def segments(node: PnyxProcess, space: str) -> int:
    r = httpx.get(f"{node.url}/media/{space}/live.m3u8", timeout=10)
    return r.text.count("#EXTINF") if r.status_code == 200 else 0


def test_clip_a_replay_at_a_point_and_length_then_delete_it(
    node: PnyxProcess, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    title = f"Replay clips {secrets.token_hex(2)}"
    with httpx.Client(base_url=node.url, timeout=20) as c:
        host_user, fan_user = new_user(c, "replayhost"), new_user(c, "replayfan")
        space = create_space(c, host_user, title=title, record=True)

    with chromiums(node.url, tone_wav(tmp_path / "host.wav", HOST_HZ, seconds=30)) as (browser,):
        host, host_watch = browser.page("host")
        sign_in(host, host_user.handle, host_user.token, f"/s/{space}")
        expect(host.locator("#mic-status")).to_have_text(re.compile("You're live"), timeout=20_000)

        # -- live: the clip button's length is the server's, and can be chosen ---------
        fan, fan_watch = browser.page("fan")
        sign_in(fan, fan_user.handle, fan_user.token, f"/s/{space}")
        button = fan.locator("#clip-button")
        expect(button).to_have_text("✂ Clip the last 10 s")
        options = fan.locator("#clip-length option").all_text_contents()
        assert options == ["5 s", "10 s", "15 s", "20 s"], options
        fan.get_by_label("Length").select_option("15")
        expect(button).to_have_text("✂ Clip the last 15 s")

        # About 15 s recorded, then the space ends.
        poll(lambda: segments(node, space) >= 8, timeout=40, what="eight finished segments")
        # Reads already on their way when the space ends are refused (409).
        fan_watch.expect(r"/v1/spaces/[\w-]+/", r"status of 409")
        host_watch.expect(r"/v1/spaces/[\w-]+/", r"status of 409")
        ok(httpx.post(f"{node.url}/v1/spaces/{space}/end", headers=host_user.auth, timeout=10))
        poll(
            lambda: (
                httpx.get(f"{node.url}/media/{space}/replay.m3u8", timeout=10).status_code == 200
            ),
            what="the replay playlist",
        )

        # -- the replay: clip 5 s from a point in the middle -------------------------------
        fan.goto(f"/replay/{space}")
        clip_button = fan.locator("#replay-clip-button")
        expect(clip_button).to_have_text("✂ Clip 10 s from 0:00")  # the server's default
        fan.get_by_role("button", name="Play the recording").click()
        poll(
            lambda: fan.evaluate("() => window.pnyx?.replay?.currentTime ?? 0") > 0.5,
            what="the replay plays",
        )
        fan.locator("audio.replay-audio").evaluate("(a) => { a.pause(); a.currentTime = 6.5; }")
        poll(
            lambda: abs(fan.evaluate("() => window.pnyx.replay.currentTime") - 6.5) < 0.05,
            what="the playhead at 6.5 s",
        )
        fan.get_by_label("Length").select_option("5")
        expect(clip_button).to_have_text("✂ Clip 5 s from 0:06")
        at = fan.evaluate("() => window.pnyx.replay.currentTime")
        clip_button.click()
        link = fan.locator("#replay-clip-link")
        expect(link).to_be_visible(timeout=20_000)
        clip_id = (link.get_attribute("href") or "").rsplit("/", 1)[-1]
        with httpx.Client(base_url=node.url, timeout=20) as c:
            clip = ok(c.get(f"/v1/clips/{clip_id}"))
            media = c.get(clip["links"]["media"])
        assert clip["space"] == space and clip["creator"] == fan_user.handle
        # Cut at segment boundaries: from the segment holding the playhead.
        assert at - SEGMENT_S - 0.01 <= clip["start_s"] <= at + 0.01, (at, clip)
        assert 5 <= clip["duration"] < 5 + SEGMENT_S + 0.01, clip
        samples = decoded(media.content, tmp_path)
        assert abs(len(samples) / RATE - clip["duration"]) < 0.1, (len(samples) / RATE, clip)
        level = tones.tone_levels(samples[4096:], (float(HOST_HZ),))[float(HOST_HZ)]
        assert level.present(), tones.describe(samples[4096:], (float(HOST_HZ),))
        # The clip's page plays it, and its player knows the same length.
        link.click()
        expect(fan.get_by_role("heading", name=title)).to_be_visible()
        fan.locator("#clip-audio").evaluate("(a) => a.play()")
        poll(
            lambda: fan.evaluate("() => window.pnyx?.clip?.currentTime ?? 0") > 1,
            what="the clip plays",
        )
        poll(
            lambda: tone_present(hearing(fan, [HOST_HZ], view="clip"), HOST_HZ),
            what="the clip carries the host's tone",
        )
        shown = fan.evaluate("() => window.pnyx.clip.duration")
        assert abs(shown - clip["duration"]) < 0.1, (shown, clip["duration"])

        # -- the host deletes the recording, through the confirm step ----------------------
        host.goto(f"/replay/{space}")
        delete = host.get_by_role("button", name="Delete recording")
        confirm = host.locator("#delete-recording-confirm")
        expect(confirm).to_be_hidden()
        delete.click()
        expect(confirm).to_be_visible()
        screenshot(host, "replay-host-desktop", DESKTOP)
        confirm.get_by_role("button", name="Cancel").click()
        expect(confirm).to_be_hidden()
        replay_url = f"{node.url}/media/{space}/replay.m3u8"
        assert httpx.get(replay_url, timeout=10).status_code == 200  # nothing happened
        delete.click()
        confirm.get_by_role("button", name="Yes, delete it").click()
        expect(host.locator("#no-replay")).to_contain_text("You deleted the recording")
        expect(host.locator("audio.replay-audio")).to_have_count(0)
        assert httpx.get(replay_url, timeout=10).status_code == 410

        # Anyone's replay page says so; the space page and home offer no replay.
        fan.goto(f"/replay/{space}")
        expect(fan.locator("#no-replay")).to_contain_text("The host deleted the recording")
        expect(fan.locator("#replay-clip-button")).to_have_count(0)
        fan.goto(f"/s/{space}")
        expect(fan.locator("#space-banner")).to_be_visible()
        expect(fan.locator("#space-banner")).not_to_contain_text("Listen to the replay")
        fan.goto("/")
        replays = fan.locator("#recent-replays")
        expect(replays).not_to_have_attribute("aria-busy", "true")  # loaded
        expect(replays).not_to_contain_text(title)
        # The clip stays.
        again = httpx.get(f"{node.url}{clip['links']['media']}", timeout=10)
        assert again.status_code == 200 and again.content == media.content
    assert_clean(host_watch, fan_watch)
