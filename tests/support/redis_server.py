"""A real Redis for the tests (a pytest plugin, listed in tests/conftest.py).

``redis_url`` starts one ``redis-server`` per session on a free loopback port, with no
persistence, and stops it when the session ends. ``redis_clean_url`` is the same URL after
emptying the server, for tests that must start from nothing. Without redis-server the
tests that need it skip locally and FAIL under CI=true (``procs.require_binary``).

``sentinel_cluster`` starts a primary, a replica and three Sentinels (quorum 2), each
Sentinel with its own writable config file (Sentinel rewrites it), and yields a
:class:`SentinelCluster` once every Sentinel sees the primary, the replica and the two
other Sentinels. ``redis_sentinel`` is one per session (slow to fail over: for the
contract suite); tests that kill a primary start their own. The Sentinels are
``redis-server --sentinel`` (what the ``redis-sentinel`` command is), so redis-server is
all they need.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support.poll import Seen, wait_until
from tests.support.procs import free_port, port_open, require_binary, stop


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _spawn(args: list[str], port: int, log_path: Path, what: str) -> subprocess.Popen[bytes]:
    """Start a redis-server (or Sentinel) and wait until it answers PING on ``port``."""
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        return port_open(port) and _answers(url)

    try:
        wait_until(ready, 15.0, f"{what} on port {port}", ignoring=(OSError,))
    except (AssertionError, RuntimeError) as exc:
        stop(proc)
        raise RuntimeError(f"{what} did not start: {exc}\n{_log_tail(log_path)}") from exc
    return proc


def _server_args(binary: str, workdir: Path, port: int, name: str, *extra: str) -> list[str]:
    return [
        binary,
        "--save", "",
        "--appendonly", "no",
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(workdir),
        "--dbfilename", f"{name}.rdb",
        "--logfile", str(workdir / f"{name}.log"),
        "--repl-diskless-sync-delay", "0",  # a replica syncs at once (default: after 5 s)
        *extra,
    ]  # fmt: skip


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port (no persistence); yields its URL."""
    binary = require_binary("redis-server")
    port = free_port()
    args = _server_args(binary, workdir, port, "redis")
    proc = _spawn(args, port, workdir / "redis.log", "redis-server")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)


SENTINEL_SERVICE = "pnyx-primary"


@dataclass
class SentinelCluster:
    """A primary, its replica and three Sentinels, all on loopback, run by a test."""

    workdir: Path
    service: str
    sentinel_ports: list[int]
    servers: dict[int, subprocess.Popen[bytes]]  # redis-servers (not Sentinels) by port
    sentinels: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The Sentinel URL for ``--redis`` (all three Sentinels)."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def primary_port(self, sentinel_port: int | None = None) -> int:
        """The primary's port as a Sentinel (the first, unless named) says now
        (``SENTINEL get-master-addr-by-name``)."""
        client = redis.Redis(
            host="127.0.0.1",
            port=sentinel_port or self.sentinel_ports[0],
            socket_connect_timeout=1.0,
            socket_timeout=1.0,
        )
        try:
            addr = client.execute_command("SENTINEL", "get-master-addr-by-name", self.service)
        finally:
            client.close()
        return int(addr[1])

    def primary(self) -> redis.Redis:
        """A plain client on the current primary (close it)."""
        return redis.Redis(host="127.0.0.1", port=self.primary_port(), socket_timeout=5.0)

    def kill_primary(self) -> int:
        """SIGKILL the current primary (no goodbye to anyone); returns its port."""
        port = self.primary_port()
        proc = self.servers[port]
        proc.kill()
        proc.wait(timeout=10)
        return port

    def wait_promoted(self, old_port: int, within: float = 30.0) -> int:
        """Wait until every Sentinel names a primary other than ``old_port``, and that
        primary takes writes; returns its port."""

        def promoted() -> int | Seen:
            ports = {self.primary_port(p) for p in self.sentinel_ports}
            if len(ports) != 1 or old_port in ports:
                return Seen(False, f"Sentinels name {sorted(ports)}")
            (port,) = ports
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
            try:
                role = client.execute_command("ROLE")[0]
            finally:
                client.close()
            return port if role == b"master" else Seen(False, f"{port} is still a {role!r}")

        promoted_port: int = wait_until(
            promoted, within, "the Sentinels to promote the replica", ignoring=(redis.RedisError,)
        )
        return promoted_port


def _wait_replica_synced(replica_port: int) -> None:
    def synced() -> Seen:
        client = redis.Redis(host="127.0.0.1", port=replica_port, socket_timeout=1.0)
        try:
            info = client.info("replication")
        finally:
            client.close()
        link = info.get("master_link_status")
        return Seen(link == "up", f"replica link {link!r}")

    wait_until(synced, 20.0, "the replica to sync", ignoring=(redis.RedisError,))


def _sentinel_config(
    port: int, primary_port: int, service: str, workdir: Path, down_after_ms: int
) -> str:
    return "\n".join(
        [
            f"port {port}",
            "bind 127.0.0.1",
            "daemonize no",
            f"dir {workdir}",
            f"logfile {workdir / f'sentinel-{port}.log'}",
            f"sentinel monitor {service} 127.0.0.1 {primary_port} 2",
            f"sentinel down-after-milliseconds {service} {down_after_ms}",
            f"sentinel failover-timeout {service} {max(3 * down_after_ms, 3000)}",
            f"sentinel parallel-syncs {service} 1",
            "",
        ]
    )


def _wait_sentinels_see_all(cluster: SentinelCluster, within: float = 30.0) -> None:
    """Every Sentinel knows the primary (up), the replica and the two other Sentinels:
    only then can they agree that the primary is down and elect a leader."""

    def everyone_sees_everyone() -> Seen:
        views = []
        for port in cluster.sentinel_ports:
            client = redis.Redis(
                host="127.0.0.1", port=port, socket_timeout=1.0, decode_responses=True
            )
            try:
                master = client.sentinel_master(cluster.service)
                replicas = client.sentinel_slaves(cluster.service)
            finally:
                client.close()
            up = [r for r in replicas if not r["is_sdown"] and not r["is_odown"]]
            views.append(
                (
                    port,
                    bool(master["is_master"]) and not master["is_sdown"],
                    len(up),
                    int(master["num-other-sentinels"]),
                )
            )
        ok = all(v[1:] == (True, 1, 2) for v in views)
        return Seen(ok, f"(sentinel, primary up, replicas up, other sentinels): {views}")

    wait_until(
        everyone_sees_everyone,
        within,
        "the Sentinels to see the primary, the replica and each other",
        interval=0.2,
        ignoring=(redis.RedisError,),
    )


@contextmanager
def sentinel_cluster(workdir: Path, *, down_after_ms: int = 1000) -> Iterator[SentinelCluster]:
    """A primary, a replica (``--replicaof``) and three Sentinels (quorum 2) on free
    loopback ports, ready when this yields, all stopped at the end. A primary that does
    not answer for ``down_after_ms`` is failed over."""
    binary = require_binary("redis-server")
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = SentinelCluster(workdir, SENTINEL_SERVICE, [], {})
    try:
        primary_port = free_port()
        cluster.servers[primary_port] = _spawn(
            _server_args(binary, workdir, primary_port, "primary"),
            primary_port,
            workdir / "primary.log",
            "redis-server (primary)",
        )
        replica_port = free_port()
        cluster.servers[replica_port] = _spawn(
            _server_args(
                binary,
                workdir,
                replica_port,
                "replica",
                "--replicaof",
                "127.0.0.1",
                str(primary_port),
            ),
            replica_port,
            workdir / "replica.log",
            "redis-server (replica)",
        )
        _wait_replica_synced(replica_port)
        for _ in range(3):
            port = free_port()
            conf = workdir / f"sentinel-{port}.conf"  # writable: Sentinel rewrites it
            conf.write_text(
                _sentinel_config(port, primary_port, cluster.service, workdir, down_after_ms)
            )
            cluster.sentinel_ports.append(port)
            cluster.sentinels.append(
                _spawn(
                    [binary, str(conf), "--sentinel"],
                    port,
                    workdir / f"sentinel-{port}.log",
                    "redis-server --sentinel",
                )
            )
        try:
            _wait_sentinels_see_all(cluster)
        except AssertionError as exc:
            logs = "\n".join(
                _log_tail(workdir / f"sentinel-{p}.log", 10) for p in cluster.sentinel_ports
            )
            raise RuntimeError(f"{exc}\n{logs}") from exc
        yield cluster
    finally:
        for proc in [*cluster.sentinels, *cluster.servers.values()]:
            stop(proc)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_clean_url(redis_url: str) -> str:
    """``redis_url``, emptied first (FLUSHALL), so the test starts from nothing."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_url


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelCluster]:
    """One Sentinel-watched primary per session, slow to fail over (5 s): not for tests
    that kill servers (they start their own ``sentinel_cluster``)."""
    with sentinel_cluster(tmp_path_factory.mktemp("sentinel"), down_after_ms=5000) as cluster:
        yield cluster


@pytest.fixture
def redis_sentinel_clean_url(redis_sentinel: SentinelCluster) -> str:
    """The session cluster's Sentinel URL, its primary emptied first (FLUSHALL)."""
    client = redis_sentinel.primary()
    try:
        client.flushall()
    finally:
        client.close()
    return redis_sentinel.url
