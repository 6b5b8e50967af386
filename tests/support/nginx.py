"""A real nginx edge, configured by ``pnyx edge-config``, on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pnyx.edge import EdgeSpec, render
from tests.support.poll import wait_until
from tests.support.procs import free_port, port_open, require_binary


class Edge:
    def __init__(self, url: str, conf: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.conf = conf
        self.proc = proc
        self.log = log


@contextmanager
def nginx_edge(upstreams: Sequence[str]) -> Iterator[Edge]:
    nginx = require_binary("nginx", "/usr/sbin")
    # Workers run as an unprivileged user when the tests run as root: the cache must be
    # reachable by them, so it cannot live under pytest's private tmp_path.
    root = Path(tempfile.mkdtemp(prefix="pnyx-edge-"))
    root.chmod(0o755)
    cache = root / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(render(EdgeSpec(f"127.0.0.1:{port}", tuple(upstreams), cache_dir=cache)))
    log = root / "nginx.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [nginx, "-e", "stderr", "-p", str(root), "-c", str(conf), "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {log.read_text()}")
            return port_open(port)

        wait_until(up, 10, "nginx to listen", ignoring=(OSError,))
        yield Edge(f"http://127.0.0.1:{port}", conf, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)
        if os.environ.get("PNYX_KEEP_EDGE_LOG"):
            print(log)
