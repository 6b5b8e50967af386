"""Playlist delta updates (``_HLS_skip``) through the edge: the bytes of a playlist, and
the requests and bytes per low-latency listener per second, whole reloads against deltas.

One deployment as an operator runs it (bench/scale_support.py's ``deployment``: Redis,
one ``pnyx serve`` with production settings — 0.128 s parts, the 10-segment live window —
the edge ``pnyx edge-config`` writes, nginx and the Varnish behind it, and a space whose
host publishes a tone). After ``--warmup`` seconds (the live window full):

* **per playlist**: ``--samples`` blocking reloads of ``live.m3u8`` for the next part
  through the edge, each followed at once by the same reload with ``_HLS_skip=YES``,
  the body bytes of each (a pair whose answers list different parts — a part was made
  in between — is left out and counted);
* **per listener**: for each mode (whole, delta) in turn, ``--listeners`` player-like
  listeners (tests/support/hls.py's ``HlsListener``, a blocking reload for every part,
  then the part; ``delta=True`` asks for delta updates) follow the space through the
  edge for ``--seconds``; their requests and body bytes per second (playlists, parts),
  and whether each heard the tone (its parts decoded).

Bytes are bodies (unzipped), and for the whole playlist also as a client that takes gzip
receives it (playlists travel gzipped: the node zips them, the edge keeps that copy);
each response adds ~250 bytes of headers.

    .venv/bin/python bench/playlist_delta.py
    .venv/bin/python bench/playlist_delta.py --listeners 10 --seconds 30 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from latency_support import hls, machine, tones
from scale_support import deployment

TONE_HZ = 440.0  # what scale_support's deployment publishes
PLAIN = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}


async def per_playlist(edge_url: str, space: str, samples: int) -> dict[str, Any]:
    url = f"{edge_url}/media/{space}/live.m3u8"
    full_sizes, delta_sizes, skipped, gzipped = [], [], [], []
    apart = 0
    async with httpx.AsyncClient(timeout=20) as c:
        pl = hls.parse_playlist((await c.get(url)).text)
        for _ in range(samples):
            msn, part = pl.next_msn, len(pl.open_parts)
            args = {"_HLS_msn": msn, "_HLS_part": part}
            full = await c.get(url, params=args, headers=PLAIN)
            delta = await c.get(url, params={**args, "_HLS_skip": "YES"}, headers=PLAIN)
            zipped = await c.get(url, params=args, headers=GZIP)  # as a browser takes it
            for r in (full, delta, zipped):
                r.raise_for_status()
            pl = hls.parse_playlist(full.text)
            d = hls.parse_playlist(delta.text)
            z = hls.parse_playlist(zipped.text)
            if (d.next_msn, d.open_parts) != (pl.next_msn, pl.open_parts) or z.text != pl.text:
                apart += 1
                continue
            assert zipped.headers.get("content-encoding") == "gzip", zipped.headers
            full_sizes.append(len(full.content))
            gzipped.append(zipped.num_bytes_downloaded)  # the body bytes on the wire
            delta_sizes.append(len(delta.content))
            skipped.append(d.skipped_segments)
    return {
        "samples": len(full_sizes),
        "pairs_apart": apart,
        "full_bytes_median": statistics.median(full_sizes),
        "delta_bytes_median": statistics.median(delta_sizes),
        "full_bytes_range": [min(full_sizes), max(full_sizes)],
        "delta_bytes_range": [min(delta_sizes), max(delta_sizes)],
        "skipped_segments": sorted(set(skipped)),
        # the whole playlist as the edge sends it to a client that takes gzip
        "full_gzip_bytes_median": statistics.median(gzipped),
        "delta_share": statistics.median(
            d / f for d, f in zip(delta_sizes, full_sizes, strict=True)
        ),
    }


async def per_listener(
    edge_url: str, space: str, listeners: int, seconds: float, delta: bool
) -> dict[str, Any]:
    async def one() -> dict[str, Any]:
        async with hls.HlsListener(edge_url, space, delta=delta) as listener:
            await listener.start()
            began = time.time()
            first_playlist, first_part = len(listener.playlists), len(listener.parts)
            await listener.follow(seconds)
            took = time.time() - began
            playlists = listener.playlists[first_playlist:]
            parts = listener.parts[first_part:]
            audio = listener.decode(since=began)
            heard = bool(
                tones.tone_energy(audio.samples, TONE_HZ, rate=audio.rate).present(
                    tones.SNR_DB, tones.MIN_DBFS
                )
            )
            return {
                "seconds": took,
                "playlists": len(playlists),
                "playlist_bytes": sum(len(p.text.encode()) for p in playlists),
                "deltas": sum(p.skipped_segments > 0 for p in playlists),
                "parts": len(parts),
                "part_bytes": sum(len(p.data) for p in parts),
                "fell_behind": len(listener.skipped),
                "heard_tone": heard,
            }

    rows = await asyncio.gather(*(one() for _ in range(listeners)))
    secs = sum(r["seconds"] for r in rows)
    return {
        "mode": "delta" if delta else "whole",
        "listeners": listeners,
        "seconds_each": seconds,
        "requests_per_s": sum(r["playlists"] + r["parts"] for r in rows) / secs,
        "playlists_per_s": sum(r["playlists"] for r in rows) / secs,
        "playlist_bytes_per_s": sum(r["playlist_bytes"] for r in rows) / secs,
        "part_bytes_per_s": sum(r["part_bytes"] for r in rows) / secs,
        "bytes_per_playlist": sum(r["playlist_bytes"] for r in rows)
        / max(1, sum(r["playlists"] for r in rows)),
        "delta_answers": sum(r["deltas"] for r in rows),
        "fell_behind": sum(r["fell_behind"] for r in rows),
        "heard_tone": sum(r["heard_tone"] for r in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listeners", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--warmup", type=float, default=25.0, help="seconds: fill the live window")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    settings = {"low_latency_max_listeners": "1000000", **dict(kv.split("=", 1) for kv in args.set)}
    print("# playlist delta updates through the edge", flush=True)
    print(f"machine: {machine()}; settings {settings}", flush=True)
    results: dict[str, Any] = {}
    with deployment(settings) as dep:
        time.sleep(args.warmup)
        url = dep.edge.url
        results["per_playlist"] = asyncio.run(per_playlist(url, dep.space, args.samples))
        print(json.dumps(results["per_playlist"]), flush=True)
        for delta in (False, True):
            row = asyncio.run(per_listener(url, dep.space, args.listeners, args.seconds, delta))
            results[row["mode"]] = row
            print(json.dumps(row), flush=True)
    p, w, d = results["per_playlist"], results["whole"], results["delta"]
    print()
    print("| | whole reloads | delta updates |")
    print("| --- | --- | --- |")
    print(
        f"| bytes per playlist (median, same state) | {p['full_bytes_median']:,.0f} | "
        f"{p['delta_bytes_median']:,.0f} ({p['delta_share']:.0%}) |"
    )
    share = p["full_gzip_bytes_median"] / p["full_bytes_median"]
    zipped = f"{p['full_gzip_bytes_median']:,.0f} ({share:.0%})"
    print(f"| the whole playlist as sent gzipped | {zipped} | |")
    for label, key, fmt in (
        ("requests/s per listener", "requests_per_s", "{:.1f}"),
        ("playlists/s per listener", "playlists_per_s", "{:.1f}"),
        ("playlist bytes/s per listener", "playlist_bytes_per_s", "{:,.0f}"),
        ("part bytes/s per listener", "part_bytes_per_s", "{:,.0f}"),
    ):
        print(f"| {label} | {fmt.format(w[key])} | {fmt.format(d[key])} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
