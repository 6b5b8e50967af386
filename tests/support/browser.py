"""Real Chromium for the web client's end-to-end tests.

Debian's ``/usr/bin/chromium`` driven by Playwright for Python (never a downloaded
browser), headless, with a fake microphone that plays a generated tone file. Every page
is watched: a JavaScript error, a ``console.error``, or a failed request the test did not
expect fails the test, and so does any Content-Security-Policy violation (a
``securitypolicyviolation`` listener installed before the page's own scripts records
each in :attr:`Watch.violations`; tests/e2e/conftest.py fails every test that saw one).
Each page also keeps its last console lines (the web client logs its publisher's status
changes with ``console.debug``); a failing test prints them.
"""

from __future__ import annotations

import re
import shutil
import time
import wave
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.poll import wait_until
from tests.support.procs import IN_CI

CHROMIUM = "/usr/bin/chromium"
WEB_DIR = Path(__file__).resolve().parents[2] / "src" / "pnyx" / "web"
HLS_JS = WEB_DIR / "vendor" / "hls.esm.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

# Flags that work here as root (see the machine notes): no sandbox, no GPU, nothing
# phoning home, autoplay allowed, and a fake microphone reading a WAV file.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    # WebRTC between the browser and the server stays on this machine's loopback.
    "--allow-loopback-in-peer-connection",
]


def require_browser() -> None:
    """Chromium, Playwright and the vendored hls.js must be there. Missing: skip
    locally, fail under CI=true (CI must never pass by skipping what it tests)."""
    missing = []
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        missing.append("chromium (make test installs it via apt)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[dev]')")
    if not HLS_JS.exists():
        missing.append(f"{HLS_JS} (make install runs npm ci and copies hls.js there)")
    elif b"X-TIMESTAMP-MAP" not in HLS_JS.read_bytes():
        # The light build (no WebVTT parser) plays, but shows no captions: an older install.
        missing.append(f"the full hls.js build at {HLS_JS} (make install copies it there)")
    if missing:
        msg = "the browser tests need " + ", ".join(missing)
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


def tone_wav(path: Path, freq: float, *, seconds: float = 4.0, amplitude: float = 0.3) -> Path:
    """A mono 48 kHz 16-bit WAV of a sine with a whole number of cycles (it loops
    seamlessly: Chromium plays the fake microphone's file over and over)."""
    rate = 48_000
    n = int(rate * seconds)
    cycles = round(freq * seconds)
    t = np.arange(n, dtype=np.float64) / n
    samples = amplitude * np.sin(2 * np.pi * cycles * t)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


@dataclass
class Expected:
    """A failed request the test provokes on purpose: the browser logs it as a console
    error ("Failed to load resource: … status of 429"), which is then not a failure."""

    url: re.Pattern[str]
    text: re.Pattern[str]


# Runs in every document of a watched page before its scripts: each CSP violation is
# logged with this prefix, which Watch.on_console records apart from other errors.
CSP_PREFIX = "CSP violation:"
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP_PREFIX ${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at `
    + `${e.sourceFile || document.location.href}:${e.lineNumber} (${e.disposition})`);
});
""".replace("CSP_PREFIX", CSP_PREFIX)


@dataclass
class Watch:
    """Console errors, page errors and CSP violations of one page."""

    name: str
    errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    expected: list[Expected] = field(default_factory=list)
    trail: deque[str] = field(default_factory=lambda: deque(maxlen=TRAIL_LINES))

    def expect(self, url: str, text: str = r"Failed to load resource") -> None:
        self.expected.append(Expected(re.compile(url), re.compile(text)))

    def on_console(self, msg: Any) -> None:
        self.trail.append(f"{time.monotonic():.3f} {msg.type}: {msg.text}")
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        text = msg.text
        if text.startswith(CSP_PREFIX) or "Content Security Policy" in text:
            self.violations.append(text)  # never expected: no test provokes one
        for e in self.expected:
            if e.text.search(text) and e.url.search(where):
                return
        self.errors.append(f"console.error at {where}: {text}")

    def on_page_error(self, exc: Any) -> None:
        self.errors.append(f"uncaught: {exc}")


TRAIL_LINES = 200
WATCHES: list[Watch] = []  # every page's watch since the last console_trails()


def csp_violations() -> list[str]:
    """Every CSP violation seen by the pages watched since the last console_trails()."""
    return [f"[{w.name}] {v}" for w in WATCHES for v in w.violations]


def console_trails() -> str:
    """The console lines of every page watched since the last call (then forgotten)."""
    out = [f"--- console of page {w.name!r} ---\n" + "\n".join(w.trail) for w in WATCHES]
    WATCHES.clear()
    return "\n".join(out)


@dataclass
class Browser:
    """One Chromium process (its own fake microphone); pages in fresh contexts."""

    pw_browser: Any
    base_url: str
    watches: list[Watch] = field(default_factory=list)

    def page(
        self, name: str, *, viewport: dict[str, int] | None = None, voice_processing: bool = True
    ) -> tuple[Any, Watch]:
        """A page in a fresh context. ``voice_processing=False`` sets the speaker's
        microphone preference (echo cancellation, noise suppression, gain control) off
        before the page loads: a measuring speaker wants its tone as it is, and an echo
        canceller still adapting leaks a little of what it plays (the others' tones) into
        what it sends for its first seconds."""
        context = self.pw_browser.new_context(
            base_url=self.base_url,
            viewport=viewport or DESKTOP,
            permissions=["microphone"],
            reduced_motion="reduce",
        )
        context.set_default_timeout(15_000)
        if not voice_processing:
            context.add_init_script("localStorage.setItem('pnyx.voiceProcessing', 'off')")
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        watch = Watch(name)
        page.on("console", watch.on_console)
        page.on("pageerror", watch.on_page_error)
        self.watches.append(watch)
        WATCHES.append(watch)
        return page, watch


@contextmanager
def chromiums(base_url: str, *tones: Path, args: Sequence[str] = ()) -> Iterator[list[Browser]]:
    """One Chromium per tone file (the fake microphone is per process), under one
    Playwright driver; ``args``: more command-line flags for each."""
    from playwright.sync_api import expect, sync_playwright

    # Other engineers' audio tests share these two cores: give page assertions room.
    expect.set_options(timeout=15_000)
    with sync_playwright() as pw:
        launched: list[Any] = []
        try:
            for tone in tones:
                launched.append(
                    pw.chromium.launch(
                        executable_path=CHROMIUM,
                        headless=True,
                        args=[*FLAGS, *args, f"--use-file-for-fake-audio-capture={tone}"],
                    )
                )
            yield [Browser(b, base_url) for b in launched]
        finally:
            for b in launched:
                b.close()


def assert_clean(*watches: Watch) -> None:
    problems = [f"[{w.name}] {e}" for w in watches for e in w.errors]
    assert not problems, "console errors:\n" + "\n".join(problems)


def poll(
    check: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.25, what: str = ""
) -> Any:
    """``poll.wait_until`` at a page's pace (every quarter second, for 20 s): call
    ``check`` until it returns something truthy and return that, or fail with the last
    value seen."""
    return wait_until(check, timeout, what or repr(check), interval=interval)


def hearing(page: Any, freqs: list[int], view: str = "space") -> dict[str, Any] | None:
    """What the page plays right now (the space, a speaker's mix-minus, or a replay):
    magnitude in dB at each frequency, the median (noise floor) and the overall level,
    from the page's own WebAudio analyser."""
    result: dict[str, Any] | None = page.evaluate(
        "([freqs, view]) => window.pnyx?.[view] ? window.pnyx[view].hearing(freqs) : null",
        [freqs, view],
    )
    return result


# Tone levels, in the dB of the page's AnalyserNode (a 4096-point FFT, Blackman window,
# 0 dB = full scale). A 0.3-amplitude tone through Opus or AAC and the mixer reads about
# -20 to -45 dB; a tone the path does not carry reads 55 dB or more below the one it
# does (window leakage, codec noise, and the residue of the speaker's own echo
# canceller, which sees the mix-minus it plays as the echo reference).
PRESENT_DB = -60.0  # at least this loud...
PRESENT_SNR_DB = 30.0  # ...and this far above the median of the speech band
ABSENT_BELOW_DB = 40.0  # absent: this far below the tone that is there (inaudible next to it)


def tone_present(h: dict[str, Any] | None, freq: int) -> bool:
    if not h:
        return False
    level = h["at"][str(freq)]
    return bool(level >= PRESENT_DB and level - h["floor"] >= PRESENT_SNR_DB)


def tone_absent(h: dict[str, Any], freq: int, *, beside: int) -> bool:
    """``freq`` is not heard next to ``beside`` (which is)."""
    return bool(h["at"][str(freq)] <= h["at"][str(beside)] - ABSENT_BELOW_DB)


class Heard(dict[str, Any]):
    """A ``hearing`` result that is true only when it showed what was asked (and still
    prints what it heard when it did not)."""

    ok = False

    def __bool__(self) -> bool:
        return self.ok


def hears_only(page: Any, present: int, absent: int, *, source: str, view: str = "space") -> Heard:
    """What the page plays, true if it carries ``present`` and not ``absent``, coming
    from ``source`` ("hls", "mix-minus" or "replay")."""
    raw = hearing(page, [present, absent], view)
    heard = Heard(raw or {})
    heard.ok = bool(
        raw
        and raw["source"] == source
        and tone_present(raw, present)
        and tone_absent(raw, absent, beside=present)
    )
    return heard


def settles(check: Callable[[], Any], *, what: str, timeout: float = 20.0) -> None:
    """``check`` comes true within ``timeout`` and stays true for five samples in a row
    (a second): a steady state, not one lucky analyser frame. Audio runs a little
    behind the state: right after a change (a speaker added or moved back) what plays
    may still be from before it."""
    deadline = time.monotonic() + timeout
    streak = 0
    last: Any = None
    while streak < 5:
        last = check()
        streak = streak + 1 if last else 0
        if streak < 5 and time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(0.2)


def screenshot(page: Any, name: str, viewport: dict[str, int]) -> Path:
    """Save a screenshot of the page at ``viewport`` size in docs/screenshots/ (without
    the transient toasts, which would cover part of a full-page picture)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(viewport)
    page.evaluate("document.getElementById('toasts')?.replaceChildren()")
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def sign_in(page: Any, handle: str, token: str, path: str) -> None:
    """Open ``path`` signed in as ``handle`` (the session the page keeps after signing
    in, set directly: the sign-in form itself is tested once, not before every test)."""
    page.goto("/web/icon.svg")  # any page of the origin, without starting the app
    page.evaluate(
        "(s) => localStorage.setItem('pnyx.session', JSON.stringify(s))",
        {"handle": handle, "token": token},
    )
    page.goto(path)
