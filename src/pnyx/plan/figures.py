"""The per-unit figures the capacity model is linear in, and the file they live in.

The shipped file is ``src/pnyx/plan/figures.toml`` (package data); ``pnyx plan --figures
FILE`` reads another one with the same keys (for tests and what-ifs). Each figure is a
table named by its key::

    ["edge.reads_per_core_s"]
    value = 20000
    unit = "requests/s/core"
    kind = "measured"            # measured | assumption | setting (default: measured)
    provisional = true           # an estimate, until the command below has been run
    command = ".venv/bin/python bench/edge_origin.py"
    measured = "2026-11-25, x86_64 2-core shared VM"
    note = "what exactly was measured, and how it was read"

Every key below must be present, no other key may be, and each unit must be exactly the
one listed (a figure in the wrong unit is a wrong figure). The figures:

Listener behaviour, per latency mode (``low``: LL-HLS, 0.128 s parts, blocking playlist
reload; ``standard``: whole 1.92 s segments, playlist reloaded every target duration):

- ``listener.reads_per_s.{low,standard}`` — cacheable GETs one listener sends the edge per
  second: playlists, parts or segments, state long-polls (not heartbeats nor joins, which
  the model adds from ``heartbeat.*`` and the join rate).
- ``listener.overhead_bytes_per_s.{low,standard}`` — edge egress per listener beyond the
  audio program itself: playlists, state documents, HTTP headers, fMP4 boxes.
- ``listener.connections.{low,standard}`` — TCP connections a listener holds open to a
  plain-HTTP edge (HTTP/1.1: a browser keeps one per request it had in flight at once).
- ``listener.connections.https`` — the same over HTTPS, where the edge speaks HTTP/2 (the
  held requests share connections, in either tier).

Edge (nginx ``proxy_cache``, or any CDN):

- ``edge.reads_per_core_s`` — cache hits one nginx core serves per second.
- ``edge.proxied_per_core_s`` — uncached requests (joins, heartbeats, refusals) one nginx
  core passes to the origin per second.
- ``edge.cores_per_instance``, ``edge.connections_per_instance``,
  ``edge.egress_bps_per_instance`` — the size of one edge machine (assumptions).
- ``edge.headroom`` — the fraction of each measured capacity the plan uses.

TLS at the edge (``bench/tls.py``; used unless ``pnyx plan --no-tls``):

- ``edge.tls.full_handshakes_per_core_s`` — new HTTPS connections with a full handshake
  (ECDSA P-256 certificate, no session to resume) one nginx core accepts per second,
  one request each.
- ``edge.tls.resumed_handshakes_per_core_s`` — the same with the session resumed (a
  ticket).
- ``edge.tls.full_handshake_share`` — the share of a joining listener's new connections
  that are full handshakes (the rest resume the session its first one got).
- ``edge.tls.cores_per_gbps`` — the nginx CPU TLS adds per Gbit/s the edge sends,
  over plain HTTP (segment-sized objects).

Origin (``pnyx serve`` API processes, one core each):

- ``origin.reads_per_edge_per_space_s.{low,standard}`` — requests one edge sends the
  origin per second per space, whatever the number of listeners behind it (each object
  once per edge: ``proxy_cache_lock``).
- ``origin.bytes_per_edge_per_space_s.{low,standard}`` — the bytes those requests carry.
- ``origin.core_ms.read``, ``origin.core_ms.heartbeat``, ``origin.core_ms.join``,
  ``origin.core_ms.refusal`` — CPU milliseconds of one origin request of each kind (a
  refusal is admission control's 503 to a join).
- ``origin.join_rate_per_process`` — the joins/s each process is planned to admit.
- ``origin.headroom`` — the fraction of a core each process is planned to use.

Heartbeats (settings):

- ``heartbeat.interval_s`` — the base interval the server tells listeners.
- ``heartbeat.client_factor`` — the fraction of it clients actually wait (0.9 to 1.0).
- ``heartbeat.raised_x`` / ``heartbeat.shedding_x`` — the server's multipliers while it
  sheds reactions / heartbeats.

Live state (Redis):

- ``redis.ops_per_heartbeat``, ``redis.ops_per_join``, ``redis.ops_per_origin_read`` —
  Redis commands per request of each kind.
- ``redis.ops_per_space_s`` — commands per live space per second on its own (the ticker,
  media parts and segments, speaking levels), whoever listens.
- ``redis.ops_per_core_s`` — commands one Redis (one thread) executes per second.
- ``redis.headroom`` — the fraction of that the plan uses.

Media and stage:

- ``media.program_bps`` — the program's audio bitrate (AAC), in bits/s.
- ``stage.cores_per_space`` — CPU of a stage node for one space with a full stage.
- ``captions.cores_per_space`` — CPU of live captions for one space that never stops
  talking (0 for a deployment with ``captions_enabled = false``).
- ``stage.headroom`` — the fraction of a core the spaces of one stage node may use.
- ``stage.spare_nodes`` — stage nodes kept idle so a failed node's spaces can move.

Latency mode:

- ``latency.low_max_listeners`` — above this many listeners a space is switched to
  standard latency (server setting ``low_latency_max_listeners``).
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from pnyx.errors import ErrorKind, PnyxError

SHIPPED = "figures.toml"


class Bound(StrEnum):
    POSITIVE = "positive"  # > 0 (divisors, rates)
    NON_NEGATIVE = "non-negative"  # >= 0
    FRACTION = "fraction"  # 0 < x <= 1 (headroom)
    MULTIPLIER = "multiplier"  # >= 1


class Kind(StrEnum):
    MEASURED = "measured"
    ASSUMPTION = "assumption"
    SETTING = "setting"


@dataclass(frozen=True, slots=True)
class Spec:
    unit: str
    bound: Bound = Bound.POSITIVE


_PER_MODE = ("low", "standard")


def _modes(stem: str, spec: Spec) -> dict[str, Spec]:
    return {f"{stem}.{mode}": spec for mode in _PER_MODE}


# key → the unit it must be given in, and its allowed range.
SPECS: Mapping[str, Spec] = {
    **_modes("listener.reads_per_s", Spec("requests/s/listener")),
    **_modes("listener.overhead_bytes_per_s", Spec("bytes/s/listener", Bound.NON_NEGATIVE)),
    **_modes("listener.connections", Spec("connections/listener")),
    "listener.connections.https": Spec("connections/listener"),
    "edge.reads_per_core_s": Spec("requests/s/core"),
    "edge.proxied_per_core_s": Spec("requests/s/core"),
    "edge.cores_per_instance": Spec("cores/instance"),
    "edge.connections_per_instance": Spec("connections/instance"),
    "edge.egress_bps_per_instance": Spec("bits/s/instance"),
    "edge.headroom": Spec("fraction", Bound.FRACTION),
    "edge.tls.full_handshakes_per_core_s": Spec("handshakes/s/core"),
    "edge.tls.resumed_handshakes_per_core_s": Spec("handshakes/s/core"),
    "edge.tls.full_handshake_share": Spec("fraction", Bound.FRACTION),
    "edge.tls.cores_per_gbps": Spec("cores/(Gbit/s)", Bound.NON_NEGATIVE),
    **_modes("origin.reads_per_edge_per_space_s", Spec("requests/s/edge/space")),
    **_modes("origin.bytes_per_edge_per_space_s", Spec("bytes/s/edge/space", Bound.NON_NEGATIVE)),
    "origin.core_ms.read": Spec("core-ms/request", Bound.NON_NEGATIVE),
    "origin.core_ms.heartbeat": Spec("core-ms/request", Bound.NON_NEGATIVE),
    "origin.core_ms.join": Spec("core-ms/request", Bound.NON_NEGATIVE),
    "origin.core_ms.refusal": Spec("core-ms/request", Bound.NON_NEGATIVE),
    "origin.join_rate_per_process": Spec("joins/s/process"),
    "origin.headroom": Spec("fraction", Bound.FRACTION),
    "heartbeat.interval_s": Spec("s"),
    "heartbeat.client_factor": Spec("fraction", Bound.FRACTION),
    "heartbeat.raised_x": Spec("x", Bound.MULTIPLIER),
    "heartbeat.shedding_x": Spec("x", Bound.MULTIPLIER),
    "redis.ops_per_heartbeat": Spec("ops/request", Bound.NON_NEGATIVE),
    "redis.ops_per_join": Spec("ops/request", Bound.NON_NEGATIVE),
    "redis.ops_per_origin_read": Spec("ops/request", Bound.NON_NEGATIVE),
    "redis.ops_per_space_s": Spec("ops/s/space", Bound.NON_NEGATIVE),
    "redis.ops_per_core_s": Spec("ops/s/core"),
    "redis.headroom": Spec("fraction", Bound.FRACTION),
    "media.program_bps": Spec("bits/s"),
    "stage.cores_per_space": Spec("cores/space"),
    "captions.cores_per_space": Spec("cores/space", Bound.NON_NEGATIVE),
    "stage.headroom": Spec("fraction", Bound.FRACTION),
    "stage.spare_nodes": Spec("nodes", Bound.NON_NEGATIVE),
    "latency.low_max_listeners": Spec("listeners/space", Bound.NON_NEGATIVE),
}

_REQUIRED_FIELDS = ("value", "unit", "command", "measured", "note")
_OPTIONAL_FIELDS = ("provisional", "kind")


@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    value: float
    unit: str
    command: str
    measured: str
    note: str
    provisional: bool = False
    kind: Kind = Kind.MEASURED


@dataclass(frozen=True)
class Figures:
    """The figures by key. ``source`` says where they were read from."""

    by_key: Mapping[str, Figure]
    source: str
    used: set[str] = field(default_factory=set, compare=False, repr=False)

    def __getitem__(self, key: str) -> float:
        """A figure's value; remembers that it was used (a test checks every figure is)."""
        figure = self.by_key[key]
        self.used.add(key)
        return figure.value

    def provisional(self) -> tuple[str, ...]:
        return tuple(k for k, f in self.by_key.items() if f.provisional)


def _fail(source: str, message: str) -> PnyxError:
    return PnyxError(ErrorKind.INVALID, f"figures file {source}: {message}")


def _check_value(source: str, key: str, value: Any, spec: Spec) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(source, f"[{key!r}] value must be a number, not {value!r}")
    number = float(value)
    ok = {
        Bound.POSITIVE: number > 0,
        Bound.NON_NEGATIVE: number >= 0,
        Bound.FRACTION: 0 < number <= 1,
        Bound.MULTIPLIER: number >= 1,
    }[spec.bound]
    if not ok or not math.isfinite(number):
        raise _fail(source, f"[{key!r}] value {value!r} must be {spec.bound.value}")
    return number


def _figure(source: str, key: str, entry: Any) -> Figure:
    spec = SPECS[key]
    if not isinstance(entry, dict):
        raise _fail(source, f"{key!r} must be a table ([{key!r}] with value, unit, …)")
    missing = [f for f in _REQUIRED_FIELDS if f not in entry]
    if missing:
        raise _fail(source, f"[{key!r}] lacks {', '.join(missing)}")
    extra = sorted(set(entry) - set(_REQUIRED_FIELDS) - set(_OPTIONAL_FIELDS))
    if extra:
        raise _fail(
            source,
            f"[{key!r}] has unknown field(s) {', '.join(extra)}; "
            f"allowed: {', '.join(_REQUIRED_FIELDS + _OPTIONAL_FIELDS)}",
        )
    if entry["unit"] != spec.unit:
        raise _fail(source, f"[{key!r}] unit is {entry['unit']!r}; this figure is in {spec.unit!r}")
    for name in ("command", "measured", "note"):
        if not isinstance(entry[name], str) or not entry[name].strip():
            raise _fail(source, f"[{key!r}] {name} must be a non-empty string")
    provisional = entry.get("provisional", False)
    if not isinstance(provisional, bool):
        raise _fail(source, f"[{key!r}] provisional must be true or false")
    kind = entry.get("kind", Kind.MEASURED.value)
    if kind not in {k.value for k in Kind}:
        raise _fail(source, f"[{key!r}] kind must be one of {', '.join(k.value for k in Kind)}")
    return Figure(
        key=key,
        value=_check_value(source, key, entry["value"], spec),
        unit=spec.unit,
        command=entry["command"],
        measured=entry["measured"],
        note=entry["note"],
        provisional=provisional,
        kind=Kind(kind),
    )


def _suggest(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse(text: str, source: str) -> Figures:
    """Figures from the text of a figures file; PnyxError (INVALID) says what is wrong."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(source, f"not valid TOML: {exc}") from exc
    unknown = [k for k in doc if k not in SPECS]
    if unknown:
        key = unknown[0]
        hint = _suggest(key, SPECS)
        if not hint and "." not in key and isinstance(doc[key], dict):
            hint = f' (quote dotted keys: ["{key}.…"], not [{key}.…])'
        raise _fail(source, f"unknown figure {key!r}{hint}")
    missing = [k for k in SPECS if k not in doc]
    if missing:
        raise _fail(source, f"missing figure(s): {', '.join(missing)}")
    return Figures({key: _figure(source, key, doc[key]) for key in SPECS}, source)


def load(path: str | Path | None = None) -> Figures:
    """The figures of ``path``, or the shipped ones."""
    if path is None:
        return parse(shipped_text(), f"(shipped) pnyx/plan/{SHIPPED}")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(str(path), f"cannot be read: {exc.strerror or exc}") from exc
    return parse(text, str(path))


def shipped_text() -> str:
    return resources.files("pnyx.plan").joinpath(SHIPPED).read_text(encoding="utf-8")
