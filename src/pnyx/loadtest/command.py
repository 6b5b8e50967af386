"""``pnyx loadtest listeners|joinstorm``: rehearse a crowd against a deployment.

listeners
    ``pnyx loadtest listeners --url http://127.0.0.1:8080 --space ID --listeners N
    --duration-s D [--ramp-s R] [--latency auto|low|standard] [--procs K] [--json FILE]
    [--quiet]`` — N simulated listeners (see :mod:`pnyx.loadtest.listeners`), two
    keep-alive connections each, started evenly over R seconds, for D seconds in all.
    A progress line per second on stderr, a summary on stdout.

joinstorm
    ``pnyx loadtest joinstorm --url URL [--space ID --host-handle H --host-password P |
    --no-stage] --rate J --ramp-s R --duration-s D [--max-conns C] [--json FILE]`` —
    open-loop join arrivals ramping to J/s while the host acts on stage every 200 ms
    (see :mod:`pnyx.loadtest.joinstorm`). Without ``--space`` it signs up a host with a
    generated handle and password and creates and starts its own space (ended afterwards).

Both take ``http://`` or ``https://`` URLs (ports 80 and 443 by default). Over https the
certificate is verified against the system's CAs, or only ``--cacert FILE``, or not at
all with ``--insecure``; TLS sessions are resumed on reconnection (a listener's two
connections share one, as a browser's do), and the report counts full and resumed
handshakes and times connecting. An untrusted certificate is a set-up error that says so.
Both refuse non-loopback targets unless ``--allow-remote``. Exit 0 when the run completed
(the report says how it went), 2 on a set-up error.

JSON of ``listeners`` (``schema`` 1; times in ms unless the key says ``_s``):

* ``tool`` = "listeners", ``schema``, ``config`` {url, space, listeners, duration_s,
  ramp_s, latency, procs, join_attempts}, ``elapsed_s``, ``workers_reported``,
  ``workers_failed`` (with --procs > 1);
* ``listeners`` {started, joined (ever), active (loops running at the end), heartbeating
  (joined and heard within 2 x heartbeat_s: the truth), playing, never_joined, ended,
  mode_low, mode_standard};
* ``joins`` {attempts, accepted, rejoined, refused, rejected, failed, given_up};
  ``heartbeats`` {refused, expired, failed}; ``reactions`` {sent, refused} (with
  ``--react-every-s``);
* ``requests`` {join, heartbeat, reaction, playlist, init, part, segment, state: {count, p50_ms,
  p95_ms, p99_ms, max_ms, mean_ms, errors}} — ``state`` times are long-poll answers;
* ``connections`` {made (reconnections included), tls_full, tls_resumed (handshakes by
  kind; 0 over http), connect_ms {count, p50_ms, p95_ms, p99_ms, max_ms, mean_ms}: TCP
  connect plus TLS handshake, connect_full_ms and connect_resumed_ms: the same by kind};
* ``http_errors`` {"<status>" | timeout | connect | closed | bad_response | tls: n};
* ``stalls`` {listeners_stalled, total, stalled_s, stalled_at_end, skips, began_while
  {what the media connection was doing when a stall began: idle | join | heartbeat |
  playlist | init | part | segment: n}};
* ``behind_live_s`` {p50, p95, p99, max} — playhead distance from the live edge,
  sampled every second;
* ``count`` {seen (the state's listener count), truth, rel_error ((seen - truth) / truth),
  state_version, space_state, server_latency};
* ``rate`` {requests, bytes, media_bytes, requests_per_s, bytes_per_s};
* ``cpu`` {client_cpu_s, client_cpu_sys_s (of which in the kernel), cpu_per_request_us,
  cores_used} — the load generator's own (user + system);
* ``mode_switches``, ``playlists_parsed``, ``series`` [{t, active, joined, truth, seen,
  req_per_s, bytes_per_s, stalls, stalled_now, refusals, cpu}] one per second.

JSON of ``joinstorm`` (``schema`` 1): ``tool`` = "joinstorm", ``config``, ``elapsed_s``,
``offered``, ``not_sent`` (must be 0 for a valid run), ``sent``, ``accepted``,
``refused``, ``refused_by_status``, ``refusals_without_retry_after``,
``all_refusals_had_retry_after``, ``refusal_ms`` {count, p50_ms, …}, ``errors``,
``timeouts``, ``unanswered``, ``http_errors``, ``join_ms`` {count, p50_ms, p95_ms,
p99_ms, max_ms, mean_ms}, ``accepted_per_s`` [{t, offered, accepted, refused, errors}],
``peak_accepted_per_s``, ``connections`` {opened (pool size), peak_busy, and as for
listeners: made, tls_full, tls_resumed, connect_ms, connect_full_ms,
connect_resumed_ms}, ``stage`` {actions,
failures, errors {what: n}, count, p50_ms, p95_ms, p99_ms, max_ms, mean_ms}, ``cpu``
{client_cpu_s, cpu_per_request_us}.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from pnyx.errors import PnyxError

MAX_LISTENERS = 100_000
MAX_DURATION_S = 3_600.0
MAX_RATE = 100_000.0
MAX_PROCS = 64
MAX_CONNS = 100_000
CONNS_PER_LISTENER = 2


def add_parser(sub: Any) -> None:
    p = sub.add_parser("loadtest", help="rehearse a crowd: simulated listeners, join storms")
    tools = p.add_subparsers(dest="tool", required=True)

    lst = tools.add_parser("listeners", help="simulated listeners (join, heartbeat, play)")
    _common(lst)
    lst.add_argument("--space", required=True, help="the space to listen to")
    lst.add_argument("--listeners", type=int, required=True, help=f"how many (≤{MAX_LISTENERS})")
    lst.add_argument("--ramp-s", type=float, default=None, help="start them over this long")
    lst.add_argument(
        "--latency",
        choices=["auto", "low", "standard"],
        default="auto",
        help="player mode: follow the server's `latency` (auto) or pin one",
    )
    lst.add_argument("--procs", type=int, default=1, help="worker processes (default 1)")
    lst.add_argument("--join-attempts", type=int, default=20, help="per listener (default 20)")
    lst.add_argument("--seed", type=int, default=None, help="random seed (jitter)")
    lst.add_argument(
        "--react-every-s",
        type=float,
        default=0.0,
        help="each listener sends a reaction about this often (default 0: never)",
    )

    storm = tools.add_parser("joinstorm", help="open-loop join arrivals + a scripted stage")
    _common(storm)
    storm.add_argument("--space", help="an existing space (default: create one)")
    storm.add_argument("--host-handle", help="the host of --space (for the stage script)")
    storm.add_argument("--host-password", help="…their password")
    storm.add_argument("--no-stage", action="store_true", help="no stage script")
    storm.add_argument(
        "--rate", type=float, required=True, help=f"joins/s to reach (≤{MAX_RATE:g})"
    )
    storm.add_argument("--ramp-s", type=float, default=0.0, help="climb to --rate over this long")
    storm.add_argument("--max-conns", type=int, default=2000, help="connection pool bound")
    storm.add_argument("--stage-every-s", type=float, default=0.2, help="stage action period")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        required=True,
        help="the edge or node, e.g. http://127.0.0.1:8080 or https://127.0.0.1:8443",
    )
    p.add_argument(
        "--cacert",
        metavar="FILE",
        help="https: trust only the CA certificate(s) in this PEM file",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="https: do not verify the server's certificate at all",
    )
    p.add_argument("--duration-s", type=float, required=True, help="run time, seconds")
    p.add_argument("--json", type=Path, help="write every figure to this file")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --url")


def validate(args: argparse.Namespace) -> None:
    """Bounds and safety; raises PnyxError with what to change."""
    from pnyx.loadtest.target import setup_error

    if not 0 < args.duration_s <= MAX_DURATION_S:
        raise setup_error(f"--duration-s must be in (0, {MAX_DURATION_S:g}]")
    if args.tool == "listeners":
        if not 1 <= args.listeners <= MAX_LISTENERS:
            raise setup_error(f"--listeners must be 1..{MAX_LISTENERS}")
        if not 1 <= args.procs <= MAX_PROCS:
            raise setup_error(f"--procs must be 1..{MAX_PROCS}")
        if args.procs > args.listeners:
            raise setup_error("--procs must not exceed --listeners")
        if args.ramp_s is not None and not 0 <= args.ramp_s < args.duration_s:
            raise setup_error("--ramp-s must be ≥ 0 and shorter than --duration-s")
        if args.join_attempts < 1:
            raise setup_error("--join-attempts must be ≥ 1")
        if args.react_every_s < 0:
            raise setup_error("--react-every-s must be ≥ 0")
    else:
        if not 0 < args.rate <= MAX_RATE:
            raise setup_error(f"--rate must be in (0, {MAX_RATE:g}]")
        if not 0 <= args.ramp_s <= args.duration_s:
            raise setup_error("--ramp-s must be in [0, --duration-s]")
        if not 1 <= args.max_conns <= MAX_CONNS:
            raise setup_error(f"--max-conns must be 1..{MAX_CONNS}")
        if args.stage_every_s <= 0:
            raise setup_error("--stage-every-s must be > 0")
        if args.space and not args.no_stage and not (args.host_handle and args.host_password):
            raise setup_error(
                "with --space, give the host's --host-handle and --host-password for the "
                "stage script (or --no-stage); without --space a host and space are created"
            )


def run(args: argparse.Namespace) -> int:
    from pnyx.loadtest.target import parse_target, tls_options

    try:
        validate(args)
        target = parse_target(args.url, allow_remote=args.allow_remote)
        cacert = None if args.cacert is None else str(Path(args.cacert).resolve())
        tls = tls_options(target, cacert=cacert, insecure=args.insecure)
        tool = _listeners if args.tool == "listeners" else _joinstorm
        report = tool(args, target, tls)
    except PnyxError as exc:
        print(f"pnyx loadtest: {exc.message}", file=sys.stderr)
        return 2
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1, sort_keys=False) + "\n")
    return 0


# -- listeners ------------------------------------------------------------------------------
def _listeners(args: argparse.Namespace, target: Any, tls: Any) -> dict[str, Any]:
    from pnyx.loadtest.listeners import FleetConfig
    from pnyx.loadtest.runner import RunSpec, split
    from pnyx.loadtest.runner import run as run_fleet
    from pnyx.loadtest.summary import listeners_text
    from pnyx.loadtest.target import Api, check_fds, setup_error

    per_worker = max(split(args.listeners, args.procs))
    check_fds(per_worker * CONNS_PER_LISTENER, f"{per_worker} listeners")
    status, _ = Api(target, tls).call("GET", f"/v1/spaces/{args.space}")
    if status == 404:
        raise setup_error(f"space {args.space} not found at {args.url}")
    if status >= 400:
        raise setup_error(f"GET /v1/spaces/{args.space} answered {status}")
    ramp = (
        args.ramp_s if args.ramp_s is not None else min(args.duration_s / 2, args.listeners / 1000)
    )
    cfg = FleetConfig(
        host=target.host,
        port=target.port,
        space=args.space,
        listeners=args.listeners,
        duration_s=args.duration_s,
        ramp_s=ramp,
        latency=args.latency,
        join_attempts=args.join_attempts,
        react_every_s=args.react_every_s,
        seed=args.seed if args.seed is not None else secrets.randbits(31),
        tls=tls,
    )
    report = run_fleet(RunSpec(cfg, args.procs, args.url, args.quiet))
    sys.stdout.write(listeners_text(report))
    return report


# -- joinstorm ------------------------------------------------------------------------------
def _joinstorm(args: argparse.Namespace, target: Any, tls: Any) -> dict[str, Any]:
    import uvloop

    from pnyx.loadtest.joinstorm import Storm, StormConfig
    from pnyx.loadtest.summary import joinstorm_text
    from pnyx.loadtest.target import Api, check_fds, raise_fd_limit, setup_error

    check_fds(args.max_conns + 1, f"--max-conns {args.max_conns}")
    raise_fd_limit()
    api = Api(target, tls)
    handle: str | None = None
    token: str | None = None
    created_token: str | None = None
    if args.space:
        space = args.space
        status, _ = api.call("GET", f"/v1/spaces/{space}")
        if status == 404:
            raise setup_error(f"space {space} not found at {args.url}")
        if not args.no_stage:
            handle = str(args.host_handle).lower()
            signed = api.ok(
                "POST", "/v1/sessions", {"handle": handle, "password": args.host_password}
            )
            token = str(signed["token"])
    else:
        handle = f"lt_{secrets.token_hex(6)}"
        password = secrets.token_urlsafe(18)
        api.ok("POST", "/v1/accounts", {"handle": handle, "password": password})
        token = str(
            api.ok("POST", "/v1/sessions", {"handle": handle, "password": password})["token"]
        )
        created_token = token
        made = api.ok("POST", "/v1/spaces", {"title": "pnyx loadtest joinstorm"}, token)
        space = str(made["id"])
        if made.get("state") != "live":
            api.ok("POST", f"/v1/spaces/{space}/start", None, token)
        if not args.quiet:
            print(f"created space {space} hosted by @{handle}", file=sys.stderr)
        if args.no_stage:
            handle = token = None
    cfg = StormConfig(
        host=target.host,
        port=target.port,
        space=space,
        host_handle=handle,
        host_token=token,
        rate=args.rate,
        ramp_s=args.ramp_s,
        duration_s=args.duration_s,
        max_conns=args.max_conns,
        stage_every_s=args.stage_every_s,
        tls=tls,
    )
    storm = Storm(cfg)
    last: dict[str, float] = {"accepted": 0, "offered": 0, "t": time.monotonic()}

    def progress(s: Storm) -> None:
        if args.quiet:
            return
        now = time.monotonic()
        st = s.stats
        dt = max(1e-6, now - last["t"])
        acc = (st.get("accepted") - last["accepted"]) / dt
        off = (st.get("offered") - last["offered"]) / dt
        last.update(accepted=st.get("accepted"), offered=st.get("offered"), t=now)
        print(
            f"[{now - s.t0:6.1f}s] offered/s={off:,.0f} accepted/s={acc:,.0f} "
            f"refused={st.get('refused'):.0f} errors={st.get('errors'):.0f} "
            f"not_sent={st.get('not_sent'):.0f} conns={s.conns} "
            f"stage={st.get('stage.actions'):.0f} (failed {st.get('stage.failures'):.0f})",
            file=sys.stderr,
            flush=True,
        )

    cpu0, t0 = time.process_time(), time.monotonic()
    uvloop.run(storm.run(progress))
    report = storm.report(time.monotonic() - t0, time.process_time() - cpu0)
    report["config"]["url"] = args.url
    report["config"]["space_created"] = created_token is not None
    if created_token is not None:  # leave no space of ours running
        api.call("POST", f"/v1/spaces/{space}/end", None, created_token)
    sys.stdout.write(joinstorm_text(report))
    return report
