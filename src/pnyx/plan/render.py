"""A plan as text (for a terminal), JSON (stable keys, plain numbers: for benchmarks that
compare predictions with measurements) or Markdown (tables for docs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pnyx.plan.figures import Figures
from pnyx.plan.model import Latency, Line, Plan

SECTIONS = (
    ("load", "Load"),
    ("edge", "Edge (nginx)"),
    ("origin", "Origin (pnyx API processes, one core each)"),
    ("redis", "Live state (Redis)"),
    ("stage", "Stage nodes"),
    ("storm", "Join storm"),
)
COUNTS = frozenset({"instances", "processes", "nodes", "spaces/node"})
JSON_VERSION = 1


def section_of(key: str) -> str:
    head = key.split(".", 1)[0]
    return head if head in {s for s, _ in SECTIONS} else "load"


def _si(value: float, unit: str, base: float = 1000.0) -> str:
    for prefix in ("", "k", "M", "G", "T", "P"):
        if abs(value) < base or prefix == "P":
            return f"{value:.3g} {prefix}{unit}"
        value /= base
    raise AssertionError("unreachable")


def number(value: float, unit: str) -> str:
    """A value for people: counts whole, rates grouped, bytes and bits with prefixes."""
    if unit in COUNTS:
        return f"{value:,.0f}"
    if unit == "bytes/s":
        return _si(value, "B/s")
    if unit == "bits/s":
        return _si(value, "bit/s")
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def _grouped(plan: Plan) -> Iterator[tuple[str, list[Line]]]:
    for name, title in SECTIONS:
        lines = [line for line in plan.lines if section_of(line.key) == name]
        if name == "storm":
            title = f"{title} ({plan.inputs.storm_x:g}× the join rate offered)"
        if lines:
            yield title, lines


def _count(n: float, noun: str) -> str:
    if n == 1:
        return f"{n:,.0f} {noun}"
    return f"{n:,.0f} {noun}" + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def headline(plan: Plan) -> str:
    i = plan.inputs
    mode = plan.mode.value
    if i.latency is Latency.AUTO:
        mode = f"auto → {mode}"
    joins = (
        f"{i.joins_per_s:,.0f}" if i.joins_per_s == int(i.joins_per_s) else f"{i.joins_per_s:,g}"
    )
    return (
        f"{_count(i.listeners, 'listener')}, {joins} joins/s, {_count(i.spaces, 'space')}, "
        f"latency {mode}"
    )


def needs(plan: Plan, figures: Figures) -> str:
    edge_cores = figures.by_key["edge.cores_per_instance"].value
    return (
        f"{_count(plan['edge.instances'], 'edge instance')} ({edge_cores:g} cores each), "
        f"{_count(plan['origin.processes'], 'origin process')}, "
        f"{plan['redis.instances']:,.0f} Redis, {_count(plan['stage.nodes'], 'stage node')}"
    )


def tls(plan: Plan) -> str:
    """What TLS costs the edge, in one sentence."""
    if not plan.inputs.tls:
        return "TLS: not planned (--no-tls): the edge speaks plain HTTP."
    storm = (
        f"; in the {plan.inputs.storm_x:g}× join storm {plan['storm.edge.tls.cores']:,.1f}"
        if plan.inputs.joins_per_s
        else ""
    )
    return (
        f"TLS: {plan['edge.tls.cores']:,.1f} of the {plan['edge.cores']:,.1f} edge cores "
        f"({plan['edge.tls.handshake_cores']:,.1f} for "
        f"{plan['edge.tls.connections_per_s']:,.0f} new connections/s, "
        f"{plan['edge.tls.bulk_cores']:,.1f} to encrypt "
        f"{plan['edge.egress_bits_per_s'] / 1e9:,.1f} Gbit/s){storm}."
    )


def with_unit(line: Line) -> str:
    shown = number(line.value, line.unit)
    return shown if line.unit in ("bytes/s", "bits/s") else f"{shown} {line.unit}"


def _marked(keys: tuple[str, ...], figures: Figures) -> str:
    return ", ".join(k + ("*" if figures.by_key[k].provisional else "") for k in keys)


def _sources(line: Line, figures: Figures) -> str:
    """The figures a line uses itself, and the lines it builds on (which list theirs)."""
    parts = []
    if line.figures:
        parts.append("from " + _marked(line.figures, figures))
    if line.via:
        parts.append("via " + ", ".join(line.via))
    return "; ".join(parts) if parts else "(inputs only)"


def _provisional_note(plan: Plan) -> str:
    if not plan.provisional:
        return "All figures used are measured (or settings and stated assumptions)."
    n = len(plan.provisional)
    what = "is a PROVISIONAL estimate" if n == 1 else "are PROVISIONAL estimates"
    return (
        f"{n} of the figures used {what}, marked *: replace "
        f"{'it' if n == 1 else 'them'} with measurements (docs/capacity.md says which bench "
        "measures each)."
    )


def text(plan: Plan, figures: Figures) -> str:
    out = [f"pnyx plan: {headline(plan)}", f"needs: {needs(plan, figures)}", tls(plan)]
    out.append(f"figures: {plan.figures_source}")
    out.append(_provisional_note(plan))
    width = max(len(line.key) for line in plan.lines)
    for title, lines in _grouped(plan):
        out += ["", title]
        for line in lines:
            out.append(f"  {line.key:<{width}}  {with_unit(line):<24} = {line.how}")
            if line.figures or line.via:
                out.append(f"  {'':<{width}}  {'':<24}   {_sources(line, figures)}")
    if plan.warnings:
        out += ["", "Warnings"] + [f"  ! {w}" for w in plan.warnings]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def markdown(plan: Plan, figures: Figures) -> str:
    out = [
        f"**{headline(plan)}** — needs {needs(plan, figures)}.",
        "",
        _cell(tls(plan)),
        "",
        f"Figures: `{plan.figures_source}`. {_cell(_provisional_note(plan))}",
    ]
    for title, lines in _grouped(plan):
        out += [
            "",
            f"*{title}*",
            "",
            "| quantity | value | how | from |",
            "| --- | ---: | --- | --- |",
        ]
        for line in lines:
            cells = (f"`{line.key}`", with_unit(line), line.how, _sources(line, figures))
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if plan.warnings:
        out += ["", "Warnings:", ""] + [f"- {w}" for w in plan.warnings]
    return "\n".join(out) + "\n"


def as_json(plan: Plan, figures: Figures) -> dict[str, Any]:
    """Stable keys: ``predictions`` maps each line's key to a plain number."""
    i = plan.inputs
    return {
        "version": JSON_VERSION,
        "inputs": {
            "listeners": i.listeners,
            "joins_per_s": i.joins_per_s,
            "spaces": i.spaces,
            "latency": i.latency.value,
            "edges": i.edges,
            "storm_x": i.storm_x,
            "tls": i.tls,
        },
        "latency": plan.mode.value,
        "predictions": plan.predictions(),
        "lines": [
            {
                "key": line.key,
                "value": line.value,
                "unit": line.unit,
                "how": line.how,
                "figures": list(line.figures),
                "via": list(line.via),
                "all_figures": list(line.sources),
            }
            for line in plan.lines
        ],
        "warnings": list(plan.warnings),
        "figures_source": plan.figures_source,
        "provisional": list(plan.provisional),
        "figures": {
            k: {"value": f.value, "unit": f.unit, "provisional": f.provisional, "kind": f.kind}
            for k, f in figures.by_key.items()
        },
    }


def json_text(plan: Plan, figures: Figures) -> str:
    return json.dumps(as_json(plan, figures), indent=2, ensure_ascii=False) + "\n"
