"""Fuzzing a real node from its own /openapi.json (schemathesis): no 5xx, and every
answer is one the document describes (status, content type, headers, body schema); data
the document says is invalid is refused, and so is a missing required token.

Three passes against one node, each bounded in time (``--max-time``): signed in as a
space's host, anonymous, and as a listener (the listener routes only). The node has ids
that exist (a live recorded space, a scheduled one, an ended one; three accounts), and the
fuzzer picks path parameters from them half of the time, so requests reach the rules and
not only the 404s.

The default budget is 75 s in all (``PNYX_FUZZ_S`` changes it; CI may give it minutes).
``PNYX_FUZZ_SEED`` replays a run with the seed it printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.api import create_space, join, ok, register
from tests.support.pnyx_server import PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e

BUDGET_S = float(os.environ.get("PNYX_FUZZ_S", "75"))
# Shares of the budget: signed in (most routes need it), anonymous, listener routes.
SHARES = {"account": 0.45, "anonymous": 0.35, "listener": 0.20}
CHECKS = ",".join(
    [
        "server_errors_are_retries",  # tests/e2e/fuzz_hooks.py: no 5xx but "retry"s
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
    ]
)
LISTENER_ROUTES = r"^/v1/spaces/\{space_id\}/(heartbeat|leave|reactions)$"
# What refusing invalid data may answer: schemathesis's defaults, and 413.
REJECTIONS = json.dumps(
    ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
)
MIN_CASES = 200  # a pass that generated fewer did not really run


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    # The fuzzing host has several live spaces (one account hosts one by default).
    settings = {"max_live_spaces_per_account": "10"}
    with pnyx_serve(Path(tmp_path_factory.mktemp("fuzz")), settings=settings) as n:
        yield n


def _config(folder: Path, spaces: list[str], handles: list[str]) -> Path:
    def values(items: list[str]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    path = folder / "schemathesis.toml"
    path.write_text(
        f"[dictionaries.spaces]\nvalues = {values(spaces)}\n"
        f"[dictionaries.handles]\nvalues = {values(handles)}\n"
        "[parameters]\n"
        '"path.space_id" = { dictionary = "spaces", probability = 0.5 }\n'
        '"path.handle" = { dictionary = "handles", probability = 0.5 }\n'
        # A body over the size limit is refused with 413 before it is read: that is a
        # rejection too (schemathesis's default list lacks it).
        "[checks.negative_data_rejection]\n"
        f"expected-statuses = {REJECTIONS}\n"
    )
    return path


def _fuzz(
    node: PnyxProcess, folder: Path, config: Path, seconds: float, *extra: str
) -> tuple[str, int]:
    folder.mkdir(parents=True, exist_ok=True)
    args = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{node.url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-time",
        str(max(1, round(seconds))),
        "--workers",
        "1",  # hypothesis's lambda descriptions are not thread-safe (a spurious error)
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
        *extra,
    ]
    if seed := os.environ.get("PNYX_FUZZ_SEED"):  # to replay a run that found something
        args += ["--seed", seed]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks"}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), root) if p)
    run = subprocess.run(
        args,
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    output = run.stdout + run.stderr
    (folder / "schemathesis.txt").write_text(output)
    return output, run.returncode


def _failures(output: str) -> str:
    """What schemathesis printed about its failures (each with the request that shows
    it), then its summary: the end of a long run alone can miss the failing operation."""
    start = output.find("= FAILURES =")
    details = output[start : start + 9000] if start >= 0 else ""
    return f"{details}\n[...]\n{output[-4000:]}"


def _cases(output: str) -> int:
    found = re.search(r"Test cases:\s*\n\s*(\d+) generated", output)
    return int(found[1]) if found else 0


@pytest.mark.timeout(BUDGET_S + 240)
def test_fuzzing_finds_no_server_error_and_no_undocumented_answer(
    node: PnyxProcess, c: httpx.Client, tmp_path: Path
) -> None:
    host = register(c, "fuzz_host")
    guest = register(c, "fuzz_guest")
    register(c, "fuzz_third")
    live = create_space(c, host, record=True)
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    scheduled = create_space(c, host, scheduled_start=soon)
    ended = create_space(c, host, record=True)
    ok(c.post(f"/v1/spaces/{ended}/end", headers=host.auth))
    listener = join(c, live, guest)
    config = _config(tmp_path, [live, scheduled, ended], ["fuzz_host", "fuzz_guest", "fuzz_third"])

    passes = {
        "account": ["-H", f"Authorization: Bearer {host.token}"],
        "anonymous": [],
        "listener": [
            "-H",
            f"Authorization: Bearer {listener.token}",
            "--include-path-regex",
            LISTENER_ROUTES,
        ],
    }
    for name, extra in passes.items():
        output, rc = _fuzz(node, tmp_path / name, config, BUDGET_S * SHARES[name], *extra)
        assert rc == 0, f"the {name} pass found problems:\n{_failures(output)}"
        assert _cases(output) >= MIN_CASES, f"the {name} pass barely ran:\n{output[-4000:]}"

    log = node.output()
    assert "Traceback" not in log, log[-6000:]
