"""The address scheme: socket file names <-> emulated addresses.

A socket bound to an emulated address is the file ``"%c%02X%04X" % (type, iface,
port)`` in SOCKET_WRAPPER_DIR; type T=TCP/IPv4, U=UDP/IPv4, X=TCP/IPv6,
Y=UDP/IPv6. Interface ``N`` is 127.0.0.N (or 10.53.57.N on the 10.53.57.0
network) and fd00::5357:5fNN.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Final, Literal

from cwrap_py import abi

Proto = Literal["tcp", "udp"]

NETWORKS: Final[tuple[str, ...]] = tuple(
    str(ipaddress.IPv4Address(n)) for n in (abi.SWRAP_NET_LOOPBACK, abi.SWRAP_NET_TEN)
)
DEFAULT_NETWORK: Final[str] = NETWORKS[0]
_HEX: Final = frozenset("0123456789ABCDEF")
_TYPES: Final[dict[tuple[Proto, int], int]] = {
    ("tcp", socket.AF_INET): abi.SWRAP_TYPE_TCP4,
    ("udp", socket.AF_INET): abi.SWRAP_TYPE_UDP4,
    ("tcp", socket.AF_INET6): abi.SWRAP_TYPE_TCP6,
    ("udp", socket.AF_INET6): abi.SWRAP_TYPE_UDP6,
}
_BY_TYPE: Final[dict[str, tuple[Proto, int]]] = {chr(t): k for k, t in _TYPES.items()}


class AddrError(ValueError):
    """Bad address, socket file name, interface, port or network."""


@dataclass(frozen=True, order=True)
class SockAddr:
    """An emulated socket address: protocol, family, interface id and port."""

    proto: Proto
    family: int
    iface: int
    port: int

    def __post_init__(self) -> None:
        if (self.proto, self.family) not in _TYPES:
            raise AddrError(f"unsupported protocol/family {self.proto}/{self.family}")
        check_iface(self.iface)
        check_port(self.port)

    @property
    def file_name(self) -> str:
        """The socket file name, e.g. ``T0A0007``."""
        return "%c%02X%04X" % (_TYPES[(self.proto, self.family)], self.iface, self.port)

    def ip(self, network: str = DEFAULT_NETWORK) -> str:
        """The IP address, e.g. ``127.0.0.10`` or ``fd00::5357:5f0a``."""
        return ip_of(self.family, self.iface, network)

    def address(self, network: str = DEFAULT_NETWORK) -> str:
        """``127.0.0.10:7`` or ``[fd00::5357:5f0a]:7``."""
        ip = self.ip(network)
        return f"[{ip}]:{self.port}" if self.family == socket.AF_INET6 else f"{ip}:{self.port}"


def check_iface(iface: int) -> int:
    if not abi.SWRAP_IFACE_MIN <= iface <= abi.SWRAP_IFACE_MAX:
        raise AddrError(
            f"interface {iface} out of range; expected "
            f"{abi.SWRAP_IFACE_MIN} to {abi.SWRAP_IFACE_MAX}"
        )
    return iface


def check_port(port: int) -> int:
    if not 0 <= port <= 0xFFFF:
        raise AddrError(f"port {port} out of range; expected 0 to 65535")
    return port


def check_network(network: str) -> int:
    """The network's base address as an int; AddrError unless a supported one."""
    if network not in NETWORKS:
        raise AddrError(f'network "{network}": expected {" or ".join(NETWORKS)}')
    return int(ipaddress.IPv4Address(network))


def _ipv6_prefix() -> bytes:
    prefix = bytearray(15)
    prefix[0] = abi.SWRAP_IPV6_BYTE0
    prefix[12] = abi.SWRAP_IPV6_BYTE12
    prefix[13] = abi.SWRAP_IPV6_BYTE13
    prefix[14] = abi.SWRAP_IPV6_BYTE14
    return bytes(prefix)


_IPV6_PREFIX: Final = _ipv6_prefix()


def ip_of(family: int, iface: int, network: str = DEFAULT_NETWORK) -> str:
    """The emulated IP address of interface ``iface``."""
    check_iface(iface)
    if family == socket.AF_INET:
        return str(ipaddress.IPv4Address(check_network(network) + iface))
    if family == socket.AF_INET6:
        return str(ipaddress.IPv6Address(_IPV6_PREFIX + bytes([iface])))
    raise AddrError(f"unsupported address family {family}")


def _emulated_range(network: str) -> str:
    lo, hi = abi.SWRAP_IFACE_MIN, abi.SWRAP_IFACE_MAX
    v4, v6 = socket.AF_INET, socket.AF_INET6
    return (
        f"{ip_of(v4, lo, network)} to {ip_of(v4, hi, network)} "
        f"or {ip_of(v6, lo)} to {ip_of(v6, hi)}"
    )


def parse_ip(text: str, network: str = DEFAULT_NETWORK) -> tuple[int, int]:
    """``(family, iface)`` of an emulated IP address; AddrError for any other."""
    base = check_network(network)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise AddrError(f'"{text}" is not an IP address') from None
    if isinstance(ip, ipaddress.IPv4Address):
        family, iface, ok = socket.AF_INET, int(ip) - base, int(ip) >> 8 == base >> 8
    else:
        packed = ip.packed
        family, iface, ok = socket.AF_INET6, packed[15], packed[:15] == _IPV6_PREFIX
    if not ok or not abi.SWRAP_IFACE_MIN <= iface <= abi.SWRAP_IFACE_MAX:
        raise AddrError(
            f"{text} is not an emulated address; expected {_emulated_range(network)}"
        )
    return family, iface


def parse_address(text: str, proto: Proto, network: str = DEFAULT_NETWORK) -> SockAddr:
    """Parse ``127.0.0.10:7`` or ``[fd00::5357:5f0a]:7``."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""
    if not sep or not host or not (port.isascii() and port.isdigit()):
        raise AddrError(
            f'"{text}": expected ADDRESS:PORT, e.g. 127.0.0.10:7 or [fd00::5357:5f0a]:7'
        )
    family, iface = parse_ip(host, network)
    return SockAddr(proto, family, iface, check_port(int(port)))


def is_file_name(name: str) -> bool:
    """True if ``name`` has the shape of a socket file name (T/U/X/Y + 6 hex)."""
    return (
        len(name) == abi.SWRAP_NAME_LEN
        and name[0] in _BY_TYPE
        and all(c in _HEX for c in name[1:])
    )


def parse_file_name(name: str) -> SockAddr:
    """Parse a socket file name such as ``T0A0007``."""
    if not is_file_name(name):
        raise AddrError(
            f'"{name}": not a socket file name; expected T, U, X or Y and 6 upper-case hex '
            f"digits (interface, port), e.g. T0A0007"
        )
    proto, family = _BY_TYPE[name[0]]
    try:
        return SockAddr(proto, family, int(name[1:3], 16), int(name[3:], 16))
    except AddrError as err:
        raise AddrError(f'"{name}": {err}') from None
