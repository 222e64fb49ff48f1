"""Unmodified programs talking TCP over emulated IPv4 (issue 2).

Real tools (nc, python3 -m http.server, curl) and the small C program tests/progs/sockops.c
run under LD_PRELOAD in a fresh SOCKET_WRAPPER_DIR. Where it makes sense the same scenario
also runs on kernel loopback without the preload, and both must observe the same thing.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Net, Proc

NC = shutil.which("nc")
CURL = shutil.which("curl")

needs_nc = pytest.mark.skipif(NC is None, reason="netcat-openbsd (nc) is not installed")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def tcp_name(iface: int, port: int) -> str:
    return "T%02X%04X" % (iface, port)


# --------------------------------------------------------------------------- real tools


@needs_nc
def test_nc_line_arrives_and_socket_file_exists(net: Net) -> None:
    assert NC is not None
    server = net.start([NC, "-l", "127.0.0.10", "7"], net.env(10), name="nc -l")
    server.close_stdin()
    net.wait_file("T0A0007", proc=server)
    assert net.is_socket("T0A0007")

    line = "hello from iface 100\n"
    client = net.run([NC, "-N", "127.0.0.10", "7"], net.env(100), input=line)
    assert client.returncode == 0, client.stderr

    assert server.wait() == 0, server.describe()
    assert server.stdout == [line.rstrip("\n")], server.describe()


@needs_nc
def test_nc_client_seen_from_iface_100(net: Net, sockops: str) -> None:
    assert NC is not None
    server = net.start(
        [sockops, "tcp4", "bind", "127.0.0.10", "7", "listen", "ready",
         "accept", "from", "peer", "name", "recvall", "close"],
        net.env(10),
    )
    server.expect("ready")
    assert net.is_socket("T0A0007")

    client = net.run([NC, "-N", "127.0.0.10", "7"], net.env(100), input="ping\n")
    assert client.returncode == 0, client.stderr
    assert server.wait() == 0, server.describe()

    out = server.stdout
    frm = net.parse_addr(server.expect("from: ", 0.1))
    peer = net.parse_addr(server.expect("peer: ", 0.1))
    assert frm == peer, out
    assert peer[0] == "127.0.0.100", out
    assert peer[1] in net.EPHEMERAL, out
    assert "name: 127.0.0.10 7" in out
    assert "data: ping|" in out


@needs_curl
def test_http_server_and_curl(net: Net, tmp_path: Path) -> None:
    assert CURL is not None
    docroot = tmp_path / "www"
    docroot.mkdir()
    body = "hello over the emulated network\n"
    (docroot / "hello.txt").write_text(body)
    port = 8080

    server = net.start(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.10",
         "--directory", str(docroot), str(port)],
        net.env(10),
        name="http.server",
    )
    net.wait_file(tcp_name(10, port), proc=server)

    res = net.run(
        [CURL, "-sS", "--max-time", "10", "-o", "-",
         "-w", "\\n%{local_ip} %{remote_ip} %{remote_port}\\n",
         f"http://127.0.0.10:{port}/hello.txt"],
        net.env(20),
    )
    assert res.returncode == 0, res.stderr
    # The page, then what curl saw: its own (emulated) address and the server's.
    assert res.stdout == f"{body}\n127.0.0.20 127.0.0.10 {port}\n", res.stdout

    # The access log (stderr) names the client by its emulated address.
    line = server.expect_err("127.0.0.20 - - [")
    assert '"GET /hello.txt HTTP/1.1" 200' in line, line


# --------------------------------------------------------------------------- sockops scenarios


def start_server(net: Net, sockops: str, env: dict[str, str], host: str, port: int,
                 script: list[str]) -> tuple[Proc, int]:
    """sockops listening on host:port (0: ephemeral); returns the process and its port."""
    server = net.start([sockops, "tcp4", "bind", host, str(port), "listen", "name", *script], env)
    _, bound = net.parse_addr(server.expect("name: "))
    return server, bound


def drop_addresses(lines: list[str]) -> list[str]:
    return [ln for ln in lines if not ln.startswith(("name:", "peer:", "from:"))]


def exchange(net: Net, sockops: str, wrapped: bool, server_script: list[str],
             client_script: list[str], iface_server: int = 10,
             iface_client: int = 20) -> tuple[list[str], list[str]]:
    """Run server and client scripts on kernel loopback or wrapped; return both outputs."""
    if wrapped:
        host = f"127.0.0.{iface_server}"
        senv, cenv = net.env(iface_server), net.env(iface_client)
    else:
        host = "127.0.0.1"
        senv = cenv = net.kernel_env()
    server, port = start_server(net, sockops, senv, host, 0, server_script)
    client = net.start([sockops, "tcp4", "connect", host, str(port), *client_script], cenv)
    assert client.wait() == 0, client.describe()
    assert server.wait() == 0, server.describe()
    return server.stdout, client.stdout


HALF_CLOSE = (
    ["accept", "recvall", "send", "reply after EOF", "close"],
    ["send", "request", "shutwr", "recvall"],
)


@pytest.mark.parametrize("wrapped", [False, True], ids=["kernel", "wrapped"])
def test_half_close_delivers_eof(net: Net, sockops: str, wrapped: bool) -> None:
    srv, cli = exchange(net, sockops, wrapped, *HALF_CLOSE)
    assert "data: request" in srv, srv
    assert "data: reply after EOF" in cli, cli


def test_half_close_same_as_kernel(net: Net, sockops: str) -> None:
    kernel = exchange(net, sockops, False, *HALF_CLOSE)
    wrapped = exchange(net, sockops, True, *HALF_CLOSE)
    assert [drop_addresses(x) for x in wrapped] == [drop_addresses(x) for x in kernel]


MIB = 1 << 20


@pytest.mark.parametrize("call", ["writen", "sendn"])
@pytest.mark.parametrize("mtu", [None, "512"], ids=["mtu-default", "mtu-512"])
def test_blocking_write_of_1mib_is_not_cut_at_mtu(
    net: Net, sockops: str, call: str, mtu: str | None
) -> None:
    extra = {"SOCKET_WRAPPER_MTU": mtu}
    server, port = start_server(
        net, sockops, net.env(10, extra=extra), "127.0.0.10", 0, ["accept", "recvall", "close"]
    )
    client = net.start(
        [sockops, "tcp4", "connect", "127.0.0.10", str(port), call, str(MIB), "close"],
        net.env(20, extra=extra),
    )
    assert client.wait() == 0, client.describe()
    assert server.wait() == 0, server.describe()
    wrote = client.expect(f"{call}: ", 0.1)
    count, fnv = wrote.split()[1:3]
    assert int(count) == MIB, client.describe()
    got = server.expect("recvall: ", 0.1)
    assert got == f"recvall: {MIB} bytes {fnv}", server.describe()


@pytest.mark.parametrize("wrapped", [False, True], ids=["kernel", "wrapped"])
def test_accept4_flags_and_addresses(net: Net, sockops: str, wrapped: bool) -> None:
    srv, cli = exchange(
        net, sockops, wrapped,
        ["accept4", "from", "peer", "name", "recvall", "close"],
        ["name", "peer", "send", "x", "close"],
    )
    assert "accept4: OK nonblock=1 cloexec=1" in srv, srv
    assert "data: x" in srv, srv
    # What accept4 returned, getpeername on the accepted socket and getsockname of the
    # client all name the same address; likewise for the server side.
    frm = [ln for ln in srv if ln.startswith("from: ")][0][6:]
    peer = [ln for ln in srv if ln.startswith("peer: ")][0][6:]
    cli_name = [ln for ln in cli if ln.startswith("name: ")][0][6:]
    srv_name = [ln for ln in srv if ln.startswith("name: ")][-1][6:]
    cli_peer = [ln for ln in cli if ln.startswith("peer: ")][0][6:]
    assert frm == peer == cli_name, (srv, cli)
    assert srv_name == cli_peer, (srv, cli)
    if wrapped:
        host, port = cli_name.split()
        assert host == "127.0.0.20"
        assert int(port) in net.EPHEMERAL
        assert cli_peer.split()[0] == "127.0.0.10"


def abstract_names() -> set[str]:
    """Bound abstract Unix names, as /proc/net/unix lists them ("@..." in the last column)."""
    rows = Path("/proc/net/unix").read_text().splitlines()[1:]
    return {row.split(None, 7)[7] for row in rows if len(row.split(None, 7)) == 8}


def test_implicit_bind_gives_client_an_ephemeral_address(net: Net, sockops: str) -> None:
    """An unbound client gets an ephemeral port on its default iface.  Talking to a listener
    of ours it holds that address by an abstract name (no file to create per connection);
    the interop tests show it binding a file when the listener is cwrap's."""
    server, port = start_server(
        net, sockops, net.env(10), "127.0.0.10", 7, ["accept", "peer", "wait", "recvall"]
    )
    client = net.start(
        [sockops, "tcp4", "connect", "127.0.0.10", "7", "name", "wait", "close"], net.env(30)
    )
    host, cport = net.parse_addr(client.expect("name: "))
    client.expect("wait")
    assert (host, cport) == net.parse_addr(server.expect("peer: "))
    assert host == "127.0.0.30"
    assert cport in net.EPHEMERAL
    assert f"@{net.dir}/{tcp_name(30, cport)}" in abstract_names()
    assert not (net.dir / tcp_name(30, cport)).exists(), net.listing()
    server.expect("wait")
    client.send()
    assert client.wait() == 0, client.describe()
    server.send()
    assert server.wait() == 0, server.describe()


@pytest.mark.parametrize("iface", [None, 10, 254])
def test_inaddr_any_binds_default_iface(net: Net, sockops: str, iface: int | None) -> None:
    expect_iface = iface or 1
    server = net.start(
        [sockops, "tcp4", "bind", "0.0.0.0", "80", "listen", "name", "ready",
         "accept", "name", "recvall"],
        net.env(iface),
    )
    host, port = net.parse_addr(server.expect("name: "))
    assert port == 80
    assert host in ("0.0.0.0", f"127.0.0.{expect_iface}"), server.describe()
    server.expect("ready")
    assert net.is_socket(tcp_name(expect_iface, 80)), net.listing()

    client = net.run(
        [sockops, "tcp4", "connect", f"127.0.0.{expect_iface}", "80", "send", "hi", "close"],
        net.env(20),
    )
    assert "connect: OK" in client.stdout, client.stdout
    assert server.wait() == 0, server.describe()
    # The accepted connection's local address is the concrete interface address.
    names = [ln for ln in server.stdout if ln.startswith("name: ")]
    assert names[-1] == f"name: 127.0.0.{expect_iface} 80", server.describe()


def test_closed_listener_removes_its_file(net: Net, sockops: str) -> None:
    server = net.start(
        [sockops, "tcp4", "bind", "127.0.0.10", "7", "listen", "wait", "close", "wait"],
        net.env(10),
    )
    server.expect("wait")
    assert net.is_socket("T0A0007")
    server.send()
    server.expect("close: OK")
    server.expect("wait")
    assert not net.path("T0A0007").exists(), net.listing()
    # And nobody answers there any more.
    client = net.run([sockops, "tcp4", "connect", "127.0.0.10", "7"], net.env(20))
    assert client.stdout.splitlines() == ["tcp4: OK", "connect: ECONNREFUSED"]
    server.send()
    assert server.wait() == 0


def test_port_0_bind_is_ephemeral(net: Net, sockops: str) -> None:
    server = net.start([sockops, "tcp4", "bind", "127.0.0.10", "0", "listen", "name", "wait"],
                       net.env(10))
    host, port = net.parse_addr(server.expect("name: "))
    server.expect("wait")
    assert host == "127.0.0.10"
    assert port in net.EPHEMERAL
    assert net.is_socket(tcp_name(10, port)), net.listing()


def test_ten_network_exchange(net: Net, sockops: str, netns: list[str]) -> None:
    """SOCKET_WRAPPER_IPV4_NETWORK=10.53.57.0, run in an empty network namespace."""
    ten = "10.53.57.0"
    server = net.start(
        [*netns, sockops, "tcp4", "bind", "10.53.57.10", "7", "listen", "ready",
         "accept", "peer", "name", "recvall", "send", "pong", "close"],
        net.env(10, network=ten),
    )
    server.expect("ready")
    assert net.is_socket("T0A0007")
    client = net.start(
        [*netns, sockops, "tcp4", "connect", "10.53.57.10", "7", "backing", "name", "peer",
         "send", "ping", "shutwr", "recvall"],
        net.env(20, network=ten),
    )
    assert client.wait() == 0, client.describe()
    assert server.wait() == 0, server.describe()
    cli = client.stdout
    assert "connect: OK" in cli
    assert "backing: unix" in cli
    assert "peer: 10.53.57.10 7" in cli
    assert "data: pong" in cli
    host, _ = net.parse_addr(client.expect("name: ", 0.1))
    assert host == "10.53.57.20"
    srv = server.stdout
    assert net.parse_addr(server.expect("peer: ", 0.1))[0] == "10.53.57.20"
    assert "name: 10.53.57.10 7" in srv
    assert "data: ping" in srv


def test_many_connections_in_sequence(net: Net, sockops: str) -> None:
    """A listener serves several clients; every client gets a distinct emulated port."""
    n = 5
    script: list[str] = []
    for _ in range(n):
        script += ["use", "0", "accept", "peer", "recvall", "close"]
    server = net.start([sockops, "tcp4", "bind", "127.0.0.10", "7", "listen", "ready", *script],
                       net.env(10))
    server.expect("ready")
    t0 = time.monotonic()
    for i in range(n):
        res = net.run([sockops, "tcp4", "connect", "127.0.0.10", "7", "send", f"c{i}", "close"],
                      net.env(40 + i))
        assert "connect: OK" in res.stdout, res.stdout
    assert server.wait() == 0, server.describe()
    peers = [net.parse_addr(ln) for ln in server.stdout if ln.startswith("peer: ")]
    assert [h for h, _ in peers] == [f"127.0.0.{40 + i}" for i in range(n)]
    assert [ln for ln in server.stdout if ln.startswith("data: ")] == [
        f"data: c{i}" for i in range(n)
    ]
    assert time.monotonic() - t0 < net.TIMEOUT
