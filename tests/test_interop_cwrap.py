"""Interop with cwrap: a program under Debian's libsocket-wrapper (1.3.5) and one under ours,
in one SOCKET_WRAPPER_DIR, talk to each other both ways (issue 2). cwrap knows interfaces
1..64 only, so the tests stay within that."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Net

NC = shutil.which("nc")

SERVER = ["accept", "from", "peer", "name", "recvall", "send", "pong from server", "close"]
CLIENT = ["name", "peer", "send", "ping from client", "shutwr", "recvall"]


@pytest.mark.parametrize("direction", ["cwrap-server", "cwrap-client"])
@pytest.mark.parametrize(("iface_srv", "iface_cli"), [(10, 20), (64, 1)])
def test_interop_both_ways(net: Net, sockops: str, libcwrap: Path, direction: str,
                           iface_srv: int, iface_cli: int) -> None:
    lib_srv, lib_cli = (libcwrap, net.lib) if direction == "cwrap-server" else (net.lib, libcwrap)
    host = f"127.0.0.{iface_srv}"
    server = net.start(
        [sockops, "tcp4", "bind", host, "7", "listen", "ready", *SERVER],
        net.env(iface_srv, lib=lib_srv),
        name=f"server under {lib_srv}",
    )
    server.expect("ready")
    assert net.is_socket("T%02X0007" % iface_srv), net.listing()

    client = net.start([sockops, "tcp4", "connect", host, "7", *CLIENT],
                       net.env(iface_cli, lib=lib_cli), name=f"client under {lib_cli}")
    assert client.wait() == 0, client.describe()
    assert server.wait() == 0, server.describe()

    cli, srv = client.stdout, server.stdout
    assert "connect: OK" in cli, client.describe()
    assert "data: ping from client" in srv, server.describe()
    assert "data: pong from server" in cli, client.describe()
    # Each side names the other by its emulated address.
    cli_name = net.parse_addr(client.expect("name: ", 0.1))
    assert cli_name[0] == f"127.0.0.{iface_cli}", cli
    assert f"peer: {host} 7" in cli
    assert net.parse_addr(server.expect("from: ", 0.1)) == cli_name, srv
    assert net.parse_addr(server.expect("peer: ", 0.1)) == cli_name, srv
    assert f"name: {host} 7" in srv


@pytest.mark.skipif(NC is None, reason="netcat-openbsd (nc) is not installed")
@pytest.mark.parametrize("direction", ["cwrap-server", "cwrap-client"])
def test_interop_nc(net: Net, libcwrap: Path, direction: str) -> None:
    assert NC is not None
    lib_srv, lib_cli = (libcwrap, net.lib) if direction == "cwrap-server" else (net.lib, libcwrap)
    server = net.start([NC, "-l", "127.0.0.10", "7"], net.env(10, lib=lib_srv), name="nc -l")
    server.close_stdin()
    net.wait_file("T0A0007", proc=server)
    line = f"interop {direction}\n"
    client = net.run([NC, "-N", "127.0.0.10", "7"], net.env(30, lib=lib_cli), input=line)
    assert client.returncode == 0, client.stderr
    assert server.wait() == 0, server.describe()
    assert server.stdout == [line.rstrip("\n")]
