"""The lifecycle diagram in docs/architecture.md is the one scripts/state_diagram.py draws
from the transition table, and that drawing shows every status and every row."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from pnyx.domain.commands import StartSpace
from pnyx.domain.rules.lifecycle import TRANSITIONS
from pnyx.domain.types import SpaceStatus

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "state_diagram.py"
DOC = ROOT / "docs" / "architecture.md"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pnyx_state_diagram_script", SCRIPT)
    assert spec is not None and spec.loader is not None, SCRIPT
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


diagram = _load()


def test_the_doc_shows_the_diagram_of_the_table() -> None:
    found = diagram.current(DOC.read_text(encoding="utf-8"))
    assert found == diagram.render(), (
        "docs/architecture.md has a stale lifecycle diagram; "
        "run: .venv/bin/python scripts/state_diagram.py --write"
    )


def test_every_row_of_the_table_is_an_arrow() -> None:
    text = diagram.render()
    assert TRANSITIONS, "an empty table would make this test vacuous"
    for (source, command), (target, reason) in TRANSITIONS.items():
        line = f"    {source.value} --> {target.value} : {command.__name__}"
        if reason is not None:
            line += f" ({reason.value})"
        assert line + "\n" in text, line


def test_every_status_is_drawn_as_a_state() -> None:
    arrows = diagram.edges()
    ends = {e.source for e in arrows} | {e.target for e in arrows}
    for status in SpaceStatus:
        assert status.value in ends, f"{status} is on no arrow"


def test_creation_and_final_states() -> None:
    text = diagram.render()
    assert "    [*] --> scheduled : new_room(scheduled=True)\n" in text
    assert "    [*] --> live : new_room(scheduled=False)\n" in text
    left = {source for source, _ in TRANSITIONS}
    for status in SpaceStatus:
        final = f"    {status.value} --> [*]\n" in text
        assert final == (status not in left), status


def test_the_rendering_is_stable_and_follows_the_table() -> None:
    assert diagram.render() == diagram.render()
    fewer = {k: v for k, v in TRANSITIONS.items() if v[0] is not SpaceStatus.CANCELLED}
    changed = diagram.render(fewer)
    assert changed != diagram.render()
    assert "scheduled --> cancelled" not in changed
    assert "cancelled --> [*]" not in changed  # unreachable now: no arrow at all
    shuffled = dict(reversed(list(TRANSITIONS.items())))
    assert diagram.render(shuffled) == diagram.render()


def test_splice_replaces_only_the_block() -> None:
    doc = f"before\n{diagram.BEGIN}\nold\n{diagram.END}\nafter\n"
    new = diagram.splice(doc, "new\n")
    assert new == f"before\n{diagram.BEGIN}\nnew\n{diagram.END}\nafter\n"
    assert diagram.current(new) == "new\n"


@pytest.mark.parametrize(
    "doc",
    [
        "no markers\n",
        f"{diagram.BEGIN}\nonly the beginning\n",
        f"{diagram.END}\n{diagram.BEGIN}\n",
        f"{diagram.BEGIN}\n{diagram.END}\n{diagram.BEGIN}\n{diagram.END}\n",
    ],
)
def test_bad_markers_are_refused(doc: str) -> None:
    with pytest.raises(ValueError, match="lifecycle"):
        diagram.current(doc)


def test_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "architecture.md"
    stale = diagram.render().replace(StartSpace.__name__, "Begin")
    doc.write_text(f"# x\n{diagram.BEGIN}\n{stale}{diagram.END}\n", encoding="utf-8")

    assert diagram.main(["--check", "--doc", str(doc)]) == 1
    out = capsys.readouterr()
    assert "-    scheduled --> live : Begin" in out.out
    assert "+    scheduled --> live : StartSpace" in out.out
    assert "--write" in out.err

    assert diagram.main(["--write", "--doc", str(doc)]) == 0
    assert diagram.current(doc.read_text(encoding="utf-8")) == diagram.render()
    assert doc.read_text(encoding="utf-8").startswith("# x\n")
    assert diagram.main(["--check", "--doc", str(doc)]) == 0

    doc.write_text("no markers\n", encoding="utf-8")
    assert diagram.main(["--check", "--doc", str(doc)]) == 1
    assert diagram.main(["--write", "--doc", str(doc)]) == 1
    assert doc.read_text(encoding="utf-8") == "no markers\n"
