"""The ``pnyx`` command."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence
from typing import Any

import pnyx
from pnyx.config import Settings, load_settings
from pnyx.errors import PnyxError


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run a Pnyx node (API, stage and origin)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8000)")
    p.add_argument("--database", help="database URL (default: SQLite file in the data dir)")
    p.add_argument("--redis", help="Redis URL for the shared live state (default: in memory)")
    p.add_argument("--data-dir", dest="data_dir", help="where files live (default ./data)")
    p.add_argument("--role", choices=["api", "stage", "both"], help="what this node runs")
    p.add_argument(
        "--public-url",
        dest="public_url",
        help="how other nodes reach this one, e.g. http://10.0.0.11:8000 (needed with "
        "--redis when --host listens on every address)",
    )
    p.add_argument("--config", help="a TOML file of settings (see config.example.toml)")
    p.add_argument("--log-level", dest="log_level", help="debug, info, warning, error")


def _edge_parser(sub: Any) -> None:
    p = sub.add_parser(
        "edge-config",
        help="print an nginx configuration for a caching edge in front of Pnyx nodes",
    )
    p.add_argument("--listen", required=True, help='nginx listen value: "8080", "0.0.0.0:80"')
    p.add_argument(
        "--upstream",
        action="append",
        required=True,
        metavar="HOST:PORT",
        help="a Pnyx node (repeat for several)",
    )
    p.add_argument("--cache-dir", default="/var/cache/pnyx-edge", help="cache and temp files")
    p.add_argument("--cache-size", default="2g", help="proxy_cache_path max_size")
    p.add_argument(
        "--http-only",
        action="store_true",
        help="print only what goes inside http { } (to include in an existing nginx.conf)",
    )


def _edge(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pnyx.edge import EdgeSpec, render

    spec = EdgeSpec(
        listen=args.listen,
        upstreams=tuple(args.upstream),
        cache_dir=Path(args.cache_dir),
        cache_size=args.cache_size,
        standalone=not args.http_only,
    )
    sys.stdout.write(render(spec))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from pnyx.api.app import create_app

    overrides = {
        k: getattr(args, k)
        for k in (
            "host",
            "port",
            "database",
            "redis",
            "data_dir",
            "role",
            "public_url",
            "log_level",
        )
    }
    settings: Settings = load_settings(overrides, config_file=args.config)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=settings.ws_max_message_bytes,
        ws_ping_interval=None,  # the stage protocol has its own pings
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        # Idle keep-alive connections (an edge's to us) are kept longer than the edge
        # keeps them (50 s), so that it never sends on one we are closing.
        timeout_keep_alive=75,
        lifespan="on",
        # The client's address is ours to work out (services/client_address.py, from
        # trusted_proxies only): uvicorn would believe X-Forwarded-For from loopback.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    # The 20 ms mix clock shares the event loop: a full garbage collection over every
    # start-up object stalls it for tens of ms. Freeze what exists now (it is never
    # garbage) and collect the young generation less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"Pnyx {pnyx.__version__} serving on http://{host}:{settings.port}/", flush=True)
    server.run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pnyx", description=pnyx.__doc__)
    parser.add_argument("--version", action="version", version=f"pnyx {pnyx.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _edge_parser(sub)
    # The rehearsal tools and the capacity model import nothing of a node.
    from pnyx.loadtest import command as loadtest
    from pnyx.plan import command as plan

    loadtest.add_parser(sub)
    plan.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "edge-config":
            return _edge(args)
        if args.command == "loadtest":
            return loadtest.run(args)
        if args.command == "plan":
            return plan.run(args)
    except PnyxError as exc:
        print(f"pnyx: {exc.message}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
