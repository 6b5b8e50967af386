"""Shared by the scale benches (edge_origin.py, rehearsal.py, joinstorm.py): a whole
deployment on loopback — a real Redis, one ``pnyx serve`` on it with production clocks, a
real nginx edge from ``pnyx edge-config`` in front, and a host publishing a tone over
WebRTC so that media flows — plus the meters the benches read: the origin's request
counters, CPU seconds of every process, Redis's command count. Not a bench itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from pnyx.edge_frontrow import PUBLISH_PREFIX, FrontRow

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the harness lives in tests/support
    sys.path.insert(0, str(ROOT))

from tests.support import webrtc  # noqa: E402
from tests.support.nginx import Edge, nginx_edge  # noqa: E402
from tests.support.pnyx_server import PnyxProcess, pnyx_serve  # noqa: E402
from tests.support.procs import free_port  # noqa: E402
from tests.support.redis_server import redis_server  # noqa: E402
from tests.support.tls import Cert  # noqa: E402

from latency_support import Account, account, cpu_seconds, machine  # noqa: E402

PNYX = str(Path(sys.executable).with_name("pnyx"))


class Speaker:
    """The host publishing a tone from a thread of its own (aiortc needs a loop)."""

    def __init__(self, url: str, space: str, token: str, hz: float = 440.0) -> None:
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        args = (url, space, token, hz)
        self._thread = threading.Thread(target=self._run, args=args, daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self.error:
            raise RuntimeError(f"the host could not publish: {self.error}")

    def _run(self, url: str, space: str, token: str, hz: float) -> None:
        async def main() -> None:
            try:
                speaker = await webrtc.publish(url, space, token, webrtc.ToneTrack(hz))
                await speaker.connected()
            except BaseException as exc:
                self.error = exc
                self._ready.set()
                return
            self._ready.set()
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._stop.wait)
            finally:
                await speaker.close()

        asyncio.run(main())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


@dataclass
class Deployment:
    origin: PnyxProcess
    edge: Edge
    redis_url: str
    space: str
    host: Account
    edge_port: int = 0  # the edge's plain-HTTP port (the front row's WebSockets)
    frontrow: bool = False

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the origin, the edge (master + workers) and Redis."""
        out = {"origin": cpu_seconds(self.origin.pid)}
        out["edge"] = sum(cpu_seconds(p) for top in self.edge.pids for p in descendants(top))
        out["redis"] = redis_cpu(self.redis_url)
        return out


def family(pid: int) -> list[int]:
    """A process and its children (nginx's workers), from /proc."""
    kids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def descendants(pid: int) -> list[int]:
    """A process and all below it (varnishd's manager → its child → nothing more)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [k for k in family(p) if k != p]
    return out


def redis_cpu(url: str) -> float:
    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_commands(url: str) -> int:
    return int(redis.Redis.from_url(url).info("stats")["total_commands_processed"])


_SAMPLE = re.compile(r'^pnyx_http_requests_total\{method="([A-Z]+)",route="([^"]*)",status="(\d+)"')


def origin_requests(url: str) -> dict[tuple[str, str], float]:
    """The origin's request counters, by (method, route template), over all statuses."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            key = (m.group(1), m.group(2))
            out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


@dataclass(frozen=True)
class Reading:
    """The meters at one moment."""

    at: float
    requests: dict[tuple[str, str], float]
    redis_commands: int
    cpu: dict[str, float]


def read(d: Deployment) -> Reading:
    return Reading(
        time.monotonic(), origin_requests(d.origin.url), redis_commands(d.redis_url), d.cpu()
    )


@dataclass(frozen=True)
class Window:
    """Rates between two readings."""

    seconds: float
    origin_by_route: dict[str, float]  # "METHOD /route/{template}" → requests/s
    cpu: dict[str, float]  # cores (CPU seconds per second)
    redis_commands_per_s: float

    @property
    def origin_reads_per_s(self) -> float:
        return sum(
            v
            for k, v in self.origin_by_route.items()
            if k.split(" ", 1)[0] in ("GET", "HEAD") and not k.endswith(("/metrics", "/healthz"))
        )

    def route(self, method: str, template: str) -> float:
        return self.origin_by_route.get(f"{method} {template}", 0.0)


def between(a: Reading, b: Reading) -> Window:
    seconds = b.at - a.at
    by_route = {
        f"{m} {route}": v for (m, route), v in rate(b.requests, a.requests, seconds).items() if v
    }
    cpu = {k: (b.cpu[k] - a.cpu[k]) / seconds for k in a.cpu}
    return Window(seconds, by_route, cpu, (b.redis_commands - a.redis_commands) / seconds)


def rate(after: dict[Any, float], before: dict[Any, float], seconds: float) -> dict[Any, float]:
    return {k: (v - before.get(k, 0.0)) / seconds for k, v in after.items()}


@contextmanager
def deployment(
    settings: dict[str, str] | None = None,
    *,
    tls: Cert | None = None,
    frontrow: bool = False,
    tone_hz: float | None = 440.0,
) -> Iterator[Deployment]:
    """Redis, one origin on it (production clocks), an nginx edge (HTTPS with HTTP/2 when
    given a certificate), a live space whose host publishes a ``tone_hz`` tone (None: the
    caller publishes as ``host``; nothing waits for media then).

    ``frontrow``: the edge with the front row (nchan, :class:`FrontRow`) and the origin
    posting every space's program to it (``frontrow_publish_urls``); subscribers connect to
    ``ws://…/frontrow/{space}`` on :attr:`Deployment.edge_port`."""
    settings = dict(settings or {})
    edge_port = free_port()  # known before the origin starts: it publishes to the edge
    if frontrow:
        settings.setdefault(
            "frontrow_publish_urls", f"http://127.0.0.1:{edge_port}{PUBLISH_PREFIX}"
        )
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pnyx-scale-")))
        (tmp / "redis").mkdir()
        url = stack.enter_context(redis_server(tmp / "redis"))
        origin = stack.enter_context(
            pnyx_serve(tmp / "node", redis=url, settings=settings, fast=False, log_level="warning")
        )
        host_port = origin.url.rsplit("/", 1)[1]
        front = FrontRow() if frontrow else None
        edge = stack.enter_context(nginx_edge([host_port], tls=tls, frontrow=front, port=edge_port))
        with httpx.Client(base_url=origin.url, timeout=20) as c:
            host = account(c, "bench_host")
            r = c.post("/v1/spaces", json={"title": "rehearsal"}, headers=host.auth)
            r.raise_for_status()
            space = str(r.json()["id"])
        if tone_hz is not None:
            speaker = Speaker(origin.url, space, host.token, tone_hz)
            stack.callback(speaker.close)
            wait_for_media(origin.url if tls else edge.url, space)
        yield Deployment(origin, edge, url, space, host, edge_port, frontrow)


def wait_for_media(url: str, space: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{url}/media/{space}/live.m3u8", timeout=10)
        if r.status_code == 200 and "#EXTINF" in r.text:
            return
        time.sleep(0.2)
    raise RuntimeError("no media from the space")


def loadtest(kind: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start ``pnyx loadtest KIND ARGS…`` (quiet); read its --json file when it is done."""
    return subprocess.Popen([PNYX, "loadtest", kind, "--quiet", *args])


def finish(proc: subprocess.Popen[bytes], json_path: Path, timeout: float) -> dict[str, Any]:
    code = proc.wait(timeout=timeout)
    if code != 0:
        raise RuntimeError(f"pnyx loadtest exited with {code}")
    return dict(json.loads(json_path.read_text()))


def plan(listeners: int, joins_per_s: float, *extra: str) -> dict[str, Any]:
    args = ["--listeners", str(listeners), "--joins-per-s", str(joins_per_s)]
    out = subprocess.run(
        [PNYX, "plan", *args, "--format", "json", *extra],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out))


def header(title: str) -> None:
    print(f"# {title}", flush=True)
    print(f"machine: {machine()}; {os.cpu_count()} cores", flush=True)
