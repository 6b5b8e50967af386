"""The multi-host rehearsal on one machine (as root): network namespaces for an edge, two
Pnyx nodes, Redis + PostgreSQL, coturn, a listener and a speaker behind a NAT.

    python scripts/netlab.py up       # build it, start every server, wait for Ctrl-C
    python scripts/netlab.py status   # the labs on this machine, their processes
    python scripts/netlab.py down     # remove labs whose builder died (--all: every lab)

Every server runs with the settings of ``docs/deploy.md`` (``start_stack``): the edge
serves HTTPS with a self-signed certificate (port 80 redirects), the nodes hand out TURN
credentials minted from coturn's secret, share a link secret with the edge, trust the
edge's ``X-Forwarded-For`` and use the ICE UDP range 40000-40999. While ``up`` runs, try
it from another shell, e.g.::

    ip netns exec pnyxlab-<pid>-listener curl -s --cacert CERT https://10.213.1.2/healthz
    ip netns exec pnyxlab-<pid>-speaker curl -si http://10.213.1.2/healthz   # a 308

The code is ``tests/support/netlab.py`` (the network) and
``tests/support/netlab_servers.py`` (the servers); ``docs/deploy.md`` explains the roles.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "src"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tests.support import netlab  # noqa: E402
from tests.support.netlab_servers import TURN_SECRET, start_stack  # noqa: E402


def _up(args: argparse.Namespace) -> int:
    plan = netlab.Plan(base=args.base)
    netlab.check_no_overlap(plan.base)  # before anything is made
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="pnyxlab-"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with netlab.lab(workdir, plan) as lab:
        stack = start_stack(lab, fast=False)
        cert = stack.edge.cert.cert if stack.edge.cert else None
        rows = [
            ("edge", f"{stack.edge.url}  (nginx, pnyx edge-config; certificate {cert})"),
            *((h, f"{n.url}  (pnyx serve)") for h, n in stack.nodes.items()),
            ("db", f"{stack.redis}  {stack.postgres.url}"),
            (
                "turn",
                f"turn:{stack.turn.addr}:{stack.turn.port} (udp, tcp; secret {TURN_SECRET})"
                if stack.turn
                else "-",
            ),
            ("listener", lab.addr["listener"]),
            (
                "speaker",
                f"{lab.addr['speaker']} behind the NAT ({lab.addr['nat']}),"
                " its UDP to the nodes dropped",
            ),
        ]
        print(f"lab {lab.tag} is up (logs in {workdir}):")
        for host, what in rows:
            print(f"  {host:9} {lab.ns(host):28} {what}")
        print(
            f"try: ip netns exec {lab.ns('listener')} curl -s --cacert {cert} "
            f"{stack.edge.url}/healthz"
        )
        print("Ctrl-C (or SIGTERM) tears it down.", flush=True)
        stop.wait()
        print("tearing down…", flush=True)
    return 0


def _status(_: argparse.Namespace) -> int:
    names = netlab.list_namespaces()
    if not names:
        print("no labs")
        return 0
    for ns in names:
        owner = netlab.owner_of(ns)
        alive = owner is not None and netlab._alive(owner)
        pids = netlab.namespace_pids(ns)
        print(f"{ns:32} builder {owner} {'running' if alive else 'gone (stale)'}; processes {pids}")
    return 0


def _down(args: argparse.Namespace) -> int:
    if args.all:
        names = netlab.list_namespaces()
        netlab.remove_namespaces(names)
    else:
        names = netlab.remove_stale()
    print(f"removed {len(names)} namespaces" + (f": {' '.join(names)}" if names else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netlab.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the lab and start every server until Ctrl-C")
    up.add_argument(
        "--base", default=netlab.DEFAULT_BASE, help="the lab's /16 (default %(default)s)"
    )
    up.add_argument("--workdir", help="where logs and data go (default: a temporary folder)")
    sub.add_parser("status", help="list the labs and their processes")
    down = sub.add_parser("down", help="remove labs whose builder is gone")
    down.add_argument("--all", action="store_true", help="also labs whose builder still runs")
    args = parser.parse_args(argv)
    try:
        return int({"up": _up, "status": _status, "down": _down}[args.command](args))
    except netlab.LabUnavailable as exc:
        print(f"netlab: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
