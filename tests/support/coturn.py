"""A real TURN server (coturn) for the tests, on free loopback ports, with the TURN REST
API's time-limited credentials (``use-auth-secret`` + ``static-auth-secret``), as Pnyx
expects it in production (docs/ice.md).

    with coturn(tmp_path) as turn:
        turn.url           # "turn:127.0.0.1:PORT?transport=udp"
        turn.allocations() # lines of its log saying it made an allocation
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.poll import wait_until
from tests.support.procs import free_port, require_binary, stop

SECRET = "turn-secret-shared-with-pnyx-0123456789"
REALM = "pnyx.test"

ALLOCATED = re.compile(r"user <([^>]+)>: incoming packet ALLOCATE processed, success")


@dataclass
class Turn:
    host: str
    port: int
    secret: str
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=udp"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def allocations(self) -> list[str]:
        """The usernames of the successful allocations so far, from its log."""
        return [m.group(1) for m in ALLOCATED.finditer(self.output())]


def _udp_port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def coturn(folder: Path, *, secret: str = SECRET, relay_ports: int = 40) -> Iterator[Turn]:
    """coturn listening on UDP and TCP 127.0.0.1:<free port>, relaying from 127.0.0.1 on
    ``relay_ports`` ports just above it; its log (verbose) in ``folder``."""
    binary = require_binary("turnserver", "/usr/bin")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    while not _udp_port_free(port):
        port = free_port()
    relay_min = free_port()
    log = folder / f"turnserver-{port}.log"
    args = [
        binary,
        "-n",  # no configuration file: everything is here
        "--listening-ip=127.0.0.1",
        f"--listening-port={port}",
        "--relay-ip=127.0.0.1",
        f"--min-port={relay_min}",
        f"--max-port={relay_min + relay_ports}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        f"--realm={REALM}",
        "--fingerprint",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--allow-loopback-peers",
        "--no-software-attribute",
        "--verbose",
        f"--log-file={log}",
        "--simple-log",
        "--no-stdout-log",
        f"--pidfile={folder / f'turnserver-{port}.pid'}",
        f"--db={folder / f'turndb-{port}'}",  # its own (unused) user database
        "--no-rfc5780",
        "--no-stun-backward-compatibility",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    turn = Turn("127.0.0.1", port, secret, log, proc)
    try:

        def listening() -> bool:
            if proc.poll() is not None:
                text = log.read_text(errors="replace") if log.exists() else ""
                raise RuntimeError(f"turnserver exited early ({proc.returncode}):\n{text}")
            return log.exists() and "IO method (admin thread)" in turn.output()

        wait_until(listening, 15, "coturn to listen")
        yield turn
    finally:
        stop(proc)
