"""``pnyx plan`` through the real CLI entry point, in process."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pnyx.cli import main
from pnyx.plan import figures as figs
from tests.unit.plan.support import shipped_doc, write

# The keys a rehearsal compares with its measurements, and the sizing answers.
STABLE_KEYS = {
    "listeners_per_space",
    "heartbeats_per_s",
    "heartbeats_per_s.raised",
    "heartbeats_per_s.shedding",
    "joins_per_s",
    "edge.reads_per_s",
    "edge.requests_per_s",
    "edge.http_cores",
    "edge.cores",
    "edge.connections",
    "edge.egress_bytes_per_s",
    "edge.egress_bits_per_s",
    "edge.tls.connections_per_s",
    "edge.tls.handshake_cores",
    "edge.tls.bulk_cores",
    "edge.tls.cores",
    "edge.instances",
    "edge.instances.by_cores",
    "edge.instances.by_connections",
    "edge.instances.by_egress",
    "origin.reads_per_s",
    "origin.requests_per_s",
    "origin.egress_bytes_per_s",
    "origin.cores",
    "origin.processes",
    "redis.ops_per_s",
    "redis.space_ops_per_s",
    "redis.cores",
    "redis.instances",
    "stage.spaces_per_node",
    "stage.nodes",
    "storm.offered_joins_per_s",
    "storm.admitted_joins_per_s",
    "storm.refused_per_s",
    "storm.heartbeats_per_s",
    "storm.refusal_cores",
    "storm.origin.cores",
    "storm.edge.requests_per_s",
    "storm.edge.tls.connections_per_s",
    "storm.edge.tls.cores",
    "storm.edge.cores",
    "storm.redis.ops_per_s",
}


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["plan", *args, "--format", "json"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_json_has_the_stable_keys_as_plain_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    doc = plan_json(capsys, "--listeners", "600000", "--joins-per-s", "10000")
    assert set(doc["predictions"]) == STABLE_KEYS
    for key, value in doc["predictions"].items():
        assert isinstance(value, int | float) and not isinstance(value, bool), key
    assert doc["version"] == 1
    assert doc["latency"] == "standard"
    assert doc["inputs"] == {
        "listeners": 600_000,
        "joins_per_s": 10_000,
        "spaces": 1,
        "latency": "auto",
        "edges": None,
        "storm_x": 10.0,
        "tls": True,
    }
    assert set(doc["provisional"]) <= set(figs.SPECS)
    assert [line["key"] for line in doc["lines"]] == list(doc["predictions"])
    line = next(x for x in doc["lines"] if x["key"] == "edge.reads_per_s")
    assert line["figures"] == ["listener.reads_per_s.standard"]
    assert line["unit"] == "requests/s"


def test_amounts_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    doc = plan_json(
        capsys,
        "--listeners", "1.2M",
        "--joins-per-s", "10k",
        "--spaces", "2",
        "--latency", "low",
        "--edges", "3",
        "--storm-x", "5",
    )  # fmt: skip
    assert doc["inputs"]["listeners"] == 1_200_000
    assert doc["inputs"]["joins_per_s"] == 10_000
    assert doc["latency"] == "low"
    assert doc["predictions"]["edge.instances"] == 3
    assert doc["predictions"]["storm.offered_joins_per_s"] == 50_000
    assert any("--edges 3" in w for w in doc["warnings"])
    same = plan_json(capsys, "--listeners", "1,200,000", "--joins-per-s", "10_000")
    assert same["inputs"]["listeners"] == 1_200_000


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_human_formats(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    args = ["plan", "--listeners", "600k", "--joins-per-s", "10000", "--format", fmt]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "600,000 listeners, 10,000 joins/s, 1 space, latency auto → standard" in out
    assert re.search(r"\d+ origin processes, 1 Redis", out), out.splitlines()[0]
    if figs.load().provisional():
        assert "PROVISIONAL" in out
    else:
        assert "All figures used are measured (or settings and stated assumptions)." in out
    assert "edge.instances" in out
    assert "storm.refused_per_s" in out
    if fmt == "markdown":
        assert "| quantity | value | how | from |" in out
        for key in figs.load().provisional():  # each provisional figure used is starred
            if f"`{key}`" in out or f" {key}" in out:
                assert f"{key}\\*" in out, key


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_human_formats_say_what_tls_costs(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    base = ["plan", "--listeners", "600k", "--joins-per-s", "10000", "--format", fmt]
    assert main(base) == 0
    out = capsys.readouterr().out
    new = 10_000 * figs.load().by_key["listener.connections.https"].value
    assert re.search(rf"TLS: [\d.]+ of the [\d.]+ edge cores \([\d.]+ for {new:,.0f} new", out)
    assert "to encrypt 48.7 Gbit/s" in out and "join storm" in out
    assert main([*base, "--no-tls"]) == 0
    out = capsys.readouterr().out
    assert "TLS: not planned (--no-tls)" in out
    assert "edge.tls." not in out


def test_no_tls(capsys: pytest.CaptureFixture[str]) -> None:
    on = plan_json(capsys, "--listeners", "600000", "--joins-per-s", "10000")
    off = plan_json(capsys, "--listeners", "600000", "--joins-per-s", "10000", "--no-tls")
    assert off["inputs"]["tls"] is False
    assert off["predictions"]["edge.cores"] == pytest.approx(on["predictions"]["edge.http_cores"])
    assert "edge.tls.cores" not in off["predictions"]


def test_figures_file_is_used(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = shipped_doc()
    doc["listener.reads_per_s.low"]["value"] = 1.0
    for entry in doc.values():
        entry.pop("provisional", None)
    path = write(tmp_path, doc)
    out = plan_json(
        capsys, "--listeners", "1000", "--joins-per-s", "0", "--latency", "low", "--figures",
        str(path),
    )  # fmt: skip
    assert out["predictions"]["edge.reads_per_s"] == 1000
    assert out["figures_source"] == str(path)
    assert out["provisional"] == []


def test_bad_figures_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = shipped_doc()
    del doc["edge.headroom"]
    path = write(tmp_path, doc)
    args = ["plan", "--listeners", "1", "--joins-per-s", "1", "--figures", str(path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "missing figure(s): edge.headroom" in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--joins-per-s", "1"], "--listeners and --joins-per-s are required"),
        (["--listeners", "1"], "--listeners and --joins-per-s are required"),
        (["--listeners", "1", "--joins-per-s", "1", "--spaces", "0"], "spaces must be"),
        (["--listeners", "1", "--joins-per-s", "1", "--storm-x", "0.5"], "storm factor"),
    ],
)
def test_bad_inputs_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], says: str) -> None:
    assert main(["plan", *args]) == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("value", ["many", "1.5", "-3"])
def test_unparseable_amounts_exit_2(capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--listeners", value, "--joins-per-s", "1"])
    assert exited.value.code == 2
    assert "--listeners" in capsys.readouterr().err


def test_print_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--print-figures"]) == 0
    assert capsys.readouterr().out == figs.shipped_text()
