"""Shared by the live-audio benches (latency_listener.py, latency_stage.py,
stage_cpu.py): one ``pnyx serve`` process on loopback with its default settings, accounts
seated on a stage and the machine's description. Not a bench itself. (Percentiles:
``pnyx.loadtest.stats.percentile``, the one rule every bench uses.)

The audio clients come from the test harness (tests/support/webrtc.py, hls.py, tones.py),
so the benches measure exactly what the end-to-end tests check.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the harness lives in tests/support
    sys.path.insert(0, str(ROOT))

from tests.support import hls, netlab, poll, speech, tones, webrtc  # noqa: E402
from tests.support.nginx import nginx_running  # noqa: E402
from tests.support.pnyx_server import PnyxProcess, pnyx_serve  # noqa: E402

__all__ = [
    "hls",
    "netlab",
    "nginx_running",
    "poll",
    "speech",
    "tones",
    "webrtc",
]  # the benches import the harness from here


@contextmanager
def pnyx_node(
    *, log_level: str = "warning", env_settings: dict[str, str] | None = None
) -> Iterator[PnyxProcess]:
    """One ``pnyx serve`` (embedded default: SQLite, memory live state) on a free port,
    with the production defaults unless ``env_settings`` (PNYX_* without the prefix).
    The same launcher as the end-to-end tests, without their fast clocks."""
    with (
        tempfile.TemporaryDirectory(prefix="pnyx-bench-") as tmp,
        pnyx_serve(Path(tmp), settings=env_settings, fast=False, log_level=log_level) as node,
    ):
        yield node


@dataclass(frozen=True)
class Account:
    handle: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def account(c: httpx.Client, handle: str) -> Account:
    creds = {"handle": handle, "password": "benchmark passphrase"}
    c.post("/v1/accounts", json=creds).raise_for_status()
    r = c.post("/v1/sessions", json=creds)
    r.raise_for_status()
    return Account(handle, r.json()["token"])


def stage(
    c: httpx.Client, cohosts: int = 0, speakers: int = 0, *, prefix: str = "bench"
) -> tuple[str, list[Account]]:
    """A live space with a host, ``cohosts`` co-hosts and ``speakers`` speakers seated
    (invited and accepted). Returns the space id and the accounts, host first. Their
    handles begin with ``prefix`` (another prefix for each stage on one node)."""
    host = account(c, f"{prefix}_host")
    r = c.post("/v1/spaces", json={"title": "bench"}, headers=host.auth)
    r.raise_for_status()
    space = str(r.json()["id"])
    members = [host]
    for role, count in (("cohost", cohosts), ("speaker", speakers)):
        for i in range(count):
            who = account(c, f"{prefix}_{role}_{i}")
            c.put(
                f"/v1/spaces/{space}/members/{who.handle}/role",
                json={"role": role},
                headers=host.auth,
            ).raise_for_status()
            c.post(
                f"/v1/spaces/{space}/invitation", json={"accept": True}, headers=who.auth
            ).raise_for_status()
            members.append(who)
    return space, members


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.machine()}, {os.cpu_count()} cores ({model}), "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
