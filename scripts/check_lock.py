"""Check that the virtualenv holds exactly what requirements.lock pins.

Usage: python scripts/check_lock.py requirements.lock

Every lock line whose environment marker applies to this interpreter must be installed at
exactly its version. A distribution installed but not in the lock (other than pip and Pnyx
itself) is reported too: something was installed by hand, and the tests would no longer
prove what a fresh clone gets. Exits 1 on any difference, naming each.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Not in the lock by design: the installer itself and the project being installed.
NOT_LOCKED = {"pip", "pnyx"}


def pinned(lock: Path) -> dict[str, str]:
    """Name -> version for every lock entry that applies here (markers evaluated)."""
    out: dict[str, str] = {}
    for raw in lock.read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip(" \\")
        if not line or line.startswith((" ", "-")):
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise SystemExit(f"{lock}: {line!r} is not pinned with ==")
        out[canonicalize_name(req.name)] = specs[0].version
    return out


def installed() -> dict[str, str]:
    return {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }


def differences(want: dict[str, str], have: dict[str, str]) -> list[str]:
    problems = []
    for name, version in sorted(want.items()):
        got = have.get(name)
        if got is None:
            problems.append(f"{name}: locked {version}, not installed")
        elif got != version:
            problems.append(f"{name}: locked {version}, installed {got}")
    for name, version in sorted(have.items()):
        if name not in want and name not in NOT_LOCKED:
            problems.append(f"{name}: installed {version}, not in the lock")
    return problems


def main(argv: list[str]) -> int:
    lock = Path(argv[1] if len(argv) > 1 else "requirements.lock")
    want = pinned(lock)
    problems = differences(want, installed())
    if problems:
        print(f"the virtualenv differs from {lock}:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print("fix: `make clean && make install` (or `make lock` if pyproject.toml changed)")
        return 1
    print(f"{len(want)} packages installed exactly as {lock} pins them")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
