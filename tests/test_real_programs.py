"""Unmodified programs over UDP, IPv6 and TCP under the wrapper (issue 3, Tests).

socat exchanging UDP/IPv4 and UDP/IPv6 datagrams, a UDP echo service found by broadcast
(tests/progs/udpecho.c), and redis-server with redis-cli and redis-benchmark. Every process
runs under LD_PRELOAD in a fresh SOCKET_WRAPPER_DIR and is killed by PID in teardown; anything
that names an emulated IPv6 address or 255.255.255.255 runs in an empty network namespace.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from netsupport import addr6, sock_name, wait_line

if TYPE_CHECKING:
    from conftest import Net, Proc

SOCAT = shutil.which("socat")
REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
REDIS_BENCHMARK = shutil.which("redis-benchmark")

needs_socat = pytest.mark.skipif(SOCAT is None, reason="socat is not installed")
needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None or REDIS_CLI is None,
    reason="redis-server / redis-cli are not installed (apt-get install redis-server)",
)


def socat_v6(addr: str) -> str:
    """How socat -d -d prints an IPv6 address: eight zero-padded groups."""
    return ipaddress.IPv6Address(addr).exploded


# --------------------------------------------------------------------------- socat


@needs_socat
@pytest.mark.parametrize("family", ["UDP4", "UDP6"])
def test_socat_udp_echo(net: Net, netns: list[str], family: str) -> None:
    """socat UDPx-LISTEN ... PIPE echoes a client's datagrams; the server names the client by
    its emulated address."""
    assert SOCAT is not None
    srv_addr = "127.0.0.10" if family == "UDP4" else f"[{addr6(10)}]"
    server = net.start(
        [*netns, SOCAT, "-d", "-d", f"{family}-LISTEN:7000,bind={srv_addr}", "PIPE"],
        net.env(10), name=f"socat {family}-LISTEN",
    )
    net.wait_file(sock_name("U" if family == "UDP4" else "Y", 10, 7000), proc=server)
    client = net.run([*netns, SOCAT, "-d", "-d", "-t", "1", "-", f"{family}:{srv_addr}:7000"],
                     net.env(20), input="hello over udp\n")
    assert client.returncode == 0, client.stderr
    assert client.stdout == "hello over udp\n", client
    if family == "UDP4":
        who = r"AF=2 127\.0\.0\.20:(\d+)"
    else:
        who = r"AF=10 \[" + re.escape(socat_v6(addr6(20))) + r"\]:(\d+)"
    accepted = wait_line(server, "accepting UDP connection from")
    m = re.search(who, accepted[0])
    assert m is not None, server.describe()
    assert int(m.group(1)) in net.EPHEMERAL
    # The client names itself the same way.
    assert re.search("successfully connected from local address " + who, client.stderr), \
        client.stderr


@needs_socat
def test_socat_udp4_forking_server_many_clients(net: Net) -> None:
    """UDP4-RECVFROM with fork: a child per datagram answers; three clients on three
    interfaces each get their own answer."""
    assert SOCAT is not None
    server = net.start(
        [SOCAT, "-d", "-d", "UDP4-RECVFROM:7001,bind=127.0.0.10,fork", "SYSTEM:tr a-z A-Z"],
        net.env(10), name="socat UDP4-RECVFROM fork",
    )
    net.wait_file("U0A1B59", proc=server)
    for iface in (20, 30, 254):
        res = net.run([SOCAT, "-t", "1", "-", "UDP4:127.0.0.10:7001"], net.env(iface),
                      input=f"hello{iface}\n")
        assert res.returncode == 0, res.stderr
        assert res.stdout == f"HELLO{iface}\n", res
    for iface in (20, 30, 254):
        wait_line(server, f"received packet with {len(f'hello{iface}') + 1} bytes from "
                  f"AF=2 127.0.0.{iface}:")


# --------------------------------------------------------------------------- UDP echo, broadcast


def test_udp_echo_found_by_broadcast(net: Net, progs: dict[str, Path],
                                     netns: list[str]) -> None:
    """A client broadcasts "ping" to 255.255.255.255 and to 127.255.255.255; every echo
    server bound to the port answers, whatever its interface, each from its own address."""
    udpecho = str(progs["udpecho"])
    servers = {
        10: "127.0.0.10",   # bound to its interface address
        20: "127.0.0.20",
        30: "0.0.0.0",      # wildcard: its default interface
        40: "::",           # dual stack
    }
    procs = {}
    for iface, bind in servers.items():
        procs[iface] = net.start([*netns, udpecho, "server", bind, "7"], net.env(iface),
                                 name=f"udpecho server {bind} iface {iface}")
    other = net.start([*netns, udpecho, "server", "127.0.0.60", "8"], net.env(60),
                      name="udpecho other port")
    for proc in [*procs.values(), other]:
        proc.expect("ready")
    for dest in ("255.255.255.255", "127.255.255.255"):
        res = net.run([*netns, udpecho, "client", dest, "7", "500"], net.env(50))
        assert res.returncode == 0, res
        lines = res.stdout.splitlines()
        assert lines[0] == "sent 4" and lines[-1] == "done", lines
        replies = sorted(lines[1:-1])
        assert replies == [f"reply from 127.0.0.{i} 7: echo ping" for i in (10, 20, 30, 40)], \
            lines
    # Unicast still reaches exactly one server.
    res = net.run([*netns, udpecho, "client", "127.0.0.20", "7", "300"], net.env(50))
    assert res.stdout.splitlines()[1:] == ["reply from 127.0.0.20 7: echo ping", "done"], res
    for iface, proc in procs.items():
        mapped = "::ffff:" if iface == 40 else ""
        reqs = [ln for ln in proc.stdout if ln.startswith("request from ")]
        count = 3 if iface == 20 else 2
        assert len(reqs) == count, proc.describe()
        for ln in reqs:
            assert re.fullmatch(rf"request from {re.escape(mapped)}127\.0\.0\.50 \d+: ping",
                                ln), proc.describe()
    assert not [ln for ln in other.stdout if ln.startswith("request")], other.describe()


# --------------------------------------------------------------------------- redis

REDIS_PORT = 6379


def start_redis(net: Net, tmp_path: Path, protected: bool = False) -> Proc:
    assert REDIS_SERVER is not None
    workdir = tmp_path / "redis"
    workdir.mkdir(exist_ok=True)
    argv = [REDIS_SERVER, "--port", str(REDIS_PORT), "--bind", "127.0.0.10", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir)]
    if not protected:
        argv += ["--protected-mode", "no"]
    server = net.start(argv, net.env(10), name="redis-server")
    net.wait_file(sock_name("T", 10, REDIS_PORT), proc=server)
    wait_line(server, "Ready to accept connections", "stdout")
    return server


def cli(net: Net, iface: int, *args: str, input: str = "") -> str:  # noqa: A002
    assert REDIS_CLI is not None
    res = net.run([REDIS_CLI, "-h", "127.0.0.10", "-p", str(REDIS_PORT), *args], net.env(iface),
                  input=input)
    assert res.returncode == 0, res
    return res.stdout


@needs_redis
def test_redis_server_and_cli(net: Net, tmp_path: Path) -> None:
    server = start_redis(net, tmp_path)
    assert cli(net, 20, "ping") == "PONG\n"
    assert cli(net, 20, "set", "greeting", "hello redis") == "OK\n"
    assert cli(net, 30, "get", "greeting") == "hello redis\n"
    assert cli(net, 20, "incrby", "counter", "41") == "41\n"
    assert cli(net, 30, "incr", "counter") == "42\n"
    # A value of 2 MiB goes through in both directions unchanged.
    value = "".join(chr(0x41 + (i * 7919) % 26) for i in range(2 << 20))
    assert cli(net, 20, "-x", "set", "big", input=value) == "OK\n"
    assert cli(net, 30, "strlen", "big") == f"{len(value)}\n"
    assert cli(net, 40, "get", "big") == value + "\n"
    # The server sees the client by its emulated address and port.
    listing = cli(net, 20, "client", "list")
    m = re.search(r"addr=127\.0\.0\.20:(\d+) laddr=127\.0\.0\.10:6379 ", listing)
    assert m is not None, listing
    assert int(m.group(1)) in net.EPHEMERAL
    assert server.alive(), server.describe()


@needs_redis
def test_redis_protected_mode_sees_emulated_addresses(net: Net, tmp_path: Path) -> None:
    """In protected mode redis answers only clients from 127.0.0.1: the client on the
    default interface (1) is served, one on interface 20 is refused, by address. (redis
    answers DENIED and closes at once, so redis-cli's request is written to a connection its
    peer has closed: on TCP that write succeeds and redis-cli prints the answer.)"""
    start_redis(net, tmp_path, protected=True)
    assert cli(net, 1, "ping") == "PONG\n"
    assert cli(net, 20, "ping").startswith("DENIED Redis is running in protected mode")


@needs_redis
@pytest.mark.skipif(REDIS_BENCHMARK is None, reason="redis-benchmark is not installed")
def test_redis_benchmark_parallel_clients(net: Net, tmp_path: Path) -> None:
    assert REDIS_BENCHMARK is not None
    server = start_redis(net, tmp_path)
    res = net.run([REDIS_BENCHMARK, "-h", "127.0.0.10", "-p", str(REDIS_PORT), "-q",
                   "-n", "5000", "-c", "16", "-P", "4", "-t", "set,get,lpush,lpop"],
                  net.env(20), timeout=60)
    assert res.returncode == 0, res
    done = re.findall(r"^(\w+): [\d.]+ requests per second", res.stdout.replace("\r", "\n"),
                      re.M)
    assert sorted(done) == ["GET", "LPOP", "LPUSH", "SET"], res.stdout
    assert cli(net, 20, "dbsize") != "0\n"
    assert server.alive(), server.describe()
