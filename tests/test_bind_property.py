"""Property (hypothesis): for any interface and port, the socket file the C library creates
on bind is the one `cwrap_py.addr` predicts, and getsockname returns the emulated address.

One long-lived Python child per (family, network) runs under the preload and binds batches
of addresses read from stdin, so each example costs a few syscalls, not a process start.
"""

from __future__ import annotations

import socket
import stat
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cwrap_py.addr import SockAddr

if TYPE_CHECKING:
    from conftest import Net, Proc

BINDER = textwrap.dedent(
    """
    import errno, socket, sys

    held = []
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "bind":
            fam = socket.AF_INET if cmd[1] == "4" else socket.AF_INET6
            s = socket.socket(fam, socket.SOCK_STREAM)
            try:
                s.bind((cmd[2], int(cmd[3])))
                s.listen()
                name = s.getsockname()
                print("ok", name[0], name[1])
                held.append(s)
            except OSError as e:
                print("err", errno.errorcode.get(e.errno, e.errno))
                s.close()
        elif cmd[0] == "closeall":
            for s in held:
                s.close()
            held.clear()
            print("closed")
        sys.stdout.flush()
    """
)

IFACES = st.integers(min_value=1, max_value=254)
PORTS = st.integers(min_value=1, max_value=65535)
BATCHES = st.lists(st.tuples(IFACES, PORTS), min_size=1, max_size=25, unique=True)


def check_batch(net: Net, child: Proc, family: int, network: str,
                batch: list[tuple[int, int]]) -> None:
    child.send("closeall\n")
    child.expect("closed")
    assert net.listing() == []
    fam = "4" if family == socket.AF_INET else "6"
    expected = [SockAddr("tcp", family, iface, port) for iface, port in batch]
    child.send("".join(f"bind {fam} {a.ip(network)} {a.port}\n" for a in expected))
    for addr in expected:
        line = child.expect("", 10)
        assert line == f"ok {addr.ip(network)} {addr.port}", (addr, line)
        mode = net.path(addr.file_name).stat().st_mode
        assert stat.S_ISSOCK(mode), addr.file_name
    assert net.listing() == sorted(a.file_name for a in expected)
    # Closing the listeners removes their files.
    child.send("closeall\n")
    child.expect("closed")
    assert net.listing() == []


@pytest.mark.parametrize(
    ("family", "network"),
    [
        (socket.AF_INET, "127.0.0.0"),
        (socket.AF_INET, "10.53.57.0"),
        (socket.AF_INET6, "127.0.0.0"),
    ],
    ids=["ipv4-127", "ipv4-10.53.57", "ipv6"],
)
def test_bind_file_and_name_match_cwrap_py_addr(net: Net, family: int, network: str) -> None:
    child = net.start([sys.executable, "-u", "-c", BINDER], net.env(1, network=network),
                      name="binder")

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batch=BATCHES)
    def check(batch: list[tuple[int, int]]) -> None:
        check_batch(net, child, family, network, batch)

    check()
    child.close_stdin()
    assert child.wait() == 0, child.describe()
    assert child.stderr == []


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
def test_bind_extremes(net: Net, family: int) -> None:
    """Interfaces 1, 64, 65 (beyond cwrap), 254 with ports 1 and 65535."""
    child = net.start([sys.executable, "-u", "-c", BINDER], net.env(1), name="binder")
    batch = [(i, p) for i in (1, 64, 65, 254) for p in (1, 65535)]
    check_batch(net, child, family, "127.0.0.0", batch)
