"""``pnyx plan``: what a deployment needs for N listeners and J joins/s.

Thin: parse the arguments, load the figures, run the model, print one format.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from pnyx.errors import ErrorKind, PnyxError
from pnyx.plan import figures as figs
from pnyx.plan import render
from pnyx.plan.model import Inputs, Latency, plan

_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000}
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)([km]?)", re.IGNORECASE)


def amount(text: str) -> float:
    """``600000``, ``600,000``, ``600_000``, ``600k``, ``1.2M``."""
    match = _AMOUNT.fullmatch(text.replace(",", "").replace("_", "").strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r} (e.g. 600000, 600k, 1.2M)")
    return float(match[1]) * _SUFFIX[match[2].lower()]


def whole(text: str) -> int:
    value = amount(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    return int(value)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "plan",
        help="what a deployment needs for N listeners and J joins/s",
        description=(
            "The capacity model: edges, origin processes, Redis and stage nodes for a load, "
            "each line with the measured figures it came from (docs/capacity.md)."
        ),
    )
    p.add_argument("--listeners", type=whole, metavar="N", help="listeners at once (600k ok)")
    p.add_argument(
        "--joins-per-s",
        dest="joins_per_s",
        type=amount,
        metavar="J",
        help="joins per second to admit",
    )
    p.add_argument(
        "--spaces",
        type=whole,
        default=1,
        metavar="S",
        help="live spaces sharing the listeners evenly (default 1)",
    )
    p.add_argument(
        "--latency",
        choices=[m.value for m in Latency],
        default=Latency.AUTO.value,
        help="listeners' latency mode; auto (default): standard above "
        "latency.low_max_listeners listeners per space, as the server does",
    )
    p.add_argument(
        "--figures", metavar="FILE", help="a figures file to use instead of the shipped one"
    )
    p.add_argument(
        "--edges",
        type=whole,
        metavar="K",
        help="pin the number of edges (e.g. a rehearsal's) instead of planning it",
    )
    p.add_argument(
        "--storm-x",
        dest="storm_x",
        type=amount,
        default=10.0,
        metavar="X",
        help="a join storm offers X times the join rate (default 10)",
    )
    p.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="listeners reach the edge over HTTPS: plan the edge's TLS CPU (default); "
        "--no-tls for plain HTTP (e.g. a CDN terminates TLS in front of the edges)",
    )
    p.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    p.add_argument(
        "--print-figures",
        dest="print_figures",
        action="store_true",
        help="print the shipped figures file (to copy for --figures) and exit",
    )


def run(args: argparse.Namespace) -> int:
    if args.print_figures:
        sys.stdout.write(figs.shipped_text())
        return 0
    if args.listeners is None or args.joins_per_s is None:
        raise PnyxError(ErrorKind.INVALID, "plan: --listeners and --joins-per-s are required")
    try:
        inputs = Inputs(
            listeners=args.listeners,
            joins_per_s=args.joins_per_s,
            spaces=args.spaces,
            latency=Latency(args.latency),
            edges=args.edges,
            storm_x=args.storm_x,
            tls=args.tls,
        )
    except ValueError as exc:
        raise PnyxError(ErrorKind.INVALID, f"plan: {exc}") from exc
    figures = figs.load(args.figures)
    result = plan(figures, inputs)
    out = {
        "text": render.text,
        "json": render.json_text,
        "markdown": render.markdown,
    }[args.format](result, figures)
    sys.stdout.write(out)
    return 0
