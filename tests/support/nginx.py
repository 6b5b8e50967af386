"""A real nginx edge, configured by ``pnyx edge-config``, on a free loopback port; and
:func:`nginx_running`, the one way the tests and benches start an nginx process with a
config of their own and wait for it."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from pnyx.edge import EdgeSpec, Tls, create_folders, render, render_vcl, varnishd_command
from pnyx.edge_frontrow import FrontRow
from pnyx.edge_varnish import Collapse
from tests.support.poll import wait_until
from tests.support.procs import free_port, port_open, require_binary, stop
from tests.support.tls import Cert


@contextmanager
def nginx_running(
    conf: Path, ports: Sequence[int], *, log: Path, what: str = "nginx to listen"
) -> Iterator[subprocess.Popen[bytes]]:
    """nginx in the foreground with ``conf`` (its folder is the prefix), its startup
    errors and stderr in ``log``; returns once every port in ``ports`` (on loopback)
    accepts connections, fails with the log if nginx exits first. Stopped (SIGTERM, then
    SIGKILL after 10 s) when the block ends."""
    nginx = require_binary("nginx", "/usr/sbin")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [nginx, "-e", "stderr", "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {log.read_text()}")
            return all(port_open(p) for p in ports)

        wait_until(up, 10, what, ignoring=(OSError,))
        yield proc
    finally:
        stop(proc)


def _children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split()}


class Edge:
    def __init__(
        self,
        url: str,
        spec: EdgeSpec,
        root: Path,
        conf: Path,
        proc: subprocess.Popen[bytes],
        log: Path,
        nginx: str,
    ) -> None:
        self.url = url  # HTTPS when the edge has TLS
        self.http_url = f"http://127.0.0.1:{spec.listen.rsplit(':', 1)[-1]}"
        self.spec = spec
        self.root = root
        self.conf = conf
        self.proc = proc
        self.log = log
        self.nginx = nginx
        self.varnish: subprocess.Popen[bytes] | None = None  # varnishd (manager), if any

    @property
    def pids(self) -> list[int]:
        """nginx's master and Varnish's manager, if any (their children are the rest)."""
        return [self.proc.pid] + ([self.varnish.pid] if self.varnish is not None else [])

    def signal(self, name: str) -> subprocess.CompletedProcess[str]:
        """``nginx -s NAME`` with the prefix and config the edge was started with."""
        return subprocess.run(
            [self.nginx, "-e", "stderr", "-p", str(self.root), "-c", str(self.conf), "-s", name],
            capture_output=True,
            text=True,
            timeout=20,
        )

    def reload(self, upstreams: Sequence[str]) -> None:
        """Rewrite the config with ``upstreams`` and ``nginx -s reload``; returns once new
        workers run it (a config nginx refuses fails here, not silently)."""
        self.spec = dataclasses.replace(self.spec, upstreams=tuple(upstreams))
        self.conf.write_text(render(self.spec))
        checked = subprocess.run(
            [self.nginx, "-e", "stderr", "-t", "-q", "-p", str(self.root), "-c", str(self.conf)],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert checked.returncode == 0, checked.stderr
        before = _children(self.proc.pid)
        done = self.signal("reload")
        assert done.returncode == 0, done.stderr
        wait_until(
            lambda: _children(self.proc.pid) - before, 20, "nginx workers with the new config"
        )


@contextmanager
def varnish_running(spec: EdgeSpec, root: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The Varnish of ``spec`` (its VCL written into ``root``), in the foreground, until
    the block ends; returns once it accepts connections."""
    assert spec.varnish is not None
    varnishd = require_binary("varnishd", "/usr/sbin")
    vcl = root / "pnyx.vcl"
    vcl.write_text(render_vcl(spec))
    log = root / "varnish.log"
    command = [varnishd, *varnishd_command(spec, vcl)[1:]]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    port = int(spec.varnish.listen.rsplit(":", 1)[1])
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"varnishd exited: {log.read_text()}")
            return port_open(port)

        wait_until(up, 20, "varnishd to listen", ignoring=(OSError,))
        yield proc
    finally:
        stop(proc)


@contextmanager
def nginx_edge(
    upstreams: Sequence[str],
    *,
    tls: Cert | None = None,
    link_secret: str | None = None,
    server_name: str | None = None,
    varnish: bool = True,
    frontrow: FrontRow | None = None,
    port: int | None = None,
) -> Iterator[Edge]:
    """The edge ``pnyx edge-config`` describes, on free loopback ports: nginx and (unless
    ``varnish`` is False: nginx alone, as before issue 17) the Varnish behind it that
    collapses live blocking reads."""
    nginx = require_binary("nginx", "/usr/sbin")
    # Workers run as an unprivileged user when the tests run as root: the cache must be
    # reachable by them, so it cannot live under pytest's private tmp_path.
    root = Path(tempfile.mkdtemp(prefix="pnyx-edge-"))
    root.chmod(0o755)
    port = port or free_port()
    spec = EdgeSpec(
        f"127.0.0.1:{port}",
        tuple(upstreams),
        cache_dir=root / "cache",
        state_dir=root / "state",
        server_name=server_name,
        link_secret=link_secret,
        varnish=Collapse(
            f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}", workdir=root / "varnish"
        )
        if varnish
        else None,
        frontrow=frontrow,
    )
    main_port = port
    if tls is not None:
        main_port = free_port()
        spec = dataclasses.replace(spec, tls=Tls(tls.cert, tls.key, f"127.0.0.1:{main_port}"))
    create_folders(spec)
    conf = root / "nginx.conf"
    conf.write_text(render(spec))
    log = root / "nginx.log"
    try:
        with ExitStack() as stack:
            cache = None
            if spec.varnish is not None:
                cache = stack.enter_context(varnish_running(spec, root))
            proc = stack.enter_context(nginx_running(conf, [port, main_port], log=log))
            scheme = "http" if tls is None else "https"
            edge = Edge(f"{scheme}://127.0.0.1:{main_port}", spec, root, conf, proc, log, nginx)
            edge.varnish = cache
            yield edge
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if os.environ.get("PNYX_KEEP_EDGE_LOG"):
            print(log)
