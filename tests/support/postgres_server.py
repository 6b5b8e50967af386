"""A real PostgreSQL for the tests: one server per session (``postgres_url``), one fresh
database per test (``pg_database_url``).

The server is ``initdb`` + ``pg_ctl start`` in a temporary folder, listening on a free
loopback port (its unix socket in the same folder), with durability off for speed.
PostgreSQL refuses to run as root: when the tests do, the server runs as the
``postgres`` system user instead.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import IN_CI, free_port, require_binary

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "pnyx"
SERVER_USER_AS_ROOT = "postgres"
FAST_SETTINGS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=200 -c timezone=UTC"
)


@dataclass(frozen=True)
class PostgresServer:
    tools: dict[str, str]  # initdb, pg_ctl, psql → their paths
    root: Path  # the temporary folder: data/, the socket and the log
    port: int
    run_as: str | None  # a system user to run the server as, or None for ourselves

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def run(self, tool: str, *args: str, timeout: float = 60.0) -> None:
        """Run a server-side tool (initdb, pg_ctl) as the server's user."""
        user: dict[str, Any] = {}
        if self.run_as is not None:
            user = {"user": self.run_as, "group": self.run_as, "extra_groups": []}
        subprocess.run(
            [self.tools[tool], *args],
            cwd=self.root,  # the server user may not be allowed into our working directory
            check=True,
            capture_output=True,
            timeout=timeout,
            **user,
        )

    def psql(self, sql: str, database: str = "postgres") -> None:
        """Run one SQL command as the superuser (psql is a client: any user may run it)."""
        subprocess.run(
            [
                self.tools["psql"],
                "--no-psqlrc",
                "--quiet",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.root),
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )


def _find_tools() -> dict[str, str]:
    """The server's tools, taken from one installation: the folder ``initdb`` really
    lives in (PATH entries may be symlinks or Debian's version-picking wrappers)."""
    home = Path(require_binary("initdb", PG_BIN_GLOB)).resolve().parent
    tools = {}
    for name in ("initdb", "pg_ctl", "psql"):
        beside = home / name
        tools[name] = str(beside) if beside.exists() else require_binary(name, PG_BIN_GLOB)
    return tools


class NoServerUser(RuntimeError):
    pass


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER_AS_ROOT)
    except KeyError:
        raise NoServerUser(
            f"running as root and there is no {SERVER_USER_AS_ROOT!r} user to run PostgreSQL"
        ) from None
    return SERVER_USER_AS_ROOT


def _explain(exc: subprocess.CalledProcessError, server: PostgresServer) -> str:
    log = server.log.read_text(errors="replace") if server.log.exists() else ""
    out = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(
        errors="replace"
    )
    return f"{exc.cmd[0]} failed ({exc.returncode}):\n{out}\n--- server log ---\n{log}"


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server in a temporary folder until the block ends (the benches use it
    directly; the tests through the ``postgres_server`` fixture). A server that will not
    start raises RuntimeError with its log."""
    tools = _find_tools()
    run_as = _server_user()
    # Not under pytest's tmp_path: its parent folders are private to root (mode 0700).
    root = Path(tempfile.mkdtemp(prefix="pnyx-pg-"))
    if run_as is not None:
        shutil.chown(root, run_as, run_as)
    server = PostgresServer(tools=tools, root=root, port=free_port(), run_as=run_as)
    try:
        server.run(
            "initdb",
            *("-D", str(server.data), "-U", SUPERUSER, "-A", "trust"),
            *("-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"),
        )
        options = f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 {FAST_SETTINGS}"
        server.run(
            "pg_ctl",
            *("start", "-w", "-t", "60", "-D", str(server.data)),
            *("-l", str(server.log), "-o", options),
            timeout=90,
        )
        yield server
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(_explain(exc, server)) from exc
    finally:
        try:
            if (server.data / "postmaster.pid").exists():  # also after a failed start
                server.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(server.data))
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        with running_postgres() as server:
            yield server
    except NoServerUser as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The server's maintenance database, as the superuser (create databases from it)."""
    return postgres_server.url()


@pytest.fixture
def pg_database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"test_{secrets.token_hex(6)}"
    postgres_server.psql(f"CREATE DATABASE {name}")
    yield postgres_server.url(name)
    postgres_server.psql(f"DROP DATABASE {name} WITH (FORCE)")
