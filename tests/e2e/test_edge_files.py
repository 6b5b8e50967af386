"""``pnyx edge-config`` makes a fresh machine work: with ``--output`` it writes the config
and creates the folders it names, nginx starts from it as the README says (``nginx -c``,
daemonised), and its pid file lives outside the cache folder (where nginx's cache loader
would remove it), so ``nginx -s reload`` and ``-s quit`` keep working."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.poll import wait_until
from tests.support.procs import free_port, port_open, require_binary
from tests.support.tls import self_signed
from tests.support.upstream import counting_upstream

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


@contextmanager
def fresh_root() -> Iterator[Path]:
    # Not under pytest's private tmp_path: nginx's workers (an unprivileged user) must
    # reach the cache.
    root = Path(tempfile.mkdtemp(prefix="pnyx-edge-fresh-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def edge_config(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pnyx.cli", "edge-config", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_generated_config_runs_on_a_fresh_machine_and_stays_controllable() -> None:
    nginx = require_binary("nginx", "/usr/sbin")
    port = free_port()
    with counting_upstream() as node, fresh_root() as root:
        conf, cache, state = root / "etc/nginx.conf", root / "cache/pnyx", root / "lib/pnyx"
        done = edge_config(
            "--listen", f"127.0.0.1:{port}", "--upstream", node.address,
            "--cache-dir", str(cache), "--state-dir", str(state), "--output", str(conf),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""
        assert cache.is_dir() and state.is_dir() and conf.is_file()
        assert f"nginx -c {conf}" in done.stderr
        text = conf.read_text()
        pid_file = state / "nginx.pid"
        assert f"pid {pid_file};" in text
        # Nothing nginx writes besides the cache is inside the cache folder.
        assert str(cache) not in text.replace(f"proxy_cache_path {cache} ", "")

        log = root / "nginx.log"
        with log.open("wb") as out:  # the daemon keeps its stderr (error_log stderr) open
            started = subprocess.run(
                [nginx, "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        assert started.returncode == 0, log.read_text()
        master = 0
        try:
            master = int(wait_until(lambda: pid_file.is_file() and pid_file.read_text(), 10, "pid"))
            wait_until(lambda: port_open(port), 10, "nginx to listen")
            r = httpx.get(f"http://127.0.0.1:{port}/media/pub1/init.mp4", timeout=10)
            assert r.status_code == 200 and node.count() == 1
            # The cache is in the cache folder, and only there.
            assert any(p.is_file() for p in cache.rglob("*"))

            for _ in range(2):
                workers = _children(master)
                reloaded = subprocess.run(
                    [nginx, "-c", str(conf), "-s", "reload"], capture_output=True, text=True
                )
                assert reloaded.returncode == 0, reloaded.stderr
                wait_until(lambda w=workers: _children(master) - w, 10, "new workers")
            r = httpx.get(f"http://127.0.0.1:{port}/media/pub1/init.mp4", timeout=10)
            assert r.status_code == 200 and r.headers["x-cache-status"] == "HIT"

            quit_ = subprocess.run(
                [nginx, "-c", str(conf), "-s", "quit"], capture_output=True, text=True
            )
            assert quit_.returncode == 0, quit_.stderr
            wait_until(lambda: not _alive(master), 20, "nginx to quit")
            assert not pid_file.exists()
        finally:
            if not master and pid_file.is_file():
                master = int(pid_file.read_text())
            if master and _alive(master):
                os.kill(master, signal.SIGTERM)
                wait_until(lambda: not _alive(master), 20, "nginx to stop")


def test_printed_config_comes_with_the_commands_that_make_its_folders(tmp_path: Path) -> None:
    done = edge_config("--listen", "8080", "--upstream", "127.0.0.1:8000")
    assert done.returncode == 0, done.stderr
    assert "pid /var/lib/pnyx-edge/nginx.pid;" in done.stdout
    assert "install -d -m 0755 /var/cache/pnyx-edge" in done.stderr
    assert "install -d -m 0755 /var/lib/pnyx-edge" in done.stderr


def test_bad_options_are_refused_with_a_reason(tmp_path: Path) -> None:
    weak = tmp_path / "weak"
    weak.write_text("short$\n")
    base = ["--listen", "8080", "--upstream", "127.0.0.1:8000"]
    for args, says in (
        (["--link-secret-file", str(weak)], "link secret"),
        (["--link-secret-file", str(tmp_path / "absent")], "absent"),
        (["--tls-cert", str(weak)], "go together"),
        (["--tls-cert", str(weak), "--tls-key", str(tmp_path / "nokey")], "no such file"),
    ):
        done = edge_config(*base, *args)
        assert done.returncode == 2, (args, done.stdout[:200])
        assert says in done.stderr and done.stdout == ""
    good = tmp_path / "good"
    good.write_text("c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n")
    out = tmp_path / "edge.conf"
    folders = ["--cache-dir", str(tmp_path / "c"), "--state-dir", str(tmp_path / "s")]
    done = edge_config(*base, *folders, "--link-secret-file", str(good), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert "c2VjcmV0LXNlY3JldC1zZWNyZXQ=" in out.read_text()
    assert out.stat().st_mode & 0o777 == 0o600  # the secret is in it


def test_the_http_only_part_with_tls_and_links_is_valid_inside_an_nginx_conf(
    tmp_path: Path,
) -> None:
    nginx = require_binary("nginx", "/usr/sbin")
    cert = self_signed(tmp_path / "tls")
    secret = tmp_path / "secret"
    secret.write_text("c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n")
    done = edge_config(
        "--listen", "127.0.0.1:18080", "--tls-listen", "127.0.0.1:18443",
        "--upstream", "127.0.0.1:18001", "--cache-dir", str(tmp_path / "c"),
        "--tls-cert", str(cert.cert), "--tls-key", str(cert.key),
        "--link-secret-file", str(secret), "--server-name", "live.example.org", "--http-only",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "pid " not in done.stdout and "default_server" not in done.stdout
    assert "install -d -m 0755 /var/lib/pnyx-edge" not in done.stderr  # not ours then
    include = tmp_path / "pnyx-edge.conf"
    include.write_text(done.stdout)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n    include {include};\n}}\n"
    )
    checked = subprocess.run(
        [nginx, "-e", "stderr", "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert "return 308 https://live.example.org:18443$request_uri;" in done.stdout
    assert "proxy_set_header Host live.example.org;" in done.stdout
