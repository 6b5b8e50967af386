"""Fuzzing a real node from its own /openapi.json (schemathesis): no 5xx, and every
answer is one the document describes (status, content type, headers, body schema); data
the document says is invalid is refused, and so is a missing required token.

Four passes against one node, each bounded in time (``--max-time``): anonymous; as a
listener (the listener routes only); signed in as a space's host (every route but the
ones that end the session it is sent with); and those session enders last (sign-out,
sign-out everywhere, password change, account deletion), on a throwaway account signed
in afresh for every case. The node has ids that exist (a live recorded space, a
scheduled one, an ended one; four accounts), and the fuzzer picks path parameters from
them half of the time, so requests reach the rules and not only the 404s.

Every answer is tallied by operation and status (``fuzz_hooks.after_call``): a signed-in
pass must have had enough of them succeed (2xx, from enough operations), so a pass that
loses its session and sees nothing but 401s fails instead of passing unnoticed. The
figures of each pass are printed and kept in ``figures.json`` beside its output.

The default budget is 75 s in all (``PNYX_FUZZ_S`` changes it; CI may give it minutes).
``PNYX_FUZZ_SEED`` replays a run with the seed it printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.api import create_space, join, ok, register
from tests.support.pnyx_server import PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e

BUDGET_S = float(os.environ.get("PNYX_FUZZ_S", "75"))
# Shares of the budget: anonymous, listener routes, signed in (most routes need it), and
# the operations that end the session.
SHARES = {"anonymous": 0.28, "listener": 0.16, "account": 0.42, "session": 0.14}
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
# They end the token they carry (sign-out) or every token of the account (the others,
# when they succeed): in the signed-in pass they would sign it out for the rest of it.
# (The same list as fuzz_hooks.SESSION_ENDERS.)
SESSION_ENDERS = r"^/v1/(auth/signout|auth/signout-all|account/password|account/delete)$"
# What refusing invalid data may answer: schemathesis's defaults, and 413.
REJECTIONS = json.dumps(
    ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
)
# A pass that generated fewer cases did not really run (each case of the session pass
# signs in first: argon2 work).
PASSWORD = "correct horse"
MIN_CASES = {"anonymous": 200, "listener": 200, "account": 200, "session": 20}
# A pass with a token must be answered as one: at least so many 2xx, from at least so
# many operations (a lost session leaves the 2xx of the public reads only).
# (Signed out early, the host's pass had 166 answers 2xx from 14 operations, all public
# reads; signed in throughout, 215 to 708 from 42 to 46, in 75 s: the operations tell.)
MIN_SUCCESS = {"listener": (30, 3), "account": (100, 25), "session": (8, 2)}


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
    node: PnyxProcess,
    folder: Path,
    config: Path,
    seconds: float,
    *extra: str,
    env: dict[str, str] | None = None,
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
    env = {
        **os.environ,
        **(env or {}),
        "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",
        "PNYX_FUZZ_TALLY": str(folder / "tally.txt"),
    }
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


Tally = Counter[tuple[str, int, str]]


def _tally(folder: Path) -> Tally:
    """Answers of a pass, by operation ("POST /v1/spaces"), status and error code."""
    file = folder / "tally.txt"
    lines = file.read_text().splitlines() if file.exists() else []
    return Counter(
        (f"{method} {path}", int(status), code[0] if code else "")
        for method, path, status, *code in (line.split(" ") for line in lines)
    )


def _statuses(tally: Tally) -> dict[int, int]:
    out: Counter[int] = Counter()
    for (_, status, _code), n in tally.items():
        out[status] += n
    return dict(sorted(out.items()))


def _cases(output: str) -> int:
    found = re.search(r"Test cases:\s*\n\s*(\d+) generated", output)
    return int(found[1]) if found else 0


def _successes(tally: Tally) -> tuple[int, int]:
    """2xx answers, and the operations that gave them."""
    ok_ops = {op for (op, status, _) in tally if 200 <= status < 300}
    return sum(n for (_, status, _), n in tally.items() if 200 <= status < 300), len(ok_ops)


@pytest.mark.timeout(BUDGET_S + 300)
def test_fuzzing_finds_no_server_error_and_no_undocumented_answer(
    node: PnyxProcess, c: httpx.Client, tmp_path: Path
) -> None:
    host = register(c, "fuzz_host")
    guest = register(c, "fuzz_guest")
    register(c, "fuzz_third")
    throwaway = register(c, "fuzz_throwaway", PASSWORD)
    live = create_space(c, host, record=True)
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    scheduled = create_space(c, host, scheduled_start=soon)
    ended = create_space(c, host, record=True)
    ok(c.post(f"/v1/spaces/{ended}/end", headers=host.auth))
    listener = join(c, live, guest)
    handles = ["fuzz_host", "fuzz_guest", "fuzz_third", throwaway.handle]
    config = _config(tmp_path, [live, scheduled, ended], handles)
    signin = json.dumps({"url": node.url, "handle": throwaway.handle, "password": PASSWORD})

    as_listener, as_host = (f"Authorization: Bearer {t}" for t in (listener.token, host.token))
    passes: dict[str, tuple[list[str], dict[str, str]]] = {
        "anonymous": ([], {}),
        "listener": (["-H", as_listener, "--include-path-regex", LISTENER_ROUTES], {}),
        "account": (["-H", as_host, "--exclude-path-regex", SESSION_ENDERS], {}),
        "session": (["--include-path-regex", SESSION_ENDERS], {"PNYX_FUZZ_SIGNIN": signin}),
    }
    figures = {}
    for name, (extra, env) in passes.items():
        folder = tmp_path / name
        started = time.monotonic()
        output, rc = _fuzz(node, folder, config, BUDGET_S * SHARES[name], *extra, env=env)
        tally = _tally(folder)
        successes, succeeding = _successes(tally)
        figures[name] = {
            "seconds": round(time.monotonic() - started, 1),
            "cases": _cases(output),
            "requests": sum(tally.values()),
            "statuses": _statuses(tally),
            "2xx_operations": succeeding,
            "method_paths": len({op for op, _, _ in tally}),  # with methods the path lacks
            "401_codes": dict(Counter(code for (_, st, code) in tally.elements() if st == 401)),
        }
        (folder / "figures.json").write_text(json.dumps(figures[name], indent=1))
        print(f"fuzz {name}: {json.dumps(figures[name])}")
        assert rc == 0, f"the {name} pass found problems:\n{_failures(output)}"
        assert _cases(output) >= MIN_CASES[name], f"the {name} pass barely ran:\n{output[-4000:]}"
        if name in MIN_SUCCESS:
            least, operations = MIN_SUCCESS[name]
            assert successes >= least and succeeding >= operations, (
                f"the {name} pass had {successes} answers 2xx from {succeeding} operations"
                f" (expected at least {least} from {operations}): did it lose its token?"
                f" {figures[name]}"
            )
            # 401s are for cases sent without a token or with a made-up one, never for
            # a token that ended under the pass.
            assert "signed_out" not in figures[name]["401_codes"], figures[name]
    # The session pass did end sessions (and went on signed in again).
    assert figures["session"]["statuses"].get(204, 0) >= 2, figures["session"]

    log = node.output()
    assert "Traceback" not in log, log[-6000:]
