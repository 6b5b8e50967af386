"""The per-install secrets (``config.signing_secret``, ``config.link_secret``): without a
configured one, each data dir gets its own random key on first use, private to its owner
(0600, whatever the umask), and keeps it across restarts."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pnyx.config import Settings, link_secret, load_settings, signing_secret
from pnyx.errors import ErrorKind, PnyxError

KEPT: list[tuple[Callable[[Settings], str], str]] = [
    (signing_secret, "secret"),
    (link_secret, "link_secret"),
]
CONFIGURED = "a-configured-secret-of-more-than-32-bytes"


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would leave new files readable by everyone (0666)."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def load(data_dir: Path) -> Settings:
    return load_settings({"data_dir": data_dir}, env={})


@pytest.mark.usefixtures("open_umask")
@pytest.mark.parametrize(("read", "name"), KEPT)
def test_each_install_gets_its_own_private_key_and_keeps_it(
    tmp_path: Path, read: Callable[[Settings], str], name: str
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    first = read(load(one))
    other = read(load(two))
    assert first != other
    for value in (first, other):
        assert len(value.encode()) >= 32
    for data_dir in (one, two):
        kept = data_dir / name
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert kept.stat().st_uid == os.getuid()
        assert sorted(p.name for p in data_dir.iterdir()) == [name]  # no draft left
    # The next start on the same data dir signs with the same key.
    assert read(load(one)) == first
    assert read(load(two)) == other
    assert (one / name).read_text() == first


@pytest.mark.parametrize(("read", "name"), KEPT)
def test_starts_at_once_on_one_data_dir_agree_on_one_key(
    tmp_path: Path, read: Callable[[Settings], str], name: str
) -> None:
    settings = load(tmp_path / "data")
    with ThreadPoolExecutor(8) as pool:
        values = set(pool.map(lambda _: read(settings), range(32)))
    assert values == {(tmp_path / "data" / name).read_text()}
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [name]


def test_a_configured_secret_wins_and_nothing_is_written(tmp_path: Path) -> None:
    settings = load_settings(
        {"data_dir": tmp_path, "secret": CONFIGURED, "link_secret": CONFIGURED}, env={}
    )
    assert signing_secret(settings) == CONFIGURED
    assert link_secret(settings) == CONFIGURED
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", ["", "\n", "short-key"])
def test_a_kept_key_too_short_to_sign_with_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "secret").write_text(content)
    with pytest.raises(PnyxError) as err:
        signing_secret(load(tmp_path))
    assert err.value.kind is ErrorKind.INVALID
    assert "fewer than 32 bytes" in err.value.message
    assert (tmp_path / "secret").read_text() == content  # left for the operator to look at
