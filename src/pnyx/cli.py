"""The ``pnyx`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pnyx
from pnyx.config import Settings, load_settings
from pnyx.errors import ErrorKind, PnyxError


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
        help="print (or write) an nginx configuration for a caching edge in front of Pnyx nodes",
    )
    p.add_argument(
        "--listen",
        required=True,
        help='nginx listen value for plain HTTP: "8080", "0.0.0.0:80" (with TLS it only '
        "redirects to HTTPS)",
    )
    p.add_argument(
        "--upstream",
        action="append",
        required=True,
        metavar="HOST:PORT",
        help="a Pnyx node (repeat for several)",
    )
    p.add_argument("--cache-dir", default="/var/cache/pnyx-edge", help="the cache, only")
    p.add_argument(
        "--state-dir",
        default="/var/lib/pnyx-edge",
        help="the pid file and nginx's temp folders (kept out of the cache folder)",
    )
    p.add_argument("--cache-size", default="2g", help="proxy_cache_path max_size")
    p.add_argument(
        "--server-name",
        help="the site's name: nginx server_name, the Host sent to nodes, the HTTPS redirect "
        "target (default: any name; the first upstream as Host)",
    )
    p.add_argument("--tls-cert", type=Path, help="PEM certificate (chain): serve HTTPS")
    p.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    p.add_argument(
        "--tls-listen", default="443", help='nginx listen value for HTTPS (default "443")'
    )
    p.add_argument(
        "--link-secret-file",
        type=Path,
        help="file holding the secret private spaces' links are signed with (the nodes' "
        "link secret); without it every signed /p/ URL is refused",
    )
    p.add_argument(
        "--output",
        type=Path,
        help="write the config to this file and create the folders it names "
        "(else: print it, and the commands that create the folders to stderr)",
    )
    p.add_argument(
        "--frontrow",
        action="store_true",
        help="serve the front row (listeners' WebSocket push tier) with nginx's nchan module",
    )
    p.add_argument(
        "--frontrow-publisher",
        action="append",
        metavar="ADDRESS|CIDR",
        help="who may publish to the front row: the stage nodes (repeat; default loopback)",
    )
    p.add_argument(
        "--http-only",
        action="store_true",
        help="print only what goes inside http { } (to include in an existing nginx.conf)",
    )
    p.add_argument(
        "--no-varnish",
        action="store_true",
        help="nginx alone: live blocking reads wait on nginx's cache lock, which re-checks "
        "every 500 ms (the edge before issue 17; slower by up to half a second)",
    )
    p.add_argument(
        "--varnish-listen",
        default="127.0.0.1:6081",
        metavar="HOST:PORT",
        help="the loopback address of the Varnish that collapses live blocking reads",
    )
    p.add_argument(
        "--varnish-backend",
        default="127.0.0.1:6082",
        metavar="HOST:PORT",
        help="the loopback address of the internal nginx server Varnish asks",
    )
    p.add_argument(
        "--varnish-dir",
        default="/var/lib/pnyx-edge/varnish",
        help="varnishd's working folder (-n)",
    )
    p.add_argument("--varnish-memory", default="256m", help="varnishd -s malloc,SIZE")
    p.add_argument(
        "--varnish-vcl",
        type=Path,
        help="write the Varnish VCL here (default with --output: pnyx-edge.vcl beside it)",
    )


def _frontrow(args: argparse.Namespace) -> Any:
    from pnyx.edge_frontrow import FrontRow

    if not args.frontrow:
        if args.frontrow_publisher:
            raise PnyxError(ErrorKind.INVALID, "--frontrow-publisher needs --frontrow")
        return None
    try:
        if args.frontrow_publisher:
            return FrontRow(publishers=tuple(args.frontrow_publisher))
        return FrontRow()
    except ValueError as exc:
        raise PnyxError(ErrorKind.INVALID, f"--frontrow-publisher: {exc}") from exc


def _edge(args: argparse.Namespace) -> int:
    from pnyx.edge import (
        EdgeSpec,
        Tls,
        create_folders,
        install_commands,
        read_link_secret,
        render,
        render_vcl,
        varnishd_command,
    )
    from pnyx.edge_varnish import Collapse

    if (args.tls_cert is None) != (args.tls_key is None):
        raise PnyxError(ErrorKind.INVALID, "--tls-cert and --tls-key go together")
    tls = None
    if args.tls_cert is not None:
        for f in (args.tls_cert, args.tls_key):
            if not f.is_file():
                raise PnyxError(ErrorKind.INVALID, f"no such file: {f}")
        tls = Tls(args.tls_cert.resolve(), args.tls_key.resolve(), args.tls_listen)
    secret = None
    if args.link_secret_file is not None:
        try:
            secret = read_link_secret(args.link_secret_file)
        except (OSError, ValueError) as exc:
            raise PnyxError(ErrorKind.INVALID, str(exc)) from exc
    spec = EdgeSpec(
        listen=args.listen,
        upstreams=tuple(args.upstream),
        cache_dir=Path(args.cache_dir).absolute(),
        state_dir=Path(args.state_dir).absolute(),
        cache_size=args.cache_size,
        standalone=not args.http_only,
        server_name=args.server_name,
        tls=tls,
        link_secret=secret,
        varnish=None
        if args.no_varnish
        else Collapse(
            args.varnish_listen,
            args.varnish_backend,
            Path(args.varnish_dir).absolute(),
            args.varnish_memory,
        ),
        frontrow=_frontrow(args),
    )
    text = render(spec)
    vcl: Path | None = args.varnish_vcl
    if vcl is None and args.output is not None and spec.varnish is not None:
        vcl = args.output.with_name("pnyx-edge.vcl")
    if vcl is not None and spec.varnish is not None:
        vcl.parent.mkdir(parents=True, exist_ok=True)
        vcl.write_text(render_vcl(spec))
        command = " ".join(varnishd_command(spec, vcl.absolute()))
        print(f"wrote {vcl}; run Varnish beside nginx: {command}", file=sys.stderr)
    elif spec.varnish is not None:
        print(
            "# this config passes live blocking reads to Varnish: write its VCL with "
            "--varnish-vcl FILE (or --no-varnish for nginx alone)",
            file=sys.stderr,
        )
    if args.output is None:
        sys.stdout.write(text)
        print(f"# before nginx starts:\n{install_commands(spec)}", end="", file=sys.stderr)
        return 0
    out: Path = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    # The link secret is in the config: then only root (nginx's master) reads it.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(out, 0o600 if secret else 0o644)
    made = create_folders(spec)
    print(f"wrote {out}; created {', '.join(map(str, made)) or 'nothing'}", file=sys.stderr)
    print(f"run: nginx -c {out.absolute()}", file=sys.stderr)
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

    class _Server(uvicorn.Server):
        """uvicorn, telling stage clients to go elsewhere (1001) as shutdown begins: uvicorn
        waits for open WebSockets before it runs the app's shutdown, and a stage client may
        not answer its close in time (then uvicorn cancels the socket's task after
        ``timeout_graceful_shutdown``)."""

        async def shutdown(self, sockets: list[Any] | None = None) -> None:
            node = getattr(app.state, "node", None)  # set by the app's lifespan
            if node is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(node.stage.close(), 2.0)
            await super().shutdown(sockets)

    server = _Server(config)
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
