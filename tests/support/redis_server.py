"""A real Redis for the tests (a pytest plugin, listed in tests/conftest.py).

``redis_url`` starts one ``redis-server`` per session on a free loopback port, with no
persistence, and stops it when the session ends. ``redis_clean_url`` is the same URL after
emptying the server, for tests that must start from nothing. Without redis-server the
tests that need it skip locally and FAIL under CI=true (``procs.require_binary``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.support.procs import free_port, port_open, require_binary, wait_until


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


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port (no persistence); yields its URL."""
    binary = require_binary("redis-server")
    port = free_port()
    log_path = workdir / "redis.log"
    args = [
        binary,
        "--save", "",
        "--appendonly", "no",
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(workdir),
        "--logfile", str(log_path),
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {proc.returncode}")
            return port_open(port) and _answers(url)

        try:
            wait_until(ready, timeout=15.0, what=f"redis-server on port {port}")
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"redis-server did not start: {exc}\n{_log_tail(log_path)}") from exc
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


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
