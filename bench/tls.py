"""TLS at the edge: what HTTPS costs one nginx worker core, side by side with plain HTTP.

One nginx (``worker_processes 1``, so one worker does all the work) with a self-signed
P-256 ECDSA certificate (like an edge with a Let's Encrypt ECDSA certificate) and, for
comparison, an RSA-2048 one, serving on loopback:

- **handshakes**: ``wrk`` with ``Connection: close``, so every request is a new
  connection and a new handshake, against a tiny answer (``return 200``). *Full*: the
  server keeps no session cache and sends no tickets (``ssl_session_cache off``,
  ``ssl_session_tickets off``), so nothing can be resumed. *Resumed*: tickets on (and a
  shared cache), and wrk offers its last session on every reconnection (OpenSSL keeps
  it across ``SSL_clear``). Plain HTTP with ``Connection: close`` is the baseline. Each
  handshake server logs ``$ssl_session_reused`` so the run proves which kind it measured.
- **bulk**: keep-alive ``wrk`` against a static file, once the size of a standard-latency
  segment (17,000 bytes: 1.92 s of 64 kbit/s AAC in fMP4) and once 1 MiB, over plain
  HTTP (``sendfile on``, as the edge config has) and over TLS.

The meter is the worker's own CPU (utime + stime from ``/proc/PID/stat``) around each
``wrk -t1`` run, so figures are per second of nginx CPU: the load generator (on the same
machine, and busier than nginx for ECDSA, whose verification costs the client more than
the signature costs the server) may well be what limits the request rate, but not the
figure. Rounds go round-robin over the configurations (noise from other work on the
machine falls on all of them alike); the median round of each is reported.

    make bench-tls      # or: .venv/bin/python bench/tls.py [--seconds 4] [--rounds 5] [--json FILE]

wrk comes from apt (``bash scripts/install-system-deps.sh wrk``). It prints the figures
for ``src/pnyx/plan/figures.toml`` (``edge.tls.*``) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from latency_support import cpu_seconds, nginx_running
from pnyx.loadtest.stats import percentile

LOOPBACK = "127.0.0.1"
SEGMENT_BYTES = 17_000  # a standard-latency segment (docs/benchmarks.md: 16.9 KB)
LARGE_BYTES = 1 << 20
HANDSHAKE_CONNS = 16
BULK_CONNS = 8

# What wrk prints at the end of a run (its Lua ``done`` hook): exact counts.
DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("PNYX-WRK %d %d %d %d\\n", summary.requests, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""
CLOSE_LUA = 'wrk.headers["Connection"] = "close"\n' + DONE_LUA


@dataclass(frozen=True)
class Server:
    name: str  # e.g. "ecdsa full"
    port: int
    cert: str | None  # "ecdsa" | "rsa" | None (plain HTTP)
    resumption: bool = True
    logged: bool = False  # logs $ssl_session_reused (handshake servers)

    @property
    def url(self) -> str:
        return f"{'https' if self.cert else 'http'}://{LOOPBACK}:{self.port}"


@dataclass(frozen=True)
class Case:
    name: str
    server: Server
    path: str
    close: bool  # Connection: close: one handshake per request
    connections: int


@dataclass
class Round:
    requests: int
    bytes: int
    errors: int
    seconds: float
    cpu_s: float  # nginx worker CPU over the run

    @property
    def per_core_s(self) -> float:
        """Requests per second of nginx CPU."""
        return self.requests / self.cpu_s if self.cpu_s > 0 else float("inf")

    @property
    def gbps(self) -> float:
        return self.bytes * 8 / 1e9 / self.seconds

    @property
    def cores_per_gbps(self) -> float:
        """nginx cores busy per Gbit/s sent (CPU seconds per Gbit)."""
        return self.cpu_s / (self.bytes * 8 / 1e9)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def make_cert(folder: Path, kind: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: P-256 ECDSA or RSA-2048."""
    cert, key = folder / f"{kind}.crt", folder / f"{kind}.key"
    newkey = ["-newkey", "rsa:2048"] if kind == "rsa" else ["-newkey", "ec"]
    if kind == "ecdsa":
        newkey += ["-pkeyopt", "ec_paramgen_curve:prime256v1"]
    args = ["openssl", "req", "-x509", "-nodes", *newkey, "-days", "2", "-subj", "/CN=127.0.0.1"]
    args += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        args,
        check=True,
        capture_output=True,
    )
    return cert, key


def server_block(s: Server, root: Path) -> str:
    lines = [f"    server {{\n        listen {LOOPBACK}:{s.port}{' ssl' if s.cert else ''};"]
    if s.cert:
        lines.append(f"        ssl_certificate {root / (s.cert + '.crt')};")
        lines.append(f"        ssl_certificate_key {root / (s.cert + '.key')};")
        if s.resumption:
            lines.append("        ssl_session_cache shared:TLS:10m;")
            lines.append("        ssl_session_tickets on;")
        else:
            lines.append("        ssl_session_cache off;")
            lines.append("        ssl_session_tickets off;")
    if s.logged:
        log = root / f"reuse-{s.port}.log"
        lines.append(f"        access_log {log} reuse buffer=64k flush=1s;")
    lines.append(f"        root {root / 'www'};")
    lines.append('        location = /hs { return 200 "ok\\n"; }')
    lines.append("    }")
    return "\n".join(lines)


def nginx_conf(servers: list[Server], root: Path) -> str:
    blocks = "\n".join(server_block(s, root) for s in servers)
    return f"""worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    ssl_protocols TLSv1.2 TLSv1.3;
    log_format reuse '$ssl_session_reused';
{blocks}
}}
"""


def worker_pid(master: int) -> int:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            return int(stat.parent.name)
    raise RuntimeError("no nginx worker found")


@contextmanager
def nginx(servers: list[Server], root: Path) -> Iterator[int]:
    """Run nginx; yields its worker's pid."""
    conf = root / "nginx.conf"
    conf.write_text(nginx_conf(servers, root))
    with nginx_running(conf, [s.port for s in servers], log=root / "nginx.log") as proc:
        yield worker_pid(proc.pid)


def run_wrk(case: Case, seconds: float, script: Path, worker: int) -> Round:
    args = ["wrk", "-t1", f"-c{case.connections}", f"-d{seconds:.0f}s", "-s", str(script)]
    cpu0, t0 = cpu_seconds(worker), time.perf_counter()
    out = subprocess.run(
        [*args, case.server.url + case.path],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds(worker) - cpu0
    found = re.search(r"PNYX-WRK (\d+) (\d+) (\d+) (\d+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no counts:\n{out}")
    requests, nbytes, errors, status = (int(g) for g in found.groups())
    return Round(requests, nbytes, errors + status, elapsed, cpu)


def session_check(server: Server) -> tuple[str, bool]:
    """The protocol and cipher a client gets, and whether a second connection resumed."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    session = None
    reused = False
    info = ""
    for _ in range(2):
        with (
            socket.create_connection((LOOPBACK, server.port)) as raw,
            ctx.wrap_socket(raw, session=session) as tls,
        ):
            tls.sendall(b"GET /hs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while tls.recv(4096):
                pass
            info = f"{tls.version()} {tls.cipher()[0]}"  # type: ignore[index]
            reused = tls.session_reused
            session = tls.session
    return info, reused


def reuse_share(server: Server, root: Path) -> tuple[int, float]:
    """Connections logged by a handshake server and the share that resumed a session."""
    marks = (root / f"reuse-{server.port}.log").read_text().split()
    return len(marks), (marks.count("r") / len(marks) if marks else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=4.0, help="length of one wrk run")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per case; the median is shown")
    ap.add_argument("--no-rsa", action="store_true", help="skip the RSA-2048 comparison")
    ap.add_argument("--json", type=Path, help="write every round to this file")
    args = ap.parse_args()
    if not 1 <= args.rounds <= 20 or not 1 <= args.seconds <= 60:
        raise SystemExit("--rounds must be 1..20 and --seconds 1..60")
    for tool in ("wrk", "openssl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: bash scripts/install-system-deps.sh wrk")

    root = Path(tempfile.mkdtemp(prefix="pnyx-bench-tls-"))
    root.chmod(0o755)  # nginx's worker (an unprivileged user under root) reads from here
    try:
        _bench(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _bench(args: argparse.Namespace, root: Path) -> None:
    certs = ["ecdsa"] if args.no_rsa else ["ecdsa", "rsa"]
    for kind in certs:
        make_cert(root, kind)
    www = root / "www"
    www.mkdir()
    (www / "seg.m4s").write_bytes(os.urandom(SEGMENT_BYTES))
    (www / "large.bin").write_bytes(os.urandom(LARGE_BYTES))
    for p in (www, *www.iterdir()):
        p.chmod(0o755 if p.is_dir() else 0o644)

    plain = Server("plain", free_port(), None, logged=True)
    hs = [plain]
    for kind in certs:
        hs.append(Server(f"{kind} full", free_port(), kind, resumption=False, logged=True))
        hs.append(Server(f"{kind} resumed", free_port(), kind, resumption=True, logged=True))
    bulk_plain = Server("plain bulk", free_port(), None)
    bulk_tls = Server("ecdsa bulk", free_port(), "ecdsa")
    servers = [*hs, bulk_plain, bulk_tls]

    cases = [Case(f"handshake: {s.name}", s, "/hs", True, HANDSHAKE_CONNS) for s in hs]
    for label, path in (("17 KB", "/seg.m4s"), ("1 MiB", "/large.bin")):
        cases.append(Case(f"bulk {label}: plain", bulk_plain, path, False, BULK_CONNS))
        cases.append(Case(f"bulk {label}: TLS", bulk_tls, path, False, BULK_CONNS))

    close_lua, done_lua = root / "close.lua", root / "done.lua"
    close_lua.write_text(CLOSE_LUA)
    done_lua.write_text(DONE_LUA)

    results: dict[str, list[Round]] = {c.name: [] for c in cases}
    with nginx(servers, root) as worker:
        checks = {s.name: session_check(s) for s in servers if s.cert}
        for c in cases:  # warm-up: caches, page cache, first tickets
            run_wrk(c, 1, close_lua if c.close else done_lua, worker)
        for _ in range(args.rounds):
            for c in cases:
                r = run_wrk(c, args.seconds, close_lua if c.close else done_lua, worker)
                if r.errors:
                    raise RuntimeError(f"{c.name}: wrk saw {r.errors} errors")
                results[c.name].append(r)
        time.sleep(1.2)  # the access logs flush every second
        reuse = {s.name: reuse_share(s, root) for s in hs if s.cert}

    _print(args, cases, results, checks, reuse)
    if args.json:
        doc = {
            "machine": _machine(),
            "rounds": {k: [asdict(r) for r in v] for k, v in results.items()},
            "session_check": checks,
            "reuse_share": reuse,
        }
        args.json.write_text(json.dumps(doc, indent=1) + "\n")


def _median(rounds: list[Round], what: str) -> float:
    return percentile((float(getattr(r, what)) for r in rounds), 0.5)


def _machine() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{platform.machine()} {os.cpu_count()} cores ({model}), "
        f"nginx {_nginx_version()}, {ssl.OPENSSL_VERSION}"
    )


def _nginx_version() -> str:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    out = subprocess.run([exe, "-v"], capture_output=True, text=True).stderr
    return out.strip().rsplit("/", 1)[-1]


def _print(
    args: argparse.Namespace,
    cases: list[Case],
    results: dict[str, list[Round]],
    checks: dict[str, tuple[str, bool]],
    reuse: dict[str, tuple[int, float]],
) -> None:
    print(f"machine: {_machine()}")
    print(
        f"one nginx worker; wrk -t1 (handshakes: -c{HANDSHAKE_CONNS} Connection: close; "
        f"bulk: -c{BULK_CONNS} keep-alive); {args.rounds} rounds of {args.seconds:.0f} s, "
        "round-robin; medians"
    )
    for name, (info, reused) in checks.items():
        print(f"  {name}: {info}; a second connection resumed: {reused}")
    for name, (n, share) in reuse.items():
        print(f"  {name}: {n} connections logged, {share:.1%} resumed a session")
    print()
    print("| case | requests/s | nginx CPU | per nginx core-second | Gbit/s | cores per Gbit/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for c in cases:
        rs = results[c.name]
        rate = _median(rs, "requests") / _median(rs, "seconds")
        cpu = percentile((r.cpu_s / r.seconds for r in rs), 0.5)
        per_core = _median(rs, "per_core_s")
        bulk = "" if c.close else f"{_median(rs, 'gbps'):.2f}"
        cpg = "" if c.close else f"{_median(rs, 'cores_per_gbps'):.3f}"
        print(f"| {c.name} | {rate:,.0f} | {cpu:.0%} | {per_core:,.0f} requests | {bulk} | {cpg} |")
    print()
    hs_plain = _median(results["handshake: plain"], "per_core_s")
    full = _median(results["handshake: ecdsa full"], "per_core_s")
    resumed = _median(results["handshake: ecdsa resumed"], "per_core_s")
    extra = {}
    for label in ("17 KB", "1 MiB"):
        p = _median(results[f"bulk {label}: plain"], "cores_per_gbps")
        t = _median(results[f"bulk {label}: TLS"], "cores_per_gbps")
        extra[label] = t - p
        print(
            f"bulk {label}: TLS {t:.3f} vs plain {p:.3f} cores per Gbit/s: "
            f"encryption adds {t - p:.3f} cores per Gbit/s"
        )
    print(
        f"new connections per nginx core-second: plain {hs_plain:,.0f}, ECDSA full "
        f"{full:,.0f}, ECDSA resumed {resumed:,.0f}"
        + (
            f", RSA-2048 full {_median(results['handshake: rsa full'], 'per_core_s'):,.0f}"
            f", RSA-2048 resumed {_median(results['handshake: rsa resumed'], 'per_core_s'):,.0f}"
            if "handshake: rsa full" in results
            else ""
        )
    )
    print("\nfigures for src/pnyx/plan/figures.toml:")
    print(f"  edge.tls.full_handshakes_per_core_s     = {full:,.0f}")
    print(f"  edge.tls.resumed_handshakes_per_core_s  = {resumed:,.0f}")
    print(f"  edge.tls.cores_per_gbps                 = {extra['17 KB']:.3f}  (17 KB objects)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
