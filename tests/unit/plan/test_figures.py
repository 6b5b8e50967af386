"""The figures file: the shipped one is complete, used and documented; a bad one is
refused with a message that says what is wrong."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pnyx.errors import PnyxError
from pnyx.plan import figures as figs
from pnyx.plan.model import Inputs, Latency, plan
from tests.unit.plan.support import dump, shipped_doc, write

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_file_has_every_figure() -> None:
    f = figs.load()
    assert set(f.by_key) == set(figs.SPECS)
    for key, figure in f.by_key.items():
        assert figure.unit == figs.SPECS[key].unit


def test_every_shipped_figure_is_used() -> None:
    f = figs.load()
    for mode in (Latency.LOW, Latency.STANDARD, Latency.AUTO):
        for tls in (True, False):  # HTTPS: HTTP/2's connections; plain: HTTP/1.1's
            plan(f, Inputs(600_000, 10_000, latency=mode, tls=tls))
    assert f.used == set(f.by_key)


def _documented(text: str, key: str) -> bool:
    if key in text:
        return True
    stem, _, mode = key.rpartition(".")
    return mode in ("low", "standard") and f"{stem}.{{low,standard}}" in text


@pytest.mark.parametrize("where", ["figures.py docstring", "docs/capacity.md"])
def test_every_figure_is_documented(where: str) -> None:
    if where == "docs/capacity.md":
        text = (ROOT / "docs" / "capacity.md").read_text(encoding="utf-8")
    else:
        text = figs.__doc__ or ""
    missing = [k for k in figs.SPECS if not _documented(text, k)]
    assert not missing


def test_provisional_figures_are_marked_and_say_how_to_measure() -> None:
    doc = shipped_doc()
    for key, entry in doc.items():
        assert entry["command"].strip(), key
        if entry.get("provisional"):
            assert "not measured" in entry["measured"] or "count from the code" in entry["measured"]
    # Measured figures name the bench that measured them.
    for key, entry in doc.items():
        if not entry.get("provisional") and entry.get("kind", "measured") == "measured":
            assert "bench/" in entry["command"], key


def test_the_shipped_file_round_trips_through_the_test_writer(tmp_path: Path) -> None:
    loaded = figs.load(write(tmp_path, shipped_doc()))
    assert loaded.by_key == figs.load().by_key


def _error(tmp_path: Path, doc: dict[str, Any] | str) -> str:
    path = tmp_path / "figures.toml"
    path.write_text(doc if isinstance(doc, str) else dump(doc))
    with pytest.raises(PnyxError) as caught:
        figs.load(path)
    assert str(path) in caught.value.message
    return caught.value.message


def test_missing_figure(tmp_path: Path) -> None:
    doc = shipped_doc()
    del doc["redis.ops_per_join"]
    assert "missing figure(s): redis.ops_per_join" in _error(tmp_path, doc)


def test_unknown_figure_suggests_the_right_one(tmp_path: Path) -> None:
    doc = shipped_doc()
    doc["redis.ops_per_joins"] = doc["redis.ops_per_join"]
    message = _error(tmp_path, doc)
    assert "unknown figure 'redis.ops_per_joins'" in message
    assert "did you mean 'redis.ops_per_join'" in message


def test_unquoted_dotted_key(tmp_path: Path) -> None:
    text = figs.shipped_text() + "\n[edge.other]\nvalue = 1\n"
    assert "quote dotted keys" in _error(tmp_path, text)


def test_bad_unit(tmp_path: Path) -> None:
    doc = shipped_doc()
    doc["edge.egress_bps_per_instance"]["unit"] = "bytes/s/instance"
    message = _error(tmp_path, doc)
    assert "unit is 'bytes/s/instance'" in message
    assert "'bits/s/instance'" in message


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("edge.headroom", 1.5, "must be fraction"),
        ("edge.headroom", 0, "must be fraction"),
        ("edge.reads_per_core_s", 0, "must be positive"),
        ("origin.core_ms.join", -0.1, "must be non-negative"),
        ("heartbeat.shedding_x", 0.5, "must be multiplier"),
        ("redis.ops_per_join", "3", "must be a number"),
        ("redis.ops_per_join", True, "must be a number"),
    ],
)
def test_bad_value(tmp_path: Path, key: str, value: object, says: str) -> None:
    doc = shipped_doc()
    doc[key]["value"] = value
    message = _error(tmp_path, doc)
    assert key in message
    assert says in message


def test_missing_and_unknown_fields(tmp_path: Path) -> None:
    doc = shipped_doc()
    del doc["edge.headroom"]["command"]
    assert "['edge.headroom'] lacks command" in _error(tmp_path, doc)
    doc = shipped_doc()
    doc["edge.headroom"]["source"] = "x"
    assert "unknown field(s) source" in _error(tmp_path, doc)
    doc = shipped_doc()
    doc["edge.headroom"]["kind"] = "guess"
    assert "kind must be one of" in _error(tmp_path, doc)
    doc = shipped_doc()
    doc["edge.headroom"]["provisional"] = "yes"
    assert "provisional must be true or false" in _error(tmp_path, doc)
    doc = shipped_doc()
    doc["edge.headroom"]["note"] = " "
    assert "note must be a non-empty string" in _error(tmp_path, doc)


def test_not_a_table(tmp_path: Path) -> None:
    doc: dict[str, Any] = shipped_doc()
    text = dump({k: v for k, v in doc.items() if k != "edge.headroom"})
    assert "must be a table" in _error(tmp_path, '"edge.headroom" = 0.7\n' + text)


def test_not_toml_and_unreadable(tmp_path: Path) -> None:
    assert "not valid TOML" in _error(tmp_path, "[[[")
    with pytest.raises(PnyxError, match="cannot be read"):
        figs.load(tmp_path / "absent.toml")


def test_figure_keys_are_dotted_lowercase() -> None:
    for key in figs.SPECS:
        assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", key), key
