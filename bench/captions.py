"""Live captions: how late, how right, and what they cost, with 1 and with 4 captioned
spaces on one ``pnyx serve`` (production defaults: the bundled tiny.en, int8, one thread).

    .venv/bin/python bench/captions.py [--plays 4] [--spaces 1 4]

Each space has one aiortc speaker saying the same known sentences (espeak-ng, 140 words a
minute) ``--plays`` times with 2 s between. The bench reads each space's subtitles
rendition as a player would (``captions.m3u8`` and every new ``vtt/{msn}.vtt``, every
100 ms) and reports:

* **caption delay**: when a cue was first readable at the origin minus when its speech
  was in the program (the segment clock: ``PROGRAM-DATE-TIME`` of segment 0 plus the
  cue's start); the speaker → mix path adds about 0.1-0.2 s before that;
* **word error** of everything captioned against the text said;
* **CPU per captioned space**: the server process's CPU (utime + stime, /proc) with the
  same spaces and speakers, captions on minus captions off, divided by the spaces;
* the mix clock's **tick lateness** p99 with captions on and off (from /metrics).

Goals (issue 15): delay p95 ≤ 4 s, word error ≤ 10 % on clean speech, ≤ 0.15 of a core
per space, tick lateness unchanged. Bounded: each run is plays x 11 s + ~15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from latency_support import Account, account, cpu_seconds, machine, pnyx_node, speech, webrtc
from pnyx.loadtest.stats import percentile
from stage_cpu import delta, histogram_quantile, scrape

SENTENCES, SpeechTrack, say, word_error = (
    speech.SENTENCES,
    speech.SpeechTrack,
    speech.say,
    speech.word_error,
)

TEXT = " ".join(SENTENCES)
GAP_S = 2.0
TAIL_S = 6.0  # after the last play: the last windows reach the origin
GOAL_DELAY_P95_S = 4.0
GOAL_WER = 0.10
GOAL_CORES = 0.15
_PDT = re.compile(r"#EXT-X-PROGRAM-DATE-TIME:(\S+)")


@dataclass
class Reader:
    """One space's subtitles, read like a player: cues and when each was first seen."""

    space: str
    pdt0: float | None = None  # wall time of media time 0 (segment 0's date)
    seen_files: set[str] = field(default_factory=set)
    cues: dict[float, tuple[str, float]] = field(default_factory=dict)  # start → text, seen

    async def poll(self, client: httpx.AsyncClient, base: str) -> None:
        r = await client.get(f"{base}/media/{self.space}/captions.m3u8")
        if r.status_code != 200:
            return
        lines = r.text.splitlines()
        if self.pdt0 is None and "#EXT-X-MEDIA-SEQUENCE:0" in lines:
            first = _PDT.search(r.text)
            if first:
                self.pdt0 = datetime.fromisoformat(first[1].replace("Z", "+00:00")).timestamp()
        for uri in [ln for ln in lines if ln.startswith("vtt/")]:
            if uri in self.seen_files:
                continue
            got = await client.get(f"{base}/media/{self.space}/{uri}")
            if got.status_code != 200:
                continue
            now = time.time()
            self.seen_files.add(uri)
            body = got.text.splitlines()
            for i, line in enumerate(body[:-1]):
                if "-->" in line:
                    start = _seconds(line.split("-->")[0].strip())
                    self.cues.setdefault(start, (body[i + 1].split(": ", 1)[-1], now))

    def delays(self) -> list[float]:
        if self.pdt0 is None:
            return []
        return [seen - (self.pdt0 + start) for start, (_, seen) in self.cues.items()]

    def text(self) -> str:
        return " ".join(text for _, (text, _) in sorted(self.cues.items()))


def _seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


@dataclass
class Run:
    spaces: int
    captions: bool
    cpu_cores: float
    lateness_p99: str
    delays: list[float]
    wer: float


def make_spaces(url: str, spaces: int) -> tuple[list[Account], list[str]]:
    """A live space per host (one account hosts one)."""
    hosts: list[Account] = []
    ids: list[str] = []
    with httpx.Client(base_url=url, timeout=30) as c:
        for i in range(spaces):
            host = account(c, f"caption_host_{i}")
            r = c.post("/v1/spaces", json={"title": f"captions {i}"}, headers=host.auth)
            r.raise_for_status()
            hosts.append(host)
            ids.append(r.json()["id"])
    return hosts, ids


async def run(
    spaces: int, captions: bool, plays: int, speech_folder: Path, extra: dict[str, str]
) -> Run:
    speech = say(TEXT, speech_folder)
    play_s = len(speech) / 48_000 + GAP_S
    settings = {"captions_default": "true" if captions else "false", **extra}
    with pnyx_node(env_settings=settings) as node:
        hosts, ids = await asyncio.to_thread(make_spaces, node.url, spaces)
        speakers = []
        try:
            for host, space in zip(hosts, ids, strict=True):
                track = SpeechTrack(speech, gap_s=GAP_S, repeat=plays)
                speakers.append(await webrtc.publish(node.url, space, host.token, track))
            for s in speakers:
                await s.connected(within=30)
            readers = [Reader(space) for space in ids]
            cpu0, m0, t0 = cpu_seconds(node.pid), scrape(node.url), time.monotonic()
            deadline = t0 + plays * play_s + TAIL_S
            async with httpx.AsyncClient(timeout=10) as client:
                while time.monotonic() < deadline:
                    await asyncio.gather(*(r.poll(client, node.url) for r in readers))
                    await asyncio.sleep(0.1)
            cpu = (cpu_seconds(node.pid) - cpu0) / (time.monotonic() - t0)
            d = delta(scrape(node.url), m0)
        finally:
            await asyncio.gather(*(s.close() for s in speakers), return_exceptions=True)
        delays = [x for r in readers for x in r.delays()]
        wer = (
            sum(word_error(" ".join([TEXT] * plays), r.text()) for r in readers) / len(readers)
            if captions
            else float("nan")
        )
        return Run(
            spaces,
            captions,
            cpu,
            histogram_quantile(d, "pnyx_media_tick_lateness_seconds", 0.99),
            delays,
            wer,
        )


async def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--plays", type=int, default=4, help="times each speaker says the text")
    ap.add_argument("--spaces", type=int, nargs="+", default=[1, 4])
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="node settings, e.g. captions_window_s=2.5",
    )
    args = ap.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    print(f"machine: {machine()}")
    print(f"text: {len(TEXT.split())} words, said {args.plays} times per space")
    print(f"settings: {extra or 'the defaults'}\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="pnyx-captions-") as tmp:
        for n in args.spaces:
            off = await run(n, False, args.plays, Path(tmp), extra)
            on = await run(n, True, args.plays, Path(tmp), extra)
            rows.append((n, off, on))
    print(
        "| captioned spaces | cues | delay p50 | delay p95 | word error | server CPU off → on "
        "| per space | tick lateness p99 off / on |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n, off, on in rows:
        per_space = (on.cpu_cores - off.cpu_cores) / n
        p50 = percentile(on.delays, 0.5) if on.delays else float("nan")
        p95 = percentile(on.delays, 0.95) if on.delays else float("nan")
        print(
            f"| {n} | {len(on.delays)} | {p50:.2f} s | {p95:.2f} s | {on.wer * 100:.1f} % "
            f"| {off.cpu_cores:.2f} → {on.cpu_cores:.2f} cores | {per_space:.3f} cores "
            f"| {off.lateness_p99} / {on.lateness_p99} |"
        )
    print(
        f"\ngoals: delay p95 ≤ {GOAL_DELAY_P95_S:g} s, word error ≤ {GOAL_WER * 100:g} %, "
        f"≤ {GOAL_CORES:g} of a core per captioned space"
    )


if __name__ == "__main__":
    asyncio.run(main())
