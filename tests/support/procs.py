"""Helpers for tests that start real servers: free ports, binaries, readiness polling."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_binary(name: str, *extra_dirs: str) -> str:
    """Path of a system binary the test needs. Missing: skip locally, FAIL under CI=true
    (CI must never pass by skipping what it was meant to test)."""
    found = shutil.which(name)
    if found is None:
        for d in extra_dirs:
            for candidate in sorted(Path("/").glob(d.lstrip("/")), reverse=True):
                if (candidate / name).exists():
                    return str(candidate / name)
    if found is None:
        msg = f"{name} is not installed (make test installs it via apt)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return found


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def stop(proc: subprocess.Popen[bytes], within: float = 10.0) -> None:
    """Stop a server the test started: SIGTERM, then SIGKILL if it has not exited within
    ``within`` seconds. Nothing to do if it is gone already."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
