"""Follower notifications at scale: what starting a space costs the host, and how soon
the followers hear of it, for hosts with 10, 10,000 (the fan-out threshold: the largest
fan-out on write) and 1,000,000 followers (fan-out on read).

    .venv/bin/python bench/notify_fanout.py [--followers 10,10000,1000000] [--rounds 10]
                                            [--database postgres|sqlite]

One ``pnyx serve`` process (production settings and clocks) on a real PostgreSQL that
this script starts (tests/support/postgres_server.py; durable settings unless
``--pg-fast``), or on the embedded SQLite default. The hosts and a sample of each host's
followers are real accounts made through the API (POST /v1/accounts, /v1/sessions); the
other followers are bulk-loaded straight into the real tables (pnyx.store.models), with
PostgreSQL's COPY, then VACUUM ANALYZE (what autovacuum does after a bulk load).
``--scatter`` instead spreads the biggest host's first follows over the table's pages and
leaves them not all-visible (no VACUUM, autovacuum off): the worst case for the capped
follower count that decides between the two fan-out paths.

Rounds are interleaved across the host sizes (one space per host per round, ended after
it; the first round is a warm-up, not counted). Per round and host:

* ``POST /v1/spaces/{id}/start`` on a scheduled space: the request the host waits on;
* delivery, timed from the start request: for fan-out on write, when the notification
  rows of ALL followers are in the database (polled from here) and when each sampled
  follower's ``GET /v1/notifications`` first shows the space; for fan-out on read, whether
  each sampled follower (first, last and random seeded ones) sees it on its first read;
* then ``GET /v1/notifications`` latency for a follower of the biggest host against one
  of the smallest host's, both hosts live.

``--push N`` gives N of each host's followers (all of a smaller host's) a browser push
subscription whose endpoint is a push service this script runs on loopback (it answers
201 and counts what it gets): the fan-out on write pushes its pages, and a host above the
threshold has its subscribed followers paged by the background job
(services/push_fanout.py). Each round then also waits until every subscribed follower's
push has arrived (so one round's pushes never overlap the next round's start) and
reports when.

Everything is bounded: rounds, samples, reads and every poll have a count or a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import create_engine, insert

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the harness lives in tests/support
    sys.path.insert(0, str(ROOT))

from tests.support.api import User  # noqa: E402
from tests.support.pnyx_server import PnyxProcess, pnyx_serve  # noqa: E402
from tests.support.postgres_server import (  # noqa: E402
    SUPERUSER,
    PostgresServer,
    _find_tools,
    _server_user,
)
from tests.support.procs import free_port  # noqa: E402

from pnyx.loadtest.stats import percentile  # noqa: E402
from pnyx.store.models import Account, Follow, Notification, PushSubscription  # noqa: E402

THRESHOLD = 10_000  # the production default of fanout_threshold (the server is not told)
PASSWORD = "benchmark passphrase"
NO_LOGIN_HASH = "$bench$seeded-account-no-password"  # argon2 refuses it: nobody logs in
DB_NAME = "pnyx_bench"
COPY_CHUNK = 100_000
SQLITE_CHUNK = 20_000
DELIVERY_DEADLINE_S = 120.0
POLL_S = 0.01
SWEEP_PAUSE_S = 0.05
FILLER = 120  # --scatter: other follows after each of a big host's first threshold + 1
READ_ROUNDS = 200  # GET /v1/notifications per reader in the read-path measurement


# -- servers ------------------------------------------------------------------------------
@contextmanager
def postgres(fast: bool, autovacuum: bool = True) -> Iterator[PostgresServer]:
    """initdb + pg_ctl start in a temporary folder on a free loopback port, as the test
    fixture does; durable (fsync, synchronous commit) unless ``fast``."""
    run_as = _server_user()
    root = Path(tempfile.mkdtemp(prefix="pnyx-bench-pg-"))
    if run_as is not None:
        shutil.chown(root, run_as, run_as)
    server = PostgresServer(tools=_find_tools(), root=root, port=free_port(), run_as=run_as)
    settings = "-c max_connections=200 -c timezone=UTC"
    if fast:
        settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if not autovacuum:
        settings += " -c autovacuum=off"
    try:
        server.run(
            "initdb",
            *("-D", str(server.data), "-U", SUPERUSER, "-A", "trust"),
            *("-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"),
        )
        options = f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 {settings}"
        server.run(
            "pg_ctl",
            *("start", "-w", "-t", "60", "-D", str(server.data)),
            *("-l", str(server.log), "-o", options),
            timeout=90,
        )
        server.psql(f"CREATE DATABASE {DB_NAME}")
        yield server
    finally:
        try:
            if (server.data / "postmaster.pid").exists():
                server.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(server.data))
        finally:
            shutil.rmtree(root, ignore_errors=True)


class PushSink:
    """A push service on loopback: answers 201 to every POST and counts them by the
    endpoint's host size (``/p/{followers}/{i}``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[int, int] = {}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                n = int(self.path.split("/")[2])
                with sink._lock:
                    sink._counts[n] = sink._counts.get(n, 0) + 1
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def count(self, n: int) -> int:
        with self._lock:
            return self._counts.get(n, 0)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def subscription_keys() -> tuple[str, str]:
    """One browser's p256dh and auth (every seeded subscription shares them: the node
    encrypts each message anyway)."""
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64(point), _b64(os.urandom(16))


def subscribed_ids(n: int, push: int) -> list[int]:
    """Which of host ``n``'s followers have a subscription: ``push`` of them, spread."""
    return list(range(n)) if push >= n else [k * n // push for k in range(push)]


# -- the database, seen from the bench ------------------------------------------------------
class Db:
    """Bulk loading and the notification counts, straight on the database."""

    async def copy(self, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    async def after_load(self, vacuum: bool) -> None:
        raise NotImplementedError

    async def max_notification_id(self) -> int:
        raise NotImplementedError

    async def notified(self, space: str, after_id: int) -> int:
        """Notification rows for ``space`` with an id above ``after_id`` (a PK range)."""
        raise NotImplementedError

    async def followers(self, host: str) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class PgDb(Db):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def copy(self, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> None:
        chunk: list[tuple[Any, ...]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == COPY_CHUNK:
                await self._conn.copy_records_to_table(table, records=chunk, columns=columns)
                chunk = []
        if chunk:
            await self._conn.copy_records_to_table(table, records=chunk, columns=columns)

    async def after_load(self, vacuum: bool) -> None:
        names = (Account.__tablename__, Follow.__tablename__, PushSubscription.__tablename__)
        tables = ", ".join(names)
        await self._conn.execute(f"{'VACUUM ' if vacuum else ''}ANALYZE {tables}")

    async def max_notification_id(self) -> int:
        table = Notification.__tablename__
        return int(await self._conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {table}"))

    async def notified(self, space: str, after_id: int) -> int:
        sql = f"SELECT count(*) FROM {Notification.__tablename__} WHERE id > $1 AND space_id = $2"
        return int(await self._conn.fetchval(sql, after_id, space))

    async def followers(self, host: str) -> int:
        sql = f"SELECT count(*) FROM {Follow.__tablename__} WHERE followee = $1"
        return int(await self._conn.fetchval(sql, host))

    async def close(self) -> None:
        await self._conn.close()


class SqliteDb(Db):
    """The embedded default: loaded through SQLAlchemy core (the models' own types),
    counted with the stdlib driver in a thread (short reads; the server's busy timeout
    covers them)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._engine = create_engine(f"sqlite:///{path}")
        self._tables = {t.__tablename__: t.__table__ for t in (Account, Follow, PushSubscription)}

    async def copy(self, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> None:
        def load() -> None:
            chunk: list[dict[str, Any]] = []
            for row in rows:
                chunk.append(dict(zip(columns, row, strict=True)))
                if len(chunk) == SQLITE_CHUNK:
                    with self._engine.begin() as conn:
                        conn.execute(insert(self._tables[table]), chunk)
                    chunk = []
            if chunk:
                with self._engine.begin() as conn:
                    conn.execute(insert(self._tables[table]), chunk)

        await asyncio.to_thread(load)

    async def after_load(self, vacuum: bool) -> None:
        await asyncio.to_thread(self._query, "ANALYZE")

    def _query(self, sql: str, *args: Any) -> int:
        with sqlite3.connect(self._path, timeout=10) as conn:
            row = conn.execute(sql, args).fetchone()
        return int(row[0]) if row else 0

    async def max_notification_id(self) -> int:
        sql = f"SELECT coalesce(max(id), 0) FROM {Notification.__tablename__}"
        return await asyncio.to_thread(self._query, sql)

    async def notified(self, space: str, after_id: int) -> int:
        sql = f"SELECT count(*) FROM {Notification.__tablename__} WHERE id > ? AND space_id = ?"
        return await asyncio.to_thread(self._query, sql, after_id, space)

    async def followers(self, host: str) -> int:
        sql = f"SELECT count(*) FROM {Follow.__tablename__} WHERE followee = ?"
        return await asyncio.to_thread(self._query, sql, host)

    async def close(self) -> None:
        self._engine.dispose()


# -- accounts -----------------------------------------------------------------------------
@dataclass
class Host:
    followers: int
    user: User
    sample: list[User]  # real accounts among the followers (first, last, random)
    sample_ids: list[int] = field(default_factory=list)


def host_handle(n: int) -> str:
    return f"host_{n}"


def follower_handle(n: int, i: int) -> str:
    return f"f{n}_{i:07d}"  # zero-padded: handle order is seeding order


async def api_user(c: httpx.AsyncClient, handle: str) -> User:
    creds = {"handle": handle, "password": PASSWORD}
    (await c.post("/v1/accounts", json=creds)).raise_for_status()
    r = await c.post("/v1/sessions", json=creds)
    r.raise_for_status()
    return User(handle, str(r.json()["token"]))


def sample_ids(n: int, size: int, rng: random.Random) -> list[int]:
    if n <= size:
        return list(range(n))
    middle = rng.sample(range(1, n - 1), size - 2)
    return [0, *sorted(middle), n - 1]


async def make_api_accounts(
    c: httpx.AsyncClient, sizes: list[int], sample: int, rng: random.Random
) -> dict[int, Host]:
    """The hosts and each host's sampled followers, through the API (argon2 and all)."""
    todo: list[tuple[int, int | None]] = []
    picked: dict[int, list[int]] = {}
    for n in sizes:
        todo.append((n, None))
        picked[n] = sample_ids(n, min(sample, n) if n > THRESHOLD else min(50, n), rng)
        todo += [(n, i) for i in picked[n]]
    sem = asyncio.Semaphore(2)  # two argon2 hashes at a time: the machine has 2 cores

    async def one(n: int, i: int | None) -> tuple[int, int | None, User]:
        async with sem:
            handle = host_handle(n) if i is None else follower_handle(n, i)
            return n, i, await api_user(c, handle)

    done = await asyncio.gather(*(one(n, i) for n, i in todo))
    hosts = {n: Host(n, u, []) for n, i, u in done if i is None}
    by_id = {(n, i): u for n, i, u in done if i is not None}
    for n in sizes:
        hosts[n].sample_ids = picked[n]
        hosts[n].sample = [by_id[n, i] for i in picked[n]]
    return hosts


def follow_rows(n: int, now: datetime, scatter: bool) -> Iterator[tuple[Any, ...]]:
    """Host ``n``'s follows in seeding order. ``scatter`` (hosts above the threshold):
    each of the first threshold + 1 is followed by FILLER rows of other follows, so the
    rows a capped count reads each sit on a heap page of their own, as a star's follows
    do in a table written over years."""
    for i in range(n):
        yield (follower_handle(n, i), host_handle(n), now)
        if scatter and n > THRESHOLD and i <= THRESHOLD:
            for k in range(FILLER):
                yield (follower_handle(n, i), f"filler_{k:03d}", now)


async def bulk_seed(
    db: Db, hosts: dict[int, Host], now: datetime, scatter: bool, push: int, sink: str
) -> int:
    """The other follower accounts, then every follow row (and ``push`` subscriptions per
    host, to ``sink``), straight into the tables; how many follow rows."""
    account_cols = ["handle", "display_name", "password_hash", "created_at"]
    follow_cols = ["follower", "followee", "created_at"]
    if scatter:
        fillers = ((f"filler_{k:03d}", "filler", NO_LOGIN_HASH, now) for k in range(FILLER))
        await db.copy(Account.__tablename__, account_cols, fillers)
    rows = 0
    for n, host in hosts.items():
        made = set(host.sample_ids)
        accounts = (
            (follower_handle(n, i), follower_handle(n, i), NO_LOGIN_HASH, now)
            for i in range(n)
            if i not in made
        )
        await db.copy(Account.__tablename__, account_cols, accounts)
        await db.copy(Follow.__tablename__, follow_cols, follow_rows(n, now, scatter))
        rows += n + (FILLER * (THRESHOLD + 1) if scatter and n > THRESHOLD else 0)
        if push:
            p256dh, auth = subscription_keys()
            subs = (
                (f"{sink}/p/{n}/{i}", follower_handle(n, i), p256dh, auth, now)
                for i in subscribed_ids(n, push)
            )
            push_cols = ["endpoint", "handle", "p256dh", "auth", "created_at"]
            await db.copy(PushSubscription.__tablename__, push_cols, subs)
    await db.after_load(vacuum=not scatter)
    return rows


# -- measuring ----------------------------------------------------------------------------
@dataclass
class Round:
    start_s: float
    all_s: float | None = None  # every follower's row stored (fan-out on write)
    seen_s: list[float] = field(default_factory=list)  # sampled followers, first seen
    first_read: int = 0  # sampled followers who saw it on their first read
    rows: int = 0  # notification rows stored for the space
    push_s: float | None = None  # every subscribed follower's push arrived (--push)


async def notifications(c: httpx.AsyncClient, who: User) -> list[dict[str, Any]]:
    r = await c.get("/v1/notifications", headers=who.auth)
    r.raise_for_status()
    return list(r.json()["notifications"])


async def watch_sample(c: httpx.AsyncClient, sample: list[User], space: str, t0: float) -> Round:
    """Sweep the sampled followers who have not seen ``space`` yet (one read each per
    sweep, a pause between sweeps) until all have, or the deadline."""
    out = Round(start_s=0.0)
    pending = {u.handle: u for u in sample}
    reads: dict[str, int] = {}
    deadline = time.perf_counter() + DELIVERY_DEADLINE_S
    while pending and time.perf_counter() < deadline:
        for handle, user in list(pending.items()):
            items = await notifications(c, user)
            reads[handle] = reads.get(handle, 0) + 1
            if any(item["space"] == space for item in items):
                out.seen_s.append(time.perf_counter() - t0)
                out.first_read += reads[handle] == 1
                del pending[handle]
        if pending:
            await asyncio.sleep(SWEEP_PAUSE_S)
    if pending:
        raise SystemExit(f"{len(pending)} sampled followers never saw space {space}")
    return out


async def wait_all_rows(db: Db, space: str, after_id: int, n: int, t0: float) -> float:
    deadline = time.perf_counter() + DELIVERY_DEADLINE_S
    while time.perf_counter() < deadline:
        if await db.notified(space, after_id) >= n:
            return time.perf_counter() - t0
        await asyncio.sleep(POLL_S)
    raise SystemExit(f"space {space}: not all {n} followers notified in {DELIVERY_DEADLINE_S} s")


async def new_scheduled_space(c: httpx.AsyncClient, host: User, title: str) -> str:
    when = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = await c.post(
        "/v1/spaces", json={"title": title, "scheduled_start": when}, headers=host.auth
    )
    r.raise_for_status()
    return str(r.json()["id"])


async def wait_pushes(sink: PushSink, n: int, before: int, expected: int, t0: float) -> float:
    deadline = time.perf_counter() + DELIVERY_DEADLINE_S
    while time.perf_counter() < deadline:
        if sink.count(n) - before >= expected:
            return time.perf_counter() - t0
        await asyncio.sleep(POLL_S)
    got = sink.count(n) - before
    raise SystemExit(f"host {n:,}: {got} of {expected} pushes in {DELIVERY_DEADLINE_S} s")


async def one_round(
    c: httpx.AsyncClient, db: Db, host: Host, label: str, sink: PushSink | None, push: int
) -> Round:
    space = await new_scheduled_space(c, host.user, label)
    after_id = await db.max_notification_id()
    pushed_before = sink.count(host.followers) if sink is not None else 0
    t0 = time.perf_counter()
    r = await c.post(f"/v1/spaces/{space}/start", headers=host.user.auth)
    start_s = time.perf_counter() - t0
    r.raise_for_status()
    assert r.json()["state"] == "live", r.json()
    sample = asyncio.create_task(watch_sample(c, host.sample, space, t0))
    if host.followers <= THRESHOLD:
        all_s: float | None = await wait_all_rows(db, space, after_id, host.followers, t0)
    else:
        all_s = None
    out = await sample
    out.start_s, out.all_s = start_s, all_s
    if sink is not None:
        expected = len(subscribed_ids(host.followers, push))
        out.push_s = await wait_pushes(sink, host.followers, pushed_before, expected, t0)
    if host.followers > THRESHOLD:
        await asyncio.sleep(0.2)  # a fan-out, were one (wrongly) started, would show by now
    out.rows = await db.notified(space, after_id)
    expected = host.followers if host.followers <= THRESHOLD else 0
    if out.rows != expected:
        raise SystemExit(f"space {space}: {out.rows} notification rows, expected {expected}")
    (await c.post(f"/v1/spaces/{space}/end", headers=host.user.auth)).raise_for_status()
    return out


async def read_latency(
    c: httpx.AsyncClient, db: Db, big: Host, small: Host, sink: PushSink | None, push: int
) -> dict[str, tuple[float, float, int]]:
    """``GET /v1/notifications`` (and ``/v1/following/live``) for a follower of each host,
    both hosts live, interleaved: p50, p95 (ms) and the number of items returned."""
    spaces = {}
    for host in (big, small):
        spaces[host.followers] = await new_scheduled_space(c, host.user, "reads")
        after_id = await db.max_notification_id()
        pushed_before = sink.count(host.followers) if sink is not None else 0
        t0 = time.perf_counter()
        (
            await c.post(f"/v1/spaces/{spaces[host.followers]}/start", headers=host.user.auth)
        ).raise_for_status()
        if host.followers <= THRESHOLD:
            await wait_all_rows(db, spaces[host.followers], after_id, host.followers, t0)
        if sink is not None:  # the pushes done before the reads are timed
            expected = len(subscribed_ids(host.followers, push))
            await wait_pushes(sink, host.followers, pushed_before, expected, t0)
    times: dict[str, list[float]] = {}
    items: dict[str, int] = {}
    readers = {f"{big.followers:,}": big.sample[0], f"{small.followers:,}": small.sample[0]}
    for i in range(READ_ROUNDS + 10):  # the first 10 of each: warm-up
        for name, who in readers.items():
            for path in ("/v1/notifications", "/v1/following/live"):
                t0 = time.perf_counter()
                r = await c.get(path, headers=who.auth)
                dt = time.perf_counter() - t0
                r.raise_for_status()
                if i >= 10:
                    times.setdefault(f"{path} {name}", []).append(dt * 1e3)
                body = r.json()
                items[f"{path} {name}"] = len(body.get("notifications", body.get("spaces", [])))
    for host in (big, small):
        (
            await c.post(f"/v1/spaces/{spaces[host.followers]}/end", headers=host.user.auth)
        ).raise_for_status()
    return {k: (percentile(v, 0.5), percentile(v, 0.95), items[k]) for k, v in times.items()}


# -- the run ------------------------------------------------------------------------------
@asynccontextmanager
async def database(kind: str, pg: PostgresServer | None, data_dir: Path) -> AsyncIterator[Db]:
    if kind == "postgres":
        assert pg is not None
        db: Db = PgDb(await asyncpg.connect(pg.url(DB_NAME)))
    else:
        db = SqliteDb(data_dir / "pnyx.db")
    try:
        yield db
    finally:
        await db.close()


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.machine()}, {os.cpu_count()} cores ({model}; shared VM), {mem:.0f} GiB, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )


def pg_version(pg: PostgresServer | None) -> str:
    if pg is None:
        return ""
    out = subprocess.run(
        [pg.tools["psql"], "--version"], capture_output=True, text=True, check=True, timeout=10
    ).stdout.split()  # psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)
    return f"PostgreSQL {out[2] if len(out) > 2 else '?'}"


async def run(
    args: argparse.Namespace, pg: PostgresServer | None, node: PnyxProcess, sink: PushSink | None
) -> None:
    sizes: list[int] = args.followers
    rng = random.Random(args.seed)
    data_dir = Path(args.data_dir)
    async with (
        database(args.database, pg, data_dir) as db,
        httpx.AsyncClient(base_url=node.url, timeout=60) as c,
    ):
        t = time.perf_counter()
        hosts = await make_api_accounts(c, sizes, args.sample, rng)
        api_s = time.perf_counter() - t
        n_api = sum(1 + len(h.sample) for h in hosts.values())
        print(f"API accounts: {n_api} (hosts + sampled followers) in {api_s:.1f} s", flush=True)
        t = time.perf_counter()
        origin = sink.origin if sink is not None else ""
        follows = await bulk_seed(db, hosts, datetime.now(UTC), args.scatter, args.push, origin)
        seed_s = time.perf_counter() - t
        n_rows = sum(sizes)
        print(
            f"bulk seed: {n_rows - sum(len(h.sample) for h in hosts.values()):,} accounts + "
            f"{follows:,} follows in {seed_s:.1f} s (incl. (VACUUM) ANALYZE)",
            flush=True,
        )
        for n, host in hosts.items():
            got = await db.followers(host.user.handle)
            assert got == n, (host.user.handle, got, n)

        results: dict[int, list[Round]] = {n: [] for n in sizes}
        t = time.perf_counter()
        for i in range(args.rounds + 1):
            for n in sizes:
                r = await one_round(c, db, hosts[n], f"bench {n} round {i}", sink, args.push)
                tag = "warm-up" if i == 0 else f"round {i}"
                extra = f", all notified {r.all_s:.2f} s" if r.all_s is not None else ""
                if r.push_s is not None:
                    extra += f", all pushed {r.push_s:.2f} s"
                print(
                    f"{tag}: {n:>9,} followers: start {r.start_s * 1e3:6.1f} ms{extra}, "
                    f"sample seen by {max(r.seen_s):.2f} s, first read {r.first_read}/"
                    f"{len(r.seen_s)}",
                    flush=True,
                )
                if i > 0:
                    results[n].append(r)
        rounds_s = time.perf_counter() - t
        big, small = hosts[max(sizes)], hosts[min(sizes)]
        reads = await read_latency(c, db, big, small, sink, args.push)
    report(args, pg, sizes, hosts, results, reads, (api_s, seed_s, rounds_s), follows)


def push_cell(rs: list[Round], n: int, push: int) -> str:
    pushed = [r.push_s for r in rs if r.push_s is not None]
    if not push or not pushed:
        return ""
    count = len(subscribed_ids(n, push))
    return f" {count:,}: {percentile(pushed, 0.5):.2f} s / {max(pushed):.2f} s |"


def report(
    args: argparse.Namespace,
    pg: PostgresServer | None,
    sizes: list[int],
    hosts: dict[int, Host],
    results: dict[int, list[Round]],
    reads: dict[str, tuple[float, float, int]],
    times: tuple[float, float, float],
    follows: int,
) -> None:
    api_s, seed_s, rounds_s = times
    med = {n: percentile((r.start_s for r in results[n]), 0.5) * 1e3 for n in sizes}
    p95 = {n: percentile((r.start_s for r in results[n]), 0.95) * 1e3 for n in sizes}
    ratio = med[max(sizes)] / med[min(sizes)]
    loader = "SQLAlchemy core, then ANALYZE"
    if pg is not None:
        loader = "COPY, then ANALYZE" if args.scatter else "COPY, then VACUUM ANALYZE"
    if args.scatter:
        loader += (
            f"; `--scatter`: {FILLER} other follows after each of the biggest host's first "
            f"{THRESHOLD + 1:,}, no VACUUM, autovacuum off: the worst case for a capped count"
        )
    store = f"{pg_version(pg)} ({'fsync off' if args.pg_fast else 'durable defaults'})"
    if pg is None:
        store = "SQLite (embedded default)"
    cmd = " ".join(sys.argv[1:])
    command = f".venv/bin/python bench/notify_fanout.py {cmd}".strip()
    lines = [
        "## Follower notifications (`POST /v1/spaces/{id}/start`, fan-out)",
        "",
        f"Command: `{command}`. One `pnyx serve` (production settings: "
        f"`fanout_threshold` {THRESHOLD:,}, `fanout_batch` 1,000) on {store}, on loopback. "
        f"{args.rounds} measured rounds after one warm-up, interleaved across the hosts; a "
        "new scheduled space per round, started, then ended."
        + (
            f" `--push {args.push}`: that many of each host's followers (all of a smaller "
            "host's) have a push subscription to a push service on loopback; each round "
            "waits for all their pushes."
            if args.push
            else ""
        ),
        "",
        f"Machine: {machine()}; 1-minute load average at the end {os.getloadavg()[0]:.2f}.",
        "",
        f"Seeding: {sum(1 + len(h.sample) for h in hosts.values())} accounts through the API "
        f"(hosts and sampled followers) in {api_s:.0f} s; "
        f"{sum(sizes) - sum(len(h.sample) for h in hosts.values()):,} accounts and "
        f"{follows:,} follows bulk-loaded in {seed_s:.0f} s ({loader}). "
        f"Rounds: {rounds_s:.0f} s.",
        "",
        "| followers | path | start p50 | start p95 | start min | rounds (ms) | all followers "
        "notified (p50 / max) | sampled followers saw it (p50 / max) | on first read |"
        + (" subscribed followers pushed (p50 / max) |" if args.push else ""),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if args.push else ""),
    ]
    for n in sizes:
        rs = results[n]
        path = "write" if n <= THRESHOLD else "read"
        alls = [r.all_s for r in rs if r.all_s is not None]
        all_cell = f"{percentile(alls, 0.5):.2f} s / {max(alls):.2f} s" if alls else "— (no rows)"
        seen = [max(r.seen_s) for r in rs]
        first = sum(r.first_read for r in rs)
        total = sum(len(r.seen_s) for r in rs)
        lines.append(
            f"| {n:,} | {path} | {med[n]:.1f} ms | {p95[n]:.1f} ms | "
            f"{min(r.start_s for r in rs) * 1e3:.1f} ms | "
            f"{', '.join(f'{r.start_s * 1e3:.1f}' for r in rs)} | {all_cell} | "
            f"{percentile(seen, 0.5):.2f} s / {max(seen):.2f} s "
            f"({len(hosts[n].sample)} sampled) | {first}/{total} |" + push_cell(rs, n, args.push)
        )
    lines += [
        "",
        f"Start ratio, {max(sizes):,} vs {min(sizes):,} followers (medians, this run): "
        f"**{ratio:.2f}** (goal ≤ 1.2).",
        "",
        f"Read path, both hosts live ({READ_ROUNDS} interleaved requests per row, after "
        "10 warm-up):",
        "",
        "| request | reader follows a host with | p50 | p95 | items returned |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, (p50, p95_, count) in reads.items():
        path, who = key.split(" ", 1)
        lines.append(f"| `GET {path}` | {who} followers | {p50:.1f} ms | {p95_:.1f} ms | {count} |")
    print()
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--followers",
        type=lambda s: sorted(int(x) for x in s.split(",")),
        default=[10, THRESHOLD, 1_000_000],
        help="host sizes, comma-separated (default 10,10000,1000000)",
    )
    ap.add_argument("--rounds", type=int, default=10, help="measured rounds (after 1 warm-up)")
    ap.add_argument("--sample", type=int, default=200, help="sampled followers of big hosts")
    ap.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--pg-fast", action="store_true", help="PostgreSQL with fsync off")
    ap.add_argument("--seed", type=int, default=5, help="random seed for the sample")
    ap.add_argument(
        "--scatter",
        action="store_true",
        help="spread big hosts' first follows over the heap, no VACUUM (worst case)",
    )
    ap.add_argument(
        "--push",
        type=int,
        default=0,
        help="followers per host with a push subscription (to a push service run here)",
    )
    args = ap.parse_args()
    if not 1 <= args.rounds <= 50 or not 2 <= args.sample <= 1000:
        raise SystemExit("--rounds is 1 to 50, --sample 2 to 1000")
    if any(n < 1 or n > 5_000_000 for n in args.followers):
        raise SystemExit("--followers: each 1 to 5,000,000")
    if not 0 <= args.push <= 100_000:
        raise SystemExit("--push is 0 to 100,000")
    # One new space per host per round: the per-account creation limit out of the way.
    settings = {"space_creations_per_hour": "1000000", "space_creation_burst": "1000000"}
    if args.push:
        settings["push_allow_http"] = "true"  # the push service here speaks plain HTTP
    sink = PushSink() if args.push else None
    try:
        serve(args, settings, sink)
    finally:
        if sink is not None:
            sink.close()


def serve(args: argparse.Namespace, settings: dict[str, str], sink: PushSink | None) -> None:
    pg_cm = None
    if args.database == "postgres":
        pg_cm = postgres(args.pg_fast, autovacuum=not args.scatter)
    with tempfile.TemporaryDirectory(prefix="pnyx-bench-") as tmp:
        args.data_dir = tmp
        if pg_cm is None:
            with pnyx_serve(Path(tmp), settings=settings, fast=False, log_level="warning") as node:
                asyncio.run(run(args, None, node, sink))
            return
        with (
            pg_cm as pg,
            pnyx_serve(
                Path(tmp),
                database=pg.url(DB_NAME),
                settings=settings,
                fast=False,
                log_level="warning",
            ) as node,
        ):
            asyncio.run(run(args, pg, node, sink))


if __name__ == "__main__":
    main()
