"""The servers of the rehearsal, each on its own lab host and address
(``tests/support/netlab.py``), with the settings ``docs/deploy.md`` describes:

- :func:`start_redis` and :func:`start_postgres` on ``db`` (Redis 6379, PostgreSQL 5432);
- :func:`start_node` on ``node-a`` / ``node-b``: ``pnyx serve --host ADDR --port 8000
  --public-url http://ADDR:8000``, sharing Redis and PostgreSQL;
- :func:`start_edge` on ``edge``: nginx from ``pnyx.edge.render`` listening on ADDR:80
  (extra ``EdgeSpec`` fields pass through; :meth:`LabEdge.reload` is nginx's SIGHUP);
- :func:`start_turn` on ``turn``: coturn on ADDR:3478 (UDP and TCP) with a shared
  secret (TURN REST credentials: :func:`turn_credentials`);
- :func:`start_stack`: all of them, in that order, with the settings of docs/deploy.md
  (:func:`node_settings`: TURN and STUN with the shared secret, the ICE address and UDP
  port range, the edge as the only trusted proxy, the link secret; the edge on HTTPS
  with a self-signed certificate, port 80 redirecting, checking signed links itself).

Every port is the standard one: each host has its own network namespace, so nothing
collides with the machine or with a parallel lab. Readiness is checked from inside the
host, since nothing of the lab is reachable from the machine's own namespace.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pnyx.edge import EdgeSpec, Tls, create_folders, render
from tests.support.coturn import ALLOCATED
from tests.support.netlab import Lab
from tests.support.nginx import Edge
from tests.support.pnyx_server import FAST, SECRET, PnyxProcess
from tests.support.poll import wait_until
from tests.support.postgres_server import FAST_SETTINGS, SUPERUSER, _find_tools, _server_user
from tests.support.procs import port_open, require_binary
from tests.support.tls import Cert, self_signed

SRC = Path(__file__).resolve().parents[2] / "src"
REDIS_PORT = 6379
POSTGRES_PORT = 5432
NODE_PORT = 8000
EDGE_PORT = 80
EDGE_TLS_PORT = 443
TURN_PORT = 3478
TURN_RELAY_PORTS = (49152, 49407)  # coturn's relay range on the TURN host
TURN_REALM = "pnyx.lab"
TURN_SECRET = "lab-turn-secret-0123456789abcdef"
ICE_PORTS = (40000, 40999)  # each node's WebRTC UDP range (ice_port_min, ice_port_max)
# Private spaces' signed links: the nodes sign them, the edge checks them (docs/deploy.md).
LINK_SECRET = "lab-link-secret-shared-by-the-nodes-and-the-edge"
LEASES = {"lease_ttl_s": "1", "lease_renew_s": "0.25"}  # the defaults, as the e2e tests say


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_port(
    lab: Lab, host: str, port: int, proc: subprocess.Popen[bytes], what: str, log: Path
) -> None:
    addr = lab.addr[host]

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}):\n{_log_tail(log)}")
        return port_open(port, addr)

    lab.call(host, lambda: wait_until(up, 30, f"{what} on {addr}:{port}", ignoring=(OSError,)))


# -- db host ------------------------------------------------------------------------
def start_redis(lab: Lab, host: str = "db") -> str:
    """redis-server on ``host``:6379 (no persistence); its URL."""
    binary = require_binary("redis-server")
    folder = lab.workdir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "redis.log"
    addr = lab.addr[host]
    proc = lab.spawn(
        host,
        [
            binary,
            *("--bind", addr, "--port", str(REDIS_PORT), "--protected-mode", "no"),
            *("--save", "", "--appendonly", "no", "--dir", str(folder)),
            *("--logfile", str(log)),
        ],
        stdout=subprocess.DEVNULL,
    )
    _wait_port(lab, host, REDIS_PORT, proc, "redis-server", log)
    return f"redis://{addr}:{REDIS_PORT}/0"


@dataclass(frozen=True)
class LabPostgres:
    root: Path
    url: str  # the database the nodes share


def start_postgres(lab: Lab, host: str = "db", database: str = "pnyx") -> LabPostgres:
    """PostgreSQL on ``host``:5432 (durability off), trusting the lab's range; a fresh
    database ``database``. As root it runs as the ``postgres`` user (it refuses root)."""
    tools = _find_tools()
    run_as = _server_user()
    root = Path(tempfile.mkdtemp(prefix="pnyxlab-pg-"))
    data, log = root / "data", root / "postgres.log"
    if run_as is not None:
        shutil.chown(root, run_as, run_as)
    as_user = ["runuser", "-u", run_as, "--"] if run_as else []

    def tool(name: str, *args: str, in_host: bool = False) -> None:
        argv = [*as_user, tools[name], *args]
        done = (
            lab.run(host, argv, check=False, cwd=root)
            if in_host
            else subprocess.run(argv, capture_output=True, check=False, timeout=120, cwd=root)
        )
        if done.returncode != 0:
            out = (done.stdout or b"").decode(errors="replace") + (done.stderr or b"").decode(
                errors="replace"
            )
            raise RuntimeError(f"{name} {' '.join(args)} failed:\n{out}\n{_log_tail(log)}")

    def stop() -> None:
        if (data / "postmaster.pid").exists():
            tool("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(data), in_host=True)
        shutil.rmtree(root, ignore_errors=True)

    lab.on_teardown(stop)
    tool(
        "initdb",
        "-D",
        str(data),
        "-U",
        SUPERUSER,
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
        "--no-instructions",
    )
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {lab.plan.base} trust\n")
    addr = lab.addr[host]
    options = f"-p {POSTGRES_PORT} -k {root} -c listen_addresses={addr} {FAST_SETTINGS}"
    tool(
        "pg_ctl",
        "start",
        "-w",
        "-t",
        "60",
        "-D",
        str(data),
        "-l",
        str(log),
        "-o",
        options,
        in_host=True,
    )
    psql = [tools["psql"], "--no-psqlrc", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(root)]
    psql += [
        "-p",
        str(POSTGRES_PORT),
        "-U",
        SUPERUSER,
        "-d",
        "postgres",
        "-c",
        f"CREATE DATABASE {database}",
    ]
    subprocess.run(psql, check=True, capture_output=True, timeout=60)  # over the unix socket
    return LabPostgres(root, f"postgresql://{SUPERUSER}@{addr}:{POSTGRES_PORT}/{database}")


# -- node hosts -------------------------------------------------------------------------
def start_node(
    lab: Lab,
    host: str,
    *,
    database: str | None,
    redis: str | None,
    settings: Mapping[str, str] | None = None,
    fast: bool = True,
) -> PnyxProcess:
    """``pnyx serve`` on ``host``:8000 with ``--public-url http://ADDR:8000``, healthy
    when this returns. ``fast``: the tests' quick clocks (FAST) and the default leases."""
    addr = lab.addr[host]
    url = f"http://{addr}:{NODE_PORT}"
    data_dir = lab.workdir / host
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNYX_")}
    chosen = {**(FAST if fast else {}), **LEASES, **(settings or {})}
    env.update({f"PNYX_{k.upper()}": v for k, v in chosen.items()})
    env["PNYX_SECRET"] = SECRET
    # The nodes run this checkout's code, like the lab itself (not another install's).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["PNYX_SERVE_WEB"] = "true"
    argv = [sys.executable, "-m", "pnyx.cli", "serve", "--host", addr, "--port", str(NODE_PORT)]
    argv += ["--public-url", url, "--data-dir", str(data_dir)]
    if database:
        argv += ["--database", database]
    if redis:
        argv += ["--redis", redis]
    log = data_dir / "pnyx.log"
    with log.open("wb") as out:
        proc = lab.spawn(host, argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    node = PnyxProcess(proc, url, log)
    lab.call(
        host,
        lambda: wait_until(
            node.healthy, 40, f"pnyx serve on {host} to be healthy", ignoring=(OSError,)
        ),
    )
    return node


def turn_urls(lab: Lab, host: str = "turn") -> list[str]:
    """The TURN URLs of coturn on ``host`` (:func:`start_turn`): UDP and TCP."""
    addr = lab.addr[host]
    return [f"turn:{addr}:{TURN_PORT}?transport=udp", f"turn:{addr}:{TURN_PORT}?transport=tcp"]


def node_settings(lab: Lab, host: str, *, turn: bool = True) -> dict[str, str]:
    """A node's settings from docs/deploy.md ("Settings the machines share", the node's
    ``pnyx.toml``), as ``PNYX_*`` values: it gathers ICE candidates on its own address
    in the UDP range ``ICE_PORTS``; believes ``X-Forwarded-For`` from the edge only; signs
    private spaces' links with the edge's secret; and, with ``turn``, hands speakers the
    TURN host as STUN and TURN (UDP and TCP) servers with credentials minted from
    coturn's shared secret."""
    low, high = ICE_PORTS
    settings = {
        "ice_addresses": lab.addr[host],
        "ice_port_min": str(low),
        "ice_port_max": str(high),
        "trusted_proxies": lab.addr["edge"],
        "link_secret": LINK_SECRET,
    }
    if turn:
        settings |= {
            "ice_stun_urls": f"stun:{lab.addr['turn']}:{TURN_PORT}",
            "ice_turn_urls": ",".join(turn_urls(lab)),
            "ice_turn_secret": TURN_SECRET,
        }
    return settings


# -- edge host ---------------------------------------------------------------------------
class LabEdge(Edge):
    cert: Cert | None = None  # the edge's certificate when it serves HTTPS

    def reload(self) -> None:
        """Re-read the config (what ``systemctl reload`` does: SIGHUP to the master)."""
        self.proc.send_signal(1)

    def trust(self) -> ssl.SSLContext | bool:
        """What a client verifies this edge with: its own certificate (and nothing else)
        when it serves HTTPS."""
        if self.cert is None:
            return True
        return ssl.create_default_context(cafile=str(self.cert.cert))

    def client(self, **kw: Any) -> httpx.Client:
        """An HTTP client of the edge's URL that trusts its certificate."""
        kw.setdefault("timeout", 20)
        return httpx.Client(base_url=self.url, verify=self.trust(), **kw)

    def async_client(self, **kw: Any) -> httpx.AsyncClient:
        kw.setdefault("timeout", 20)
        return httpx.AsyncClient(verify=self.trust(), **kw)


def edge_cert(lab: Lab, host: str = "edge") -> Cert:
    """A self-signed certificate for ``host``'s address, in a folder nginx's workers (an
    unprivileged user) can read; removed at teardown."""
    folder = Path(tempfile.mkdtemp(prefix="pnyxlab-tls-"))
    folder.chmod(0o755)
    lab.on_teardown(lambda: shutil.rmtree(folder, ignore_errors=True))
    return self_signed(folder, hosts=(lab.addr[host],))


def start_https_edge(lab: Lab, upstreams: list[str], host: str = "edge", **spec: Any) -> LabEdge:
    """The edge as docs/deploy.md runs it: HTTPS (HTTP/2) on ADDR:443 with a self-signed
    certificate for its address, ADDR:80 redirecting to it, signed links checked with
    ``LINK_SECRET``. Its URL is ``https://ADDR:443``; :meth:`LabEdge.trust` verifies it."""
    addr = lab.addr[host]
    cert = edge_cert(lab, host)
    spec.setdefault("link_secret", LINK_SECRET)
    edge = start_edge(
        lab,
        upstreams,
        host,
        port=EDGE_TLS_PORT,
        scheme="https",
        listen=f"{addr}:{EDGE_PORT}",
        tls=Tls(cert.cert, cert.key, listen=f"{addr}:{EDGE_TLS_PORT}"),
        **spec,
    )
    edge.cert = cert
    return edge


def start_edge(
    lab: Lab,
    upstreams: list[str],
    host: str = "edge",
    *,
    port: int = EDGE_PORT,
    scheme: str = "http",
    **spec: Any,
) -> LabEdge:
    """nginx from ``pnyx.edge.render`` on ``host``:``port`` in front of ``upstreams``
    (``ADDR:PORT``); ``spec`` passes further ``EdgeSpec`` fields (``listen`` too, to
    listen elsewhere than ADDR:port). Ready once ``port`` accepts connections; its URL
    is ``scheme://ADDR:port``."""
    nginx = require_binary("nginx", "/usr/sbin")
    # Workers run as an unprivileged user: the cache cannot be under a private folder.
    root = Path(tempfile.mkdtemp(prefix="pnyxlab-edge-"))
    root.chmod(0o755)
    cache = root / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    lab.on_teardown(lambda: shutil.rmtree(root, ignore_errors=True))
    addr = lab.addr[host]
    conf = root / "nginx.conf"
    spec.setdefault("listen", f"{addr}:{port}")
    edge_spec = EdgeSpec(
        upstreams=tuple(upstreams), cache_dir=cache, state_dir=root / "state", **spec
    )
    create_folders(edge_spec)
    conf.write_text(render(edge_spec))
    log = root / "nginx.log"
    with log.open("wb") as out:
        proc = lab.spawn(
            host,
            [nginx, "-e", "stderr", "-p", str(root), "-c", str(conf), "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_port(lab, host, port, proc, "nginx", log)
    edge = LabEdge(f"{scheme}://{addr}:{port}", edge_spec, root, conf, proc, log, nginx)
    edge.http_url = f"http://{edge_spec.listen}"
    return edge


# -- TURN host ---------------------------------------------------------------------------
@dataclass
class LabTurn:
    addr: str
    port: int
    secret: str
    realm: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def urls(self) -> list[str]:
        return [
            f"turn:{self.addr}:{self.port}?transport=udp",
            f"turn:{self.addr}:{self.port}?transport=tcp",
        ]

    def allocated_for(self, handle: str) -> list[str]:
        """The relay allocations coturn made for TURN REST credentials minted for
        ``handle`` (usernames ``<expiry>:<handle>``), from its log."""
        log = self.log.read_text(errors="replace")
        return [u for u in ALLOCATED.findall(log) if u.endswith(f":{handle}")]

    def credentials(self, user: str, ttl_s: int = 3600) -> tuple[str, str]:
        return turn_credentials(self.secret, user, ttl_s)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def turn_credentials(
    secret: str, user: str, ttl_s: int = 3600, now: float | None = None
) -> tuple[str, str]:
    """Time-limited TURN credentials for coturn's ``--use-auth-secret`` (the TURN REST
    scheme): username ``<expiry>:<user>``, password base64(HMAC-SHA1(secret, username))."""
    username = f"{int((now if now is not None else time.time()) + ttl_s)}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def start_turn(
    lab: Lab,
    host: str = "turn",
    secret: str = TURN_SECRET,
    peers: tuple[str, ...] = ("node-a", "node-b"),
) -> LabTurn:
    """coturn on ``host``:3478 (UDP and TCP, no TLS), relaying from the same address, and
    only to the ``peers`` hosts (the node hosts: a TURN server for Pnyx relays speakers to
    the stage nodes and to nothing else)."""
    binary = require_binary("turnserver", "/usr/bin")
    addr = lab.addr[host]
    allowed = [f"--allowed-peer-ip={lab.addr[p]}" for p in peers]
    log = lab.workdir / "turnserver.log"
    low, high = TURN_RELAY_PORTS
    argv = [
        binary,
        "-n",  # no configuration file: everything is here
        *("--listening-ip", addr, "--relay-ip", addr, "--listening-port", str(TURN_PORT)),
        "--use-auth-secret", f"--static-auth-secret={secret}", f"--realm={TURN_REALM}",
        "--no-tls", "--no-dtls", "--fingerprint", "--no-cli", "--no-multicast-peers",
        *("--min-port", str(low), "--max-port", str(high)),
        "--denied-peer-ip=0.0.0.0-255.255.255.255", *allowed,
        "--log-file", "stdout", "--simple-log", "--verbose",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = lab.spawn(host, argv, stdout=out, stderr=subprocess.STDOUT)
    _wait_port(lab, host, TURN_PORT, proc, "turnserver", log)
    return LabTurn(addr, TURN_PORT, secret, TURN_REALM, proc, log)


def stun_mapped_address(
    server: str, port: int = TURN_PORT, timeout: float = 2.0
) -> tuple[str, int]:
    """A STUN Binding request over UDP (RFC 5389); the XOR-MAPPED-ADDRESS the server saw
    us from. Raises TimeoutError when no answer comes (the request or answer dropped)."""
    cookie = 0x2112A442
    txid = secrets.token_bytes(12)
    request = struct.pack("!HHI", 0x0001, 0, cookie) + txid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(request, (server, port))
        while True:
            data, _ = s.recvfrom(2048)
            if data[8:20] == txid:
                break
    pos = 20
    while pos + 4 <= len(data):
        kind, length = struct.unpack_from("!HH", data, pos)
        value = data[pos + 4 : pos + 4 + length]
        if kind == 0x0020 and value[1] == 0x01:  # XOR-MAPPED-ADDRESS, IPv4
            xport = struct.unpack_from("!H", value, 2)[0] ^ (cookie >> 16)
            xaddr = struct.unpack_from("!I", value, 4)[0] ^ cookie
            return socket.inet_ntoa(struct.pack("!I", xaddr)), xport
        pos += 4 + (length + 3) // 4 * 4
    raise ValueError(f"no XOR-MAPPED-ADDRESS in the answer: {data!r}")


# -- everything ------------------------------------------------------------------------
@dataclass
class Stack:
    redis: str
    postgres: LabPostgres
    nodes: dict[str, PnyxProcess]
    edge: LabEdge
    turn: LabTurn | None


def start_stack(
    lab: Lab,
    *,
    turn: bool = True,
    tls: bool = True,
    settings: Mapping[str, str] | None = None,
    fast: bool = True,
) -> Stack:
    """Redis and PostgreSQL on db, a node on node-a and on node-b, the edge in front of
    both, and coturn (unless ``turn=False``), with the settings of docs/deploy.md: each
    node gets :func:`node_settings` (then ``settings``), the edge serves HTTPS
    (:func:`start_https_edge`; ``tls=False``: plain HTTP on port 80) and checks signed
    links with the nodes' link secret."""
    redis_url = start_redis(lab)
    pg = start_postgres(lab)
    nodes = {
        host: start_node(
            lab,
            host,
            database=pg.url,
            redis=redis_url,
            settings={**node_settings(lab, host, turn=turn), **(settings or {})},
            fast=fast,
        )
        for host in ("node-a", "node-b")
    }
    upstreams = [n.url.removeprefix("http://") for n in nodes.values()]
    edge = (
        start_https_edge(lab, upstreams)
        if tls
        else start_edge(lab, upstreams, link_secret=LINK_SECRET)
    )
    return Stack(redis_url, pg, nodes, edge, start_turn(lab) if turn else None)
