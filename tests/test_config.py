"""cwrap_py.config: the SOCKET_WRAPPER_* rules and messages of the spec."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from cwrap_py.config import Config, ConfigError, errors, parse_dir

EXISTING = "expected an existing directory"
TOO_LONG = (
    "socket paths would not fit in sun_path; expected a directory path of at most 99 bytes "
    "(or set SOCKET_WRAPPER_DIR_ALLOW_ORIG)"
)
IFACE = "expected an integer from 1 to 254"
MTU = "expected an integer from 512 to 32768"
MAXS = "expected an integer from 1 to 256000"
DEBUG = "expected an integer from 0 to 3"
NET = "expected 127.0.0.0 or 10.53.57.0"


def test_unset_dir_is_inert_and_validates_nothing() -> None:
    assert Config.from_env({}) == Config()
    assert not Config.from_env({}).enabled
    bad = {"SOCKET_WRAPPER_MTU": "1", "SOCKET_WRAPPER_DEFAULT_IFACE": "abc"}
    assert Config.from_env(bad).dir is None
    assert Config.from_env({"SOCKET_WRAPPER_DIR": "", **bad}).dir is None


def test_defaults(tmp_path: Path) -> None:
    cfg = Config.from_env({"SOCKET_WRAPPER_DIR": str(tmp_path)})
    assert cfg.enabled and cfg.dir == os.path.realpath(tmp_path)
    assert (cfg.ipv4_network, cfg.default_iface, cfg.mtu) == ("127.0.0.0", 1, 1500)
    assert (cfg.max_sockets, cfg.debuglevel, cfg.pcap_file) == (65535, 0, None)
    assert not cfg.disable_deepbind and not cfg.dir_allow_orig


def test_all_values(tmp_path: Path) -> None:
    env = {
        "SOCKET_WRAPPER_DIR": str(tmp_path),
        "SOCKET_WRAPPER_IPV4_NETWORK": "10.53.57.0",
        "SOCKET_WRAPPER_DEFAULT_IFACE": "254",
        "SOCKET_WRAPPER_MTU": "32768",
        "SOCKET_WRAPPER_MAX_SOCKETS": "256000",
        "SOCKET_WRAPPER_DEBUGLEVEL": "3",
        "SOCKET_WRAPPER_PCAP_FILE": "/tmp/x.pcap",
        "SOCKET_WRAPPER_DISABLE_DEEPBIND": "1",
        "SOCKET_WRAPPER_DIR_ALLOW_ORIG": "yes",
    }
    cfg = Config.from_env(env)
    assert cfg == Config(
        os.path.realpath(tmp_path), "10.53.57.0", 254, 32768, 256000, 3, "/tmp/x.pcap", True, True
    )


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("SOCKET_WRAPPER_DEFAULT_IFACE", "1", 1),
        ("SOCKET_WRAPPER_DEFAULT_IFACE", "010", 10),
        ("SOCKET_WRAPPER_MTU", "512", 512),
        ("SOCKET_WRAPPER_MAX_SOCKETS", "1", 1),
        ("SOCKET_WRAPPER_DEBUGLEVEL", "0", 0),
        ("SOCKET_WRAPPER_IPV4_NETWORK", "127.0.0.0", "127.0.0.0"),
        ("SOCKET_WRAPPER_MTU", "", 1500),
        ("SOCKET_WRAPPER_DISABLE_DEEPBIND", "", False),
    ],
)
def test_good_values(tmp_path: Path, var: str, value: str, expected: object) -> None:
    cfg = Config.from_env({"SOCKET_WRAPPER_DIR": str(tmp_path), var: value})
    field = var.removeprefix("SOCKET_WRAPPER_").lower()
    assert getattr(cfg, field) == expected


BAD = [
    ("SOCKET_WRAPPER_DEFAULT_IFACE", v, IFACE)
    for v in ["0", "255", "abc", "+1", "-1", " 1", "1 ", "1.0", "0x0a", "\u0663", "9" * 40]
] + [
    ("SOCKET_WRAPPER_MTU", v, MTU) for v in ["511", "32769", "1500x", "-1500"]
] + [
    ("SOCKET_WRAPPER_MAX_SOCKETS", v, MAXS) for v in ["0", "256001", "1e3"]
] + [
    ("SOCKET_WRAPPER_DEBUGLEVEL", v, DEBUG) for v in ["4", "-1", "debug"]
] + [
    ("SOCKET_WRAPPER_IPV4_NETWORK", v, NET)
    for v in ["10.0.0.0", "127.0.0.1", "127.0.0.0 ", "10.53.57.0/24", "localhost"]
]


@pytest.mark.parametrize(("var", "value", "reason"), BAD)
def test_bad_values(tmp_path: Path, var: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env({"SOCKET_WRAPPER_DIR": str(tmp_path), var: value})
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.var, err.value, err.reason, err.errno) == (var, value, reason, errno.EINVAL)
    assert str(err) == f'{var}="{value}": {reason}'
    assert err.line() == f'swrap: {var}="{value}": {reason}'
    assert err.line("socket_wrapper[42]").startswith("socket_wrapper[42]: ")


def test_missing_dir(tmp_path: Path) -> None:
    value = str(tmp_path / "nope")
    with pytest.raises(ConfigError) as info:
        Config.from_env({"SOCKET_WRAPPER_DIR": value})
    assert str(info.value) == f'SOCKET_WRAPPER_DIR="{value}": no such directory; {EXISTING}'
    assert info.value.errno == errno.ENOENT


@pytest.mark.parametrize("sub", ["file", "file/below"])
def test_not_a_dir(tmp_path: Path, sub: str) -> None:
    (tmp_path / "file").write_text("x")
    value = str(tmp_path / sub)
    with pytest.raises(ConfigError) as info:
        parse_dir(value)
    assert str(info.value) == f'SOCKET_WRAPPER_DIR="{value}": not a directory; {EXISTING}'
    assert info.value.errno == errno.ENOTDIR


def test_symlink_is_resolved(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert parse_dir(str(tmp_path / "link")) == os.path.realpath(tmp_path / "real")


def _long_dir(tmp_path: Path) -> Path:
    deep = tmp_path / ("d" * 50) / ("e" * 50)
    deep.mkdir(parents=True)
    return deep


def test_too_long(tmp_path: Path) -> None:
    value = str(_long_dir(tmp_path))
    with pytest.raises(ConfigError) as info:
        Config.from_env({"SOCKET_WRAPPER_DIR": value})
    assert str(info.value) == f'SOCKET_WRAPPER_DIR="{value}": {TOO_LONG}'
    assert info.value.errno == errno.ENAMETOOLONG
    with pytest.raises(ConfigError):  # the value itself is too long: ALLOW_ORIG cannot help
        Config.from_env({"SOCKET_WRAPPER_DIR": value, "SOCKET_WRAPPER_DIR_ALLOW_ORIG": "1"})


def test_allow_orig_uses_the_value_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "s").symlink_to(_long_dir(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        parse_dir("s")
    assert info.value.errno == errno.ENAMETOOLONG
    assert parse_dir("s", allow_orig=True) == "s"
    env = {"SOCKET_WRAPPER_DIR": "s", "SOCKET_WRAPPER_DIR_ALLOW_ORIG": "1"}
    assert Config.from_env(env).dir == "s"
    assert errors({**env, "SOCKET_WRAPPER_DIR_ALLOW_ORIG": ""})[0].errno == errno.ENAMETOOLONG


def test_errors_lists_every_bad_value_dir_first(tmp_path: Path) -> None:
    env = {
        "SOCKET_WRAPPER_DIR": str(tmp_path / "nope"),
        "SOCKET_WRAPPER_MTU": "1",
        "SOCKET_WRAPPER_DEFAULT_IFACE": "0",
        "SOCKET_WRAPPER_DEBUGLEVEL": "2",
    }
    found = [e.var for e in errors(env)]
    assert found == ["SOCKET_WRAPPER_DIR", "SOCKET_WRAPPER_DEFAULT_IFACE", "SOCKET_WRAPPER_MTU"]
    assert [e.var for e in errors(env, check_dir=False)] == found[1:]
    with pytest.raises(ConfigError) as info:
        Config.from_env(env)
    assert info.value.var == "SOCKET_WRAPPER_DIR"
