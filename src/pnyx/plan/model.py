"""The capacity model: figures and a load in, a plan out. Pure: no I/O.

Every quantity is linear in the per-unit figures (``figures.py``); only the instance
counts round up. Each :class:`Line` of the plan says which figures it came from (the
figures of the lines it is computed from included), so a wrong line can be traced to the
figure to re-measure. docs/capacity.md states each formula in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from pnyx.plan.figures import Figures
from pnyx.plan.lines import EPS, Book, Line, up
from pnyx.plan.storm import add_storm
from pnyx.plan.tls import add_edge_tls

__all__ = ["Inputs", "Latency", "Line", "Plan", "effective_mode", "plan", "up"]


class Latency(StrEnum):
    LOW = "low"
    STANDARD = "standard"
    AUTO = "auto"


@dataclass(frozen=True, slots=True)
class Inputs:
    listeners: int
    joins_per_s: float
    spaces: int = 1
    latency: Latency = Latency.AUTO
    edges: int | None = None  # pin the number of edges (e.g. a rehearsal's); default: plan it
    storm_x: float = 10.0  # a join storm offers this many times joins_per_s
    tls: bool = True  # listeners reach the edge over HTTPS (the edge terminates TLS)

    def __post_init__(self) -> None:
        if self.listeners < 0:
            raise ValueError("listeners must be 0 or more")
        if self.joins_per_s < 0:
            raise ValueError("joins per second must be 0 or more")
        if self.spaces < 1:
            raise ValueError("spaces must be 1 or more")
        if self.edges is not None and self.edges < 1:
            raise ValueError("edges must be 1 or more")
        if self.storm_x < 1:
            raise ValueError("the storm factor must be 1 or more")


@dataclass(frozen=True, slots=True)
class Plan:
    inputs: Inputs
    mode: Latency  # the latency mode the spaces run in: low or standard
    lines: tuple[Line, ...]
    warnings: tuple[str, ...]
    figures_source: str
    provisional: tuple[str, ...]  # provisional figures this plan used

    def line(self, key: str) -> Line:
        for line in self.lines:
            if line.key == key:
                return line
        raise KeyError(key)

    def __getitem__(self, key: str) -> float:
        return self.line(key).value

    def predictions(self) -> dict[str, float]:
        return {line.key: line.value for line in self.lines}


def effective_mode(inputs: Inputs, figures: Figures) -> Latency:
    """``auto`` is what the server does: a space above ``low_max_listeners`` listeners is
    switched to standard latency (listeners are taken as spread evenly over the spaces)."""
    if inputs.latency is not Latency.AUTO:
        return inputs.latency
    per_space = inputs.listeners / inputs.spaces
    if per_space > figures["latency.low_max_listeners"]:
        return Latency.STANDARD
    return Latency.LOW


def plan(figures: Figures, inputs: Inputs) -> Plan:
    mode = effective_mode(inputs, figures)
    b = Book(figures)
    _listeners(b, inputs)
    _edge(b, inputs, mode)
    _origin(b, inputs, mode)
    _redis(b, inputs)
    _stage(b, inputs)
    add_storm(b, inputs)
    used = set(b.figures.used)
    return Plan(
        inputs=inputs,
        mode=mode,
        lines=tuple(b.lines.values()),
        warnings=tuple(b.warnings),
        figures_source=figures.source,
        provisional=tuple(k for k in figures.provisional() if k in used),
    )


def _listeners(b: Book, i: Inputs) -> None:
    n = float(i.listeners)
    b.add("listeners_per_space", n / i.spaces, "listeners", "listeners / spaces")
    period = b.f("heartbeat.interval_s") * b.f("heartbeat.client_factor")
    b.add(
        "heartbeats_per_s",
        n / period,
        "requests/s",
        "listeners / (heartbeat.interval_s × heartbeat.client_factor)",
        figures=["heartbeat.interval_s", "heartbeat.client_factor"],
    )
    b.add(
        "heartbeats_per_s.raised",
        b["heartbeats_per_s"] / b.f("heartbeat.raised_x"),
        "requests/s",
        "heartbeats/s ÷ heartbeat.raised_x (while reactions are shed)",
        figures=["heartbeat.raised_x"],
        lines=["heartbeats_per_s"],
    )
    b.add(
        "heartbeats_per_s.shedding",
        b["heartbeats_per_s"] / b.f("heartbeat.shedding_x"),
        "requests/s",
        "heartbeats/s ÷ heartbeat.shedding_x (while heartbeats are shed)",
        figures=["heartbeat.shedding_x"],
        lines=["heartbeats_per_s"],
    )
    b.add("joins_per_s", i.joins_per_s, "requests/s", "the join rate asked for")


def _edge(b: Book, i: Inputs, mode: Latency) -> None:
    n = float(i.listeners)
    reads_k = f"listener.reads_per_s.{mode}"
    b.add(
        "edge.reads_per_s",
        n * b.f(reads_k),
        "requests/s",
        f"listeners × {reads_k}",
        figures=[reads_k],
    )
    proxied = b["heartbeats_per_s"] + i.joins_per_s
    b.add(
        "edge.requests_per_s",
        b["edge.reads_per_s"] + proxied,
        "requests/s",
        "edge reads/s + heartbeats/s + joins/s",
        lines=["edge.reads_per_s", "heartbeats_per_s"],
    )
    b.add(
        "edge.http_cores",
        b["edge.reads_per_s"] / b.f("edge.reads_per_core_s")
        + proxied / b.f("edge.proxied_per_core_s"),
        "cores",
        "edge reads/s ÷ edge.reads_per_core_s + (heartbeats/s + joins/s) ÷ edge.proxied_per_core_s",
        figures=["edge.reads_per_core_s", "edge.proxied_per_core_s"],
        lines=["edge.reads_per_s", "heartbeats_per_s"],
    )
    # Over HTTPS the edge speaks HTTP/2: a browser holds fewer connections, in either tier.
    conns_k = "listener.connections.https" if i.tls else f"listener.connections.{mode}"
    b.add(
        "edge.connections",
        n * b.f(conns_k),
        "connections",
        f"listeners × {conns_k}",
        figures=[conns_k],
    )
    over_k = f"listener.overhead_bytes_per_s.{mode}"
    b.add(
        "edge.egress_bytes_per_s",
        n * (b.f("media.program_bps") / 8 + b.f(over_k)),
        "bytes/s",
        f"listeners × (media.program_bps ÷ 8 + {over_k})",
        figures=["media.program_bps", over_k],
    )
    b.add(
        "edge.egress_bits_per_s",
        b["edge.egress_bytes_per_s"] * 8,
        "bits/s",
        "edge egress bytes/s × 8",
        lines=["edge.egress_bytes_per_s"],
    )
    if i.tls:
        add_edge_tls(b, i.joins_per_s)
        b.add(
            "edge.cores",
            b["edge.http_cores"] + b["edge.tls.cores"],
            "cores",
            "edge HTTP cores + edge TLS cores",
            lines=["edge.http_cores", "edge.tls.cores"],
        )
    else:
        b.add(
            "edge.cores",
            b["edge.http_cores"],
            "cores",
            "edge HTTP cores (--no-tls: the edge does no TLS)",
            lines=["edge.http_cores"],
        )
    headroom = b.f("edge.headroom")
    b.add(
        "edge.instances.by_cores",
        up(b["edge.cores"] / (b.f("edge.cores_per_instance") * headroom)),
        "instances",
        "⌈edge cores ÷ (edge.cores_per_instance × edge.headroom)⌉",
        figures=["edge.cores_per_instance", "edge.headroom"],
        lines=["edge.cores"],
    )
    b.add(
        "edge.instances.by_connections",
        up(b["edge.connections"] / (b.f("edge.connections_per_instance") * headroom)),
        "instances",
        "⌈edge connections ÷ (edge.connections_per_instance × edge.headroom)⌉",
        figures=["edge.connections_per_instance", "edge.headroom"],
        lines=["edge.connections"],
    )
    b.add(
        "edge.instances.by_egress",
        up(b["edge.egress_bits_per_s"] / (b.f("edge.egress_bps_per_instance") * headroom)),
        "instances",
        "⌈edge egress bits/s ÷ (edge.egress_bps_per_instance × edge.headroom)⌉",
        figures=["edge.egress_bps_per_instance", "edge.headroom"],
        lines=["edge.egress_bits_per_s"],
    )
    bounds = [
        "edge.instances.by_cores",
        "edge.instances.by_connections",
        "edge.instances.by_egress",
    ]
    needed = max(1, *(int(b[k]) for k in bounds))
    if i.edges is None:
        b.add(
            "edge.instances",
            needed,
            "instances",
            "the largest of the three, at least 1",
            lines=bounds,
        )
    else:
        b.add("edge.instances", i.edges, "instances", "given (--edges)")
        if i.edges < needed:
            b.warnings.append(
                f"--edges {i.edges} is fewer than the {needed} edge instances this load needs"
                f" at edge.headroom {headroom:g}"
            )


def _origin(b: Book, i: Inputs, mode: Latency) -> None:
    edges = b["edge.instances"]
    per_edge_k = f"origin.reads_per_edge_per_space_s.{mode}"
    reads_k = f"listener.reads_per_s.{mode}"
    # An edge with few listeners of a space sends fewer requests than the collapsed figure.
    per_listener_edge_space = i.listeners / (i.spaces * edges)
    per_edge_space = min(b.f(per_edge_k), per_listener_edge_space * b.f(reads_k))
    b.add(
        "origin.reads_per_s",
        edges * i.spaces * per_edge_space,
        "requests/s",
        f"edges × spaces × {per_edge_k} (or, with few listeners per edge and space, "
        f"their own reads: listeners × {reads_k})",
        figures=[per_edge_k, reads_k],
        lines=["edge.instances"],
    )
    share = per_edge_space / b.f(per_edge_k)
    bytes_k = f"origin.bytes_per_edge_per_space_s.{mode}"
    b.add(
        "origin.egress_bytes_per_s",
        edges * i.spaces * b.f(bytes_k) * share,
        "bytes/s",
        f"edges × spaces × {bytes_k} (scaled like the reads)",
        figures=[bytes_k],
        lines=["origin.reads_per_s"],
    )
    b.add(
        "origin.requests_per_s",
        b["origin.reads_per_s"] + b["heartbeats_per_s"] + i.joins_per_s,
        "requests/s",
        "origin reads/s + heartbeats/s + joins/s",
        lines=["origin.reads_per_s", "heartbeats_per_s"],
    )
    ms = (
        b["origin.reads_per_s"] * b.f("origin.core_ms.read")
        + b["heartbeats_per_s"] * b.f("origin.core_ms.heartbeat")
        + i.joins_per_s * b.f("origin.core_ms.join")
    )
    b.add(
        "origin.cores",
        ms / 1000,
        "cores",
        "(origin reads/s × origin.core_ms.read + heartbeats/s × origin.core_ms.heartbeat "
        "+ joins/s × origin.core_ms.join) ÷ 1000",
        figures=["origin.core_ms.read", "origin.core_ms.heartbeat", "origin.core_ms.join"],
        lines=["origin.reads_per_s", "heartbeats_per_s"],
    )
    by_cpu = up(b["origin.cores"] / b.f("origin.headroom"))
    by_joins = up(i.joins_per_s / b.f("origin.join_rate_per_process"))
    b.add(
        "origin.processes",
        max(1, by_cpu, by_joins),
        "processes",
        "the larger of ⌈origin cores ÷ origin.headroom⌉ and "
        "⌈joins/s ÷ origin.join_rate_per_process⌉ (one core each), at least 1",
        figures=["origin.headroom", "origin.join_rate_per_process"],
        lines=["origin.cores"],
    )


def _redis(b: Book, i: Inputs) -> None:
    per_request = b["heartbeats_per_s"] * b.f("redis.ops_per_heartbeat") + i.joins_per_s * b.f(
        "redis.ops_per_join"
    )
    per_read = b["origin.reads_per_s"] * b.f("redis.ops_per_origin_read")
    per_space = i.spaces * b.f("redis.ops_per_space_s")
    b.add(
        "redis.ops_per_s",
        per_request + per_read + per_space,
        "ops/s",
        "heartbeats/s × redis.ops_per_heartbeat + joins/s × redis.ops_per_join + origin "
        "reads/s × redis.ops_per_origin_read + spaces × redis.ops_per_space_s",
        figures=[
            "redis.ops_per_heartbeat",
            "redis.ops_per_join",
            "redis.ops_per_origin_read",
            "redis.ops_per_space_s",
        ],
        lines=["heartbeats_per_s", "origin.reads_per_s"],
    )
    b.add(
        "redis.space_ops_per_s",
        (per_request + per_read) / i.spaces + b.f("redis.ops_per_space_s"),
        "ops/s",
        "redis ops/s of one space (the load is spread evenly over the spaces)",
        lines=["redis.ops_per_s"],
    )
    capacity = b.f("redis.ops_per_core_s")
    headroom = b.f("redis.headroom")
    b.add(
        "redis.cores",
        b["redis.ops_per_s"] / capacity,
        "cores",
        "redis ops/s ÷ redis.ops_per_core_s",
        figures=["redis.ops_per_core_s"],
        lines=["redis.ops_per_s"],
    )
    b.add(
        "redis.instances",
        max(1, up(b["redis.cores"] / headroom)),
        "instances",
        "⌈redis cores ÷ redis.headroom⌉ (one command thread each), at least 1",
        figures=["redis.headroom"],
        lines=["redis.cores"],
    )
    if b["redis.instances"] > 1:
        b.warnings.append(
            f"Redis needs {int(b['redis.instances'])} instances at redis.headroom "
            f"{headroom:g}, but Pnyx's live state uses one Redis URL: sharding is not built"
        )
    if b["redis.space_ops_per_s"] > capacity * headroom:
        b.warnings.append(
            f"one space alone needs {b['redis.space_ops_per_s']:,.0f} Redis ops/s, above one "
            f"Redis's planned {capacity * headroom:,.0f}: its presence and snapshot keys are "
            "single keys, which no sharding splits"
        )


def _stage(b: Book, i: Inputs) -> None:
    per_space = b.f("stage.cores_per_space") + b.f("captions.cores_per_space")
    headroom = b.f("stage.headroom")
    per_node = max(1, math.floor(headroom / per_space + EPS))
    b.add(
        "stage.spaces_per_node",
        per_node,
        "spaces/node",
        "⌊stage.headroom ÷ (stage.cores_per_space + captions.cores_per_space)⌋, at least 1",
        figures=["stage.cores_per_space", "captions.cores_per_space", "stage.headroom"],
    )
    b.add(
        "stage.nodes",
        up(i.spaces / per_node) + b.f("stage.spare_nodes"),
        "nodes",
        "⌈spaces ÷ spaces per stage node⌉ + stage.spare_nodes",
        figures=["stage.spare_nodes"],
        lines=["stage.spaces_per_node"],
    )
    if per_space > headroom:
        b.warnings.append(
            f"one space needs {per_space:g} of a stage core, above stage.headroom {headroom:g}"
        )
