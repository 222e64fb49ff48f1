"""cwrap_py.addr: socket file names <-> emulated addresses."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cwrap_py import abi
from cwrap_py.addr import (
    NETWORKS,
    AddrError,
    SockAddr,
    ip_of,
    is_file_name,
    parse_address,
    parse_file_name,
    parse_ip,
)

V4, V6 = socket.AF_INET, socket.AF_INET6
TEN = "10.53.57.0"


def test_abi_constants_match_the_contract() -> None:
    types = (abi.SWRAP_TYPE_TCP4, abi.SWRAP_TYPE_UDP4, abi.SWRAP_TYPE_TCP6, abi.SWRAP_TYPE_UDP6)
    assert "".join(map(chr, types)) == "TUXY"
    assert (abi.SWRAP_IFACE_MIN, abi.SWRAP_IFACE_MAX, abi.SWRAP_IFACE_DEFAULT) == (1, 254, 1)
    assert abi.SWRAP_DIR_MAX_LEN == 99
    assert NETWORKS == ("127.0.0.0", "10.53.57.0")


@pytest.mark.parametrize(
    ("sa", "name", "network", "text"),
    [
        (SockAddr("tcp", V4, 10, 7), "T0A0007", "127.0.0.0", "127.0.0.10:7"),
        (SockAddr("udp", V4, 10, 53), "U0A0035", "127.0.0.0", "127.0.0.10:53"),
        (SockAddr("tcp", V4, 10, 7), "T0A0007", TEN, "10.53.57.10:7"),
        (SockAddr("tcp", V6, 10, 7), "X0A0007", "127.0.0.0", "[fd00::5357:5f0a]:7"),
        (SockAddr("udp", V6, 10, 53), "Y0A0035", TEN, "[fd00::5357:5f0a]:53"),
        (SockAddr("tcp", V4, 254, 65535), "TFEFFFF", "127.0.0.0", "127.0.0.254:65535"),
        (SockAddr("udp", V4, 1, 0), "U010000", TEN, "10.53.57.1:0"),
        (SockAddr("tcp", V6, 1, 80), "X010050", "127.0.0.0", "[fd00::5357:5f01]:80"),
    ],
)
def test_examples(sa: SockAddr, name: str, network: str, text: str) -> None:
    assert sa.file_name == name
    assert parse_file_name(name) == sa
    assert sa.address(network) == text
    assert parse_address(text, sa.proto, network) == sa


@given(
    proto=st.sampled_from(["tcp", "udp"]),
    family=st.sampled_from([V4, V6]),
    iface=st.integers(1, 254),
    port=st.integers(0, 65535),
    network=st.sampled_from(NETWORKS),
)
def test_round_trip(proto: str, family: int, iface: int, port: int, network: str) -> None:
    sa = SockAddr(proto, family, iface, port)  # type: ignore[arg-type]
    letter: dict[tuple[str, int], str] = {
        ("tcp", V4): "T", ("udp", V4): "U", ("tcp", V6): "X", ("udp", V6): "Y"
    }
    assert sa.file_name == "%s%02X%04X" % (letter[(proto, family)], iface, port)
    assert is_file_name(sa.file_name)
    assert parse_file_name(sa.file_name) == sa
    assert parse_address(sa.address(network), sa.proto, network) == sa
    assert parse_ip(sa.ip(network), network) == (family, iface)


def test_ip_of() -> None:
    assert ip_of(V4, 100) == "127.0.0.100"
    assert ip_of(V4, 100, TEN) == "10.53.57.100"
    assert ip_of(V6, 255 - 1) == "fd00::5357:5ffe"


@pytest.mark.parametrize(
    ("text", "network", "fragment"),
    [
        ("127.0.0.10", "127.0.0.0", "expected ADDRESS:PORT"),
        ("127.0.0.10:", "127.0.0.0", "expected ADDRESS:PORT"),
        (":7", "127.0.0.0", "expected ADDRESS:PORT"),
        ("127.0.0.10:x", "127.0.0.0", "expected ADDRESS:PORT"),
        ("127.0.0.10:-1", "127.0.0.0", "expected ADDRESS:PORT"),
        ("fd00::5357:5f0a:7", "127.0.0.0", "expected ADDRESS:PORT"),
        ("127.0.0.10:65536", "127.0.0.0", "port 65536 out of range"),
        ("localhost:7", "127.0.0.0", "is not an IP address"),
        ("192.0.2.1:7", "127.0.0.0", "192.0.2.1 is not an emulated address"),
        ("127.0.0.0:7", "127.0.0.0", "not an emulated address"),
        ("127.0.0.255:7", "127.0.0.0", "not an emulated address"),
        ("127.0.1.10:7", "127.0.0.0", "not an emulated address"),
        ("10.53.57.10:7", "127.0.0.0", "not an emulated address"),
        ("127.0.0.10:7", TEN, "expected 10.53.57.1 to 10.53.57.254 or fd00::5357:5f01"),
        ("[::1]:7", "127.0.0.0", "not an emulated address"),
        ("[fd00::5357:5f00]:7", "127.0.0.0", "not an emulated address"),
        ("[fd00::5357:5fff]:7", "127.0.0.0", "not an emulated address"),
        ("[fd00::5357:600a]:7", "127.0.0.0", "not an emulated address"),
        ("127.0.0.10:7", "127.0.0.1", 'network "127.0.0.1": expected 127.0.0.0 or 10.53.57.0'),
    ],
)
def test_bad_addresses(text: str, network: str, fragment: str) -> None:
    with pytest.raises(AddrError, match=None) as info:
        parse_address(text, "tcp", network)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("T0A007", "not a socket file name"),
        ("T0A00070", "not a socket file name"),
        ("t0A0007", "not a socket file name"),
        ("T0a0007", "not a socket file name"),
        ("Z0A0007", "not a socket file name"),
        ("T0G0007", "not a socket file name"),
        ("T000007", "interface 0 out of range; expected 1 to 254"),
        ("TFF0007", "interface 255 out of range; expected 1 to 254"),
    ],
)
def test_bad_file_names(name: str, fragment: str) -> None:
    assert not is_file_name(name) or fragment.startswith("interface")
    with pytest.raises(AddrError) as info:
        parse_file_name(name)
    assert str(info.value).startswith(f'"{name}": ')
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "args", [("tcp", V4, 0, 7), ("tcp", V4, 255, 7), ("udp", V6, 1, 65536), ("sctp", V4, 1, 1)]
)
def test_bad_sockaddr(args: tuple[str, int, int, int]) -> None:
    with pytest.raises(AddrError):
        SockAddr(*args)  # type: ignore[arg-type]
