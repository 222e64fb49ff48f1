"""Validation of the SOCKET_WRAPPER_* variables, with the C library's rules.

An empty value counts as unset. Integers are ASCII decimal digits only (no
sign, no spaces). Messages are the ones the C library prints, after its
``socket_wrapper[<pid>]: `` prefix (the CLI uses ``swrap: ``).
"""

from __future__ import annotations

import errno as errnos
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from cwrap_py import abi
from cwrap_py.addr import DEFAULT_NETWORK, NETWORKS

DIR: Final = "SOCKET_WRAPPER_DIR"
IPV4_NETWORK: Final = "SOCKET_WRAPPER_IPV4_NETWORK"
DEFAULT_IFACE: Final = "SOCKET_WRAPPER_DEFAULT_IFACE"
MTU: Final = "SOCKET_WRAPPER_MTU"
MAX_SOCKETS: Final = "SOCKET_WRAPPER_MAX_SOCKETS"
DEBUGLEVEL: Final = "SOCKET_WRAPPER_DEBUGLEVEL"
PCAP_FILE: Final = "SOCKET_WRAPPER_PCAP_FILE"
DISABLE_DEEPBIND: Final = "SOCKET_WRAPPER_DISABLE_DEEPBIND"
DIR_ALLOW_ORIG: Final = "SOCKET_WRAPPER_DIR_ALLOW_ORIG"

_EXISTING: Final = "expected an existing directory"
_TOO_LONG: Final = (
    "socket paths would not fit in sun_path; expected a directory path of at most "
    f"{abi.SWRAP_DIR_MAX_LEN} bytes (or set {DIR_ALLOW_ORIG})"
)


class ConfigError(ValueError):
    """A bad SOCKET_WRAPPER_* value: ``str()`` is ``VAR="value": reason``."""

    def __init__(self, var: str, value: str, reason: str, errno: int) -> None:
        super().__init__(f'{var}="{value}": {reason}')
        self.var = var
        self.value = value
        self.reason = reason
        self.errno = errno

    def line(self, prog: str = "swrap") -> str:
        """The one-line message, e.g. ``swrap: SOCKET_WRAPPER_MTU="1": expected ...``."""
        return f"{prog}: {self}"


def parse_dir(value: str, allow_orig: bool = False) -> str:
    """The directory the library uses for ``SOCKET_WRAPPER_DIR=value``."""
    try:
        real = os.path.realpath(value, strict=True)
    except OSError as err:
        code = err.errno or errnos.ENOENT
        if code == errnos.ENOENT:
            raise ConfigError(DIR, value, f"no such directory; {_EXISTING}", code) from None
        if code == errnos.ENOTDIR:
            raise ConfigError(DIR, value, f"not a directory; {_EXISTING}", code) from None
        reason = f"{os.strerror(code).lower()}; {_EXISTING}"
        raise ConfigError(DIR, value, reason, code) from None
    if not os.path.isdir(real):
        raise ConfigError(DIR, value, f"not a directory; {_EXISTING}", errnos.ENOTDIR)
    if len(os.fsencode(real)) <= abi.SWRAP_DIR_MAX_LEN:
        return real
    if allow_orig and len(os.fsencode(value)) <= abi.SWRAP_DIR_MAX_LEN:
        return value
    raise ConfigError(DIR, value, _TOO_LONG, errnos.ENAMETOOLONG)


def parse_network(value: str) -> str:
    if value not in NETWORKS:
        raise ConfigError(IPV4_NETWORK, value, f"expected {' or '.join(NETWORKS)}", errnos.EINVAL)
    return value


def _int_parser(var: str, low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if value.isascii() and value.isdigit() and low <= int(value) <= high:
            return int(value)
        reason = f"expected an integer from {low} to {high}"
        raise ConfigError(var, value, reason, errnos.EINVAL)

    return parse


parse_default_iface: Final = _int_parser(DEFAULT_IFACE, abi.SWRAP_IFACE_MIN, abi.SWRAP_IFACE_MAX)
parse_mtu: Final = _int_parser(MTU, abi.SWRAP_MTU_MIN, abi.SWRAP_MTU_MAX)
parse_max_sockets: Final = _int_parser(
    MAX_SOCKETS, abi.SWRAP_MAX_SOCKETS_MIN, abi.SWRAP_MAX_SOCKETS_LIMIT
)
parse_debuglevel: Final = _int_parser(DEBUGLEVEL, 0, abi.SWRAP_DEBUGLEVEL_MAX)

_PARSERS: Final[dict[str, Callable[[str], object]]] = {
    IPV4_NETWORK: parse_network,
    DEFAULT_IFACE: parse_default_iface,
    MTU: parse_mtu,
    MAX_SOCKETS: parse_max_sockets,
    DEBUGLEVEL: parse_debuglevel,
}


def errors(env: Mapping[str, str], *, check_dir: bool = True) -> list[ConfigError]:
    """Every bad value in ``env`` (set or not SOCKET_WRAPPER_DIR), DIR first."""
    found = []
    names = ([DIR] if check_dir else []) + list(_PARSERS)
    for var in names:
        value = env.get(var, "")
        if not value:
            continue
        try:
            if var == DIR:
                parse_dir(value, bool(env.get(DIR_ALLOW_ORIG)))
            else:
                _PARSERS[var](value)
        except ConfigError as err:
            found.append(err)
    return found


@dataclass(frozen=True)
class Config:
    """What the library makes of an environment. ``dir`` None = inert."""

    dir: str | None = None
    ipv4_network: str = DEFAULT_NETWORK
    default_iface: int = abi.SWRAP_IFACE_DEFAULT
    mtu: int = abi.SWRAP_MTU_DEFAULT
    max_sockets: int = abi.SWRAP_MAX_SOCKETS_DEFAULT
    debuglevel: int = 0
    pcap_file: str | None = None
    disable_deepbind: bool = False
    dir_allow_orig: bool = False

    @property
    def enabled(self) -> bool:
        return self.dir is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read ``env`` as the library does: nothing is validated while
        SOCKET_WRAPPER_DIR is unset; otherwise raise the first ConfigError."""
        deepbind_off = bool(env.get(DISABLE_DEEPBIND))
        allow_orig = bool(env.get(DIR_ALLOW_ORIG))
        if not env.get(DIR):
            return cls(disable_deepbind=deepbind_off, dir_allow_orig=allow_orig)
        bad = errors(env)
        if bad:
            raise bad[0]

        def get(var: str, default: object) -> str:
            return env.get(var) or str(default)

        return cls(
            dir=parse_dir(env[DIR], allow_orig),
            ipv4_network=parse_network(get(IPV4_NETWORK, DEFAULT_NETWORK)),
            default_iface=parse_default_iface(get(DEFAULT_IFACE, abi.SWRAP_IFACE_DEFAULT)),
            mtu=parse_mtu(get(MTU, abi.SWRAP_MTU_DEFAULT)),
            max_sockets=parse_max_sockets(get(MAX_SOCKETS, abi.SWRAP_MAX_SOCKETS_DEFAULT)),
            debuglevel=parse_debuglevel(get(DEBUGLEVEL, 0)),
            pcap_file=env.get(PCAP_FILE) or None,
            disable_deepbind=deepbind_off,
            dir_allow_orig=allow_orig,
        )
