from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pnyx.config import Settings, load_settings
from pnyx.errors import ErrorKind, PnyxError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config.example.toml"


def test_defaults_are_the_embedded_default() -> None:
    s = load_settings(env={})
    assert (s.host, s.port, s.redis) == ("127.0.0.1", 8000, None)
    assert s.database_url == f"sqlite+aiosqlite:///{Path('data') / 'pnyx.db'}"
    assert (s.max_cohosts, s.max_speakers) == (2, 10)


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "pnyx.toml"
    f.write_text("max_speakers = 4\nport = 9000\nheartbeat_s = 7.5\n")
    s = load_settings(
        {"port": 9100}, config_file=f, env={"PNYX_MAX_SPEAKERS": "6", "PNYX_PORT": "9050"}
    )
    assert s.max_speakers == 6  # env beats file
    assert s.port == 9100  # flags beat env
    assert s.heartbeat_s == 7.5  # file beats default


def test_ice_lists_come_from_toml_or_comma_separated_environment(tmp_path: Path) -> None:
    path = tmp_path / "pnyx.toml"
    path.write_text('ice_stun_urls = ["stun:a.example:3478", "stun:[2001:db8::1]"]\n')
    s = load_settings(config_file=path, env={"PNYX_ICE_ADDRESSES": "10.0.0.11, fd00::11"})
    assert s.ice_stun_urls == ["stun:a.example:3478", "stun:[2001:db8::1]"]
    assert s.ice_addresses == ["10.0.0.11", "fd00::11"]
    assert s.ice_allowed_networks == ["0.0.0.0/0", "::/0"]


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"PNYX_MAX_SPEEKERS": "3"}, "PNYX_MAX_SPEEKERS"),
        ({"PNYX_PORT": "eighty"}, "port"),
        ({"PNYX_MAX_SPEAKERS": "-1"}, "max_speakers"),
        ({"PNYX_SECRET": "short"}, "32 bytes"),
        ({"PNYX_PRESENCE_WINDOW_S": "1", "PNYX_PRESENCE_BUCKET_S": "5"}, "presence_window_s"),
        ({"PNYX_HOST": "0.0.0.0", "PNYX_REDIS": "redis://r:6379/0"}, "public_url"),
        ({"PNYX_HOST": "::", "PNYX_REDIS": "redis://r:6379/0"}, "public_url"),
        ({"PNYX_PUBLIC_URL": "http://0.0.0.0:8000"}, "public_url"),
        ({"PNYX_ENDED_LIVE_RETENTION_S": "0"}, "ended_live_retention_s"),
        ({"PNYX_ENDED_LIVE_RETENTION_S": "604801"}, "ended_live_retention_s"),
        # ICE (docs/ice.md)
        ({"PNYX_ICE_ALLOWED_NETWORKS": "10.0.0.0/8,10.0.0.0/33"}, "CIDR notation"),
        ({"PNYX_ICE_ALLOWED_NETWORKS": "everywhere"}, "ice_allowed_networks"),
        ({"PNYX_ICE_PORT_MIN": "40000"}, "set both ice_port_min and ice_port_max"),
        ({"PNYX_ICE_PORT_MIN": "40100", "PNYX_ICE_PORT_MAX": "40000"}, "must not exceed"),
        ({"PNYX_ICE_PORT_MAX": "70000"}, "ice_port_max"),
        ({"PNYX_ICE_ADDRESSES": "eth0"}, "not an IP address"),
        ({"PNYX_ICE_NAT_1_1": "10.0.0.1=public.example"}, "ice_nat_1_1"),
        ({"PNYX_ICE_STUN_URLS": "stun.example.net:3478"}, "not a STUN URL"),
        ({"PNYX_ICE_STUN_URLS": "stun:h?transport=udp"}, "not a STUN URL"),
        ({"PNYX_ICE_TURN_URLS": 'turn:h>; rel="evil"'}, "not a TURN URL"),
        ({"PNYX_ICE_TURN_URLS": "turn:turn.example.net"}, "needs ice_turn_secret"),
        (
            {"PNYX_ICE_TURN_URLS": "turn:turn.example.net", "PNYX_ICE_TURN_SECRET": "short"},
            "at least 16 bytes",
        ),
        ({"PNYX_ICE_TURN_TTL_S": "5"}, "ice_turn_ttl_s"),
    ],
)
def test_bad_settings_fail_loudly(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(PnyxError) as err:
        load_settings(env=env)
    assert err.value.kind is ErrorKind.INVALID
    assert fragment in err.value.message


@pytest.mark.parametrize(
    ("flags", "advertised"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"host": "10.0.0.11"}, "http://10.0.0.11:8000"),
        ({"host": "fd00::11"}, "http://[fd00::11]:8000"),
        # One node (memory live state) on every address: nobody else is sent there.
        ({"host": "0.0.0.0"}, "http://127.0.0.1:8000"),
        ({"host": "::"}, "http://127.0.0.1:8000"),
        # An API-only node never advertises; a stage node behind a wildcard says where.
        ({"host": "0.0.0.0", "redis": "redis://r/0", "role": "api"}, "http://127.0.0.1:8000"),
        (
            {"host": "0.0.0.0", "redis": "redis://r/0", "public_url": "http://10.0.0.11:8000"},
            "http://10.0.0.11:8000",
        ),
    ],
)
def test_the_advertised_url_is_never_a_wildcard(flags: dict[str, object], advertised: str) -> None:
    assert load_settings(flags, env={}).advertised_url == advertised


def test_unknown_key_in_file_fails(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("max_speekers = 3\n")
    with pytest.raises(PnyxError, match="max_speekers"):
        load_settings(config_file=f, env={})


def test_settings_are_frozen() -> None:
    s = load_settings(env={})
    with pytest.raises(ValueError, match="frozen"):
        s.port = 1  # type: ignore[misc]


def test_example_config_lists_every_setting_with_its_default() -> None:
    text = EXAMPLE.read_text()
    # Commented-out keys count as listed (they have no static default).
    uncommented = "\n".join(line.lstrip("# ") for line in text.splitlines())
    listed = set()
    for line in uncommented.splitlines():
        if "=" in line and not line.startswith(("-", " ")):
            listed.add(line.split("=", 1)[0].strip())
    assert listed >= set(Settings.model_fields), set(Settings.model_fields) - listed
    parsed = tomllib.loads(text)
    defaults = Settings()
    for key, value in parsed.items():
        got = getattr(defaults, key)
        assert (str(got) if isinstance(got, Path) else got) == value, key


def test_a_bad_setting_is_named_without_echoing_its_value() -> None:
    with pytest.raises(PnyxError) as err:
        load_settings(env={"PNYX_SECRET": "hunter2-but-too-short"})
    assert "secret" in err.value.message
    assert "hunter2" not in err.value.message
    with pytest.raises(PnyxError) as err:
        load_settings(env={"PNYX_REDIS": "redis+sentinel://:s3cret-pw@h1:26379"})
    assert "redis" in err.value.message
    assert "s3cret-pw" not in err.value.message
