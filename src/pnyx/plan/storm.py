"""The join storm part of a plan: what refusing a flood of joins costs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pnyx.plan.lines import EPS, Book
from pnyx.plan.tls import add_storm_tls

if TYPE_CHECKING:
    from pnyx.plan.model import Inputs


def add_storm(b: Book, i: Inputs) -> None:
    """A join storm: ``storm_x`` times the planned join rate is offered (retries
    included). Heartbeats are shed (their interval raised by ``shedding_x``); the planned
    origin processes run flat out (the headroom is for this), admit joins up to their
    planned join rate or what their CPU leaves, and refuse the rest with a cheap 503."""
    offered = i.storm_x * i.joins_per_s
    b.add("storm.offered_joins_per_s", offered, "requests/s", f"{i.storm_x:g} × joins/s")
    hb = b["heartbeats_per_s.shedding"]
    b.add(
        "storm.heartbeats_per_s",
        hb,
        "requests/s",
        "heartbeats/s while heartbeats are shed",
        lines=["heartbeats_per_s.shedding"],
    )
    read_ms, hb_ms = b.f("origin.core_ms.read"), b.f("origin.core_ms.heartbeat")
    join_ms, refusal_ms = b.f("origin.core_ms.join"), b.f("origin.core_ms.refusal")
    processes = b["origin.processes"]
    base_ms = b["origin.reads_per_s"] * read_ms + hb * hb_ms
    # CPU left once reads, heartbeats and refusing every offered join are paid for; each
    # join admitted instead of refused costs join_ms - refusal_ms more.
    spare_ms = processes * 1000 - base_ms - offered * refusal_ms
    by_cpu = offered if join_ms <= refusal_ms else max(0.0, spare_ms / (join_ms - refusal_ms))
    by_rate = processes * b.f("origin.join_rate_per_process")
    b.add(
        "storm.admitted_joins_per_s",
        min(offered, by_rate, by_cpu),
        "requests/s",
        "the least of: the offered joins; origin processes × origin.join_rate_per_process; "
        "the joins the processes' CPU leaves room for, flat out, after reads, the storm's "
        "heartbeats and the refusals",
        figures=[
            "origin.join_rate_per_process",
            "origin.core_ms.read",
            "origin.core_ms.heartbeat",
            "origin.core_ms.join",
            "origin.core_ms.refusal",
        ],
        lines=["origin.processes", "origin.reads_per_s", "storm.heartbeats_per_s"],
    )
    admitted = b["storm.admitted_joins_per_s"]
    refused = offered - admitted
    b.add(
        "storm.refused_per_s",
        refused,
        "requests/s",
        "offered − admitted",
        lines=["storm.admitted_joins_per_s"],
    )
    b.add(
        "storm.refusal_cores",
        refused * refusal_ms / 1000,
        "cores",
        "refused/s × origin.core_ms.refusal ÷ 1000",
        figures=["origin.core_ms.refusal"],
        lines=["storm.refused_per_s"],
    )
    b.add(
        "storm.origin.cores",
        (base_ms + admitted * join_ms) / 1000 + b["storm.refusal_cores"],
        "cores",
        "(origin reads/s × origin.core_ms.read + storm heartbeats/s × "
        "origin.core_ms.heartbeat + admitted/s × origin.core_ms.join) ÷ 1000 + refusal cores",
        figures=["origin.core_ms.read", "origin.core_ms.heartbeat", "origin.core_ms.join"],
        lines=["origin.reads_per_s", "storm.admitted_joins_per_s", "storm.refusal_cores"],
    )
    if base_ms + offered * refusal_ms > processes * 1000:
        b.warnings.append(
            f"in a {i.storm_x:g}× join storm, refusing alone (with reads and shed heartbeats) "
            f"needs {(base_ms + offered * refusal_ms) / 1000:,.1f} origin cores, more than "
            f"the {int(processes)} planned processes"
        )
    if admitted < i.joins_per_s - EPS:
        b.warnings.append(
            f"in a {i.storm_x:g}× join storm the {int(processes)} planned origin processes "
            f"admit only {admitted:,.0f} joins/s, below the planned {i.joins_per_s:,.0f}"
        )
    b.add(
        "storm.edge.requests_per_s",
        b["edge.reads_per_s"] + hb + offered,
        "requests/s",
        "edge reads/s + storm heartbeats/s + offered joins/s",
        lines=["edge.reads_per_s", "storm.heartbeats_per_s"],
    )
    http_cores = b["edge.reads_per_s"] / b.f("edge.reads_per_core_s") + (hb + offered) / b.f(
        "edge.proxied_per_core_s"
    )
    how = (
        "edge reads/s ÷ edge.reads_per_core_s + (storm heartbeats/s + offered joins/s) ÷ "
        "edge.proxied_per_core_s"
    )
    edge_lines = ["edge.reads_per_s", "storm.heartbeats_per_s"]
    tls_cores = 0.0
    if i.tls:
        tls_cores = add_storm_tls(b, i.storm_x)
        how += " + storm TLS cores"
        edge_lines.append("storm.edge.tls.cores")
    b.add(
        "storm.edge.cores",
        http_cores + tls_cores,
        "cores",
        how,
        figures=["edge.reads_per_core_s", "edge.proxied_per_core_s"],
        lines=edge_lines,
    )
    edge_capacity = b["edge.instances"] * b.f("edge.cores_per_instance")  # flat out
    if b["storm.edge.cores"] > edge_capacity:
        b.warnings.append(
            f"a {i.storm_x:g}× join storm needs {b['storm.edge.cores']:,.1f} edge cores, more "
            f"than the {edge_capacity:,.0f} of the planned edges"
        )
    b.add(
        "storm.redis.ops_per_s",
        hb * b.f("redis.ops_per_heartbeat")
        + admitted * b.f("redis.ops_per_join")
        + b["origin.reads_per_s"] * b.f("redis.ops_per_origin_read")
        + i.spaces * b.f("redis.ops_per_space_s"),
        "ops/s",
        "as redis ops/s, with the storm's heartbeats and admitted joins (refusals: none)",
        figures=[
            "redis.ops_per_heartbeat",
            "redis.ops_per_join",
            "redis.ops_per_origin_read",
            "redis.ops_per_space_s",
        ],
        lines=["storm.heartbeats_per_s", "storm.admitted_joins_per_s", "origin.reads_per_s"],
    )
