"""Inert unless asked (issue 2): with SOCKET_WRAPPER_DIR unset the preloaded library leaves
every call to libc, and AF_UNIX sockets are never touched even when it is set."""

from __future__ import annotations

import shutil
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Net

NC = shutil.which("nc")


def preloaded_no_dir(net: Net, extra: dict[str, str | None] | None = None) -> dict[str, str]:
    env = net.kernel_env(extra)
    env["LD_PRELOAD"] = str(net.lib)
    return env


SERVER = ["accept4", "from", "peer", "name", "backing", "recvall", "send", "reply", "close"]
CLIENT = ["backing", "name", "peer", "send", "request", "shutwr", "recvall"]


def loopback_exchange(net: Net, sockops: str, env: dict[str, str]) -> list[list[str]]:
    server = net.start(
        [sockops, "tcp4", "bind", "127.0.0.1", "0", "listen", "name", "backing", *SERVER], env
    )
    _, port = net.parse_addr(server.expect("name: "))
    client = net.start(
        [sockops, "tcp4", "nonblock", "connect", "127.0.0.1", str(port), "pollout", "5000",
         "soerror", "block", *CLIENT],
        env,
    )
    assert client.wait() == 0, client.describe()
    assert server.wait() == 0, server.describe()
    assert client.stderr == [] and server.stderr == []

    def strip(lines: list[str]) -> list[str]:
        # Ports differ from run to run; hosts must not.
        return [" ".join(ln.split()[:-1]) if ln.startswith(("name:", "peer:", "from:")) else ln
                for ln in lines]

    return [strip(server.stdout), strip(client.stdout)]


@pytest.mark.parametrize(
    "extra",
    [None, {"SOCKET_WRAPPER_MTU": "abc", "SOCKET_WRAPPER_DEFAULT_IFACE": "0",
            "SOCKET_WRAPPER_IPV4_NETWORK": "192.168.0.0"}],
    ids=["plain", "bad-values-ignored"],
)
def test_dir_unset_kernel_loopback_as_before(
    net: Net, sockops: str, extra: dict[str, str | None] | None
) -> None:
    kernel = loopback_exchange(net, sockops, net.kernel_env())
    preloaded = loopback_exchange(net, sockops, preloaded_no_dir(net, extra))
    assert "backing: inet" in kernel[0] and "backing: inet" in kernel[1]
    assert "data: reply" in kernel[1]
    assert preloaded == kernel
    assert net.listing() == []


def wait_kernel_listen(port: int, timeout: float) -> None:
    """Poll /proc/net/tcp until something listens on 127.0.0.1:port (bounded)."""
    want = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return
        time.sleep(0.01)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@pytest.mark.skipif(NC is None, reason="netcat-openbsd (nc) is not installed")
def test_dir_unset_nc_over_kernel_loopback(net: Net) -> None:
    assert NC is not None
    port = net.free_port()
    env = preloaded_no_dir(net)
    server = net.start([NC, "-l", "127.0.0.1", str(port)], env, name="nc -l")
    server.close_stdin()
    wait_kernel_listen(port, net.TIMEOUT)
    line = "over the kernel\n"
    res = net.run([NC, "-N", "127.0.0.1", str(port)], env, input=line)
    assert res.returncode == 0, res.stderr
    assert server.wait() == 0, server.describe()
    assert server.stdout == [line.rstrip("\n")]
    assert net.listing() == []


UNIX_PROGRAM = textwrap.dedent(
    """
    import os, socket, sys

    path = sys.argv[1]
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen()
    cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cli.connect(path)
    conn, _ = srv.accept()
    cli.sendall(b"unix stream")
    cli.shutdown(socket.SHUT_WR)
    print("stream", conn.recv(100).decode(), conn.recv(100) == b"")
    print("names", srv.getsockname() == path, cli.getpeername() == path)
    a, b = socket.socketpair()
    a.sendall(b"pair")
    print("pair", b.recv(100).decode(), a.family == socket.AF_UNIX)
    d1, d2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    d1.send(b"dgram")
    print("dgram", d2.recv(100).decode())
    """
)


def test_unix_sockets_untouched_when_dir_set(net: Net, tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    res = net.run([sys.executable, "-c", UNIX_PROGRAM, str(path)], net.env(10))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "stream unix stream True",
        "names True True",
        "pair pair True",
        "dgram dgram",
    ]
    assert res.stderr == ""
    assert net.listing() == []


UNSET_AT_RUN_TIME = textwrap.dedent(
    """
    import os, socket

    def backing(s):
        ino = os.fstat(s.fileno()).st_ino
        with open("/proc/self/net/unix") as f:
            unix = any(line.split()[6] == str(ino) for line in list(f)[1:])
        return "unix" if unix else "kernel"

    wrapped = socket.socket()
    wrapped.bind(("127.0.0.10", 7))
    print("wrapped", backing(wrapped), wrapped.getsockname(), flush=True)
    del os.environ["SOCKET_WRAPPER_DIR"]
    plain = socket.socket()
    plain.bind(("127.0.0.1", 0))
    plain.listen()
    host, port = plain.getsockname()
    c = socket.create_connection((host, port), timeout=10)
    conn, peer = plain.accept()
    c.sendall(b"kernel")
    print("plain", backing(plain), host, conn.recv(100).decode(), peer[0], flush=True)
    """
)


def test_unsetting_dir_at_run_time_goes_back_to_the_kernel(net: Net) -> None:
    res = net.run([sys.executable, "-c", UNSET_AT_RUN_TIME], net.env(10))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "wrapped unix ('127.0.0.10', 7)",
        "plain kernel 127.0.0.1 kernel 127.0.0.1",
    ]
