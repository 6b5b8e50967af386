"""Start real ``pnyx serve`` processes for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.poll import wait_until
from tests.support.procs import free_port, stop

# Fast clocks so that counts, grace periods and leases move within a test's patience.
FAST = {
    "heartbeat_s": "1",
    "presence_bucket_s": "0.5",
    "presence_window_s": "2",
    "state_tick_s": "0.2",
    "lease_ttl_s": "1",
    "stage_presence_ttl_s": "3",
    "state_wait_s": "5",
    # Spaces are captioned only where a test asks ("captions": true at create): tests
    # publish tones, which a recogniser would work on for nothing.
    "captions_default": "false",
}

SECRET = "test-secret-shared-by-all-nodes-0123456789"

# Tests and benchmarks sign many accounts up and in from one address: the account rate
# limits are out of their way unless a test sets them (tests/e2e/test_account_abuse.py).
ACCOUNTS_UNLIMITED = {
    "signup_address_burst": "100000",
    "signup_address_per_min": "100000",
    "signin_address_burst": "100000",
    "signin_address_per_min": "100000",
    "signin_handle_burst": "100000",
    "signin_handle_per_min": "100000",
}


class PnyxProcess:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.log = log

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=20.0, **kw)  # type: ignore[arg-type]

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def healthy(self) -> bool:
        """Whether /healthz answers 200 yet (for wait_until); raises, with the node's
        output, if the process has exited."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"pnyx serve at {self.url} exited early:\n{self.output()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False


@contextmanager
def pnyx_serve(
    data_dir: Path,
    *,
    database: str | None = None,
    redis: str | None = None,
    settings: Mapping[str, str] | None = None,
    fast: bool = True,
    log_level: str | None = None,
) -> Iterator[PnyxProcess]:
    """A ``pnyx serve`` on a free loopback port, healthy when this yields. ``fast``: the
    quick clocks tests want (FAST); benchmarks use the production defaults."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNYX_")}
    chosen = {**ACCOUNTS_UNLIMITED, **(FAST if fast else {}), **(settings or {})}
    env.update({f"PNYX_{k.upper()}": v for k, v in chosen.items()})
    env["PNYX_SECRET"] = SECRET
    env["PNYX_SERVE_WEB"] = "true"
    args = [sys.executable, "-m", "pnyx.cli", "serve", "--port", str(port)]
    args += ["--data-dir", str(data_dir)]
    if database:
        args += ["--database", database]
    if redis:
        args += ["--redis", redis]
    if log_level:
        args += ["--log-level", log_level]
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"pnyx-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    server = PnyxProcess(proc, url, log)
    try:
        wait_until(server.healthy, 30, "pnyx serve to be healthy", ignoring=(OSError,))
        yield server
    finally:
        stop(proc, within=15)
        out = server.output()
        # A node must never crash or log a traceback, whatever the tests threw at it.
        assert "Traceback" not in out, out
