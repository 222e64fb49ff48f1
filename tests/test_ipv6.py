"""IPv6 (fd00::5357:5fXX) for TCP and UDP, and dual stack as Linux does it (issue 3, item 2).

A socket bound to [::] without IPV6_V6ONLY also takes IPv4 peers, who appear as
::ffff:127.0.0.x; IPV6_V6ONLY=1 turns that off. The emulated IPv6 addresses lie in fd00::/8,
which may be routed on the machine, so every wrapped process that names one runs in an empty
network namespace.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from netsupport import Side, addr6, assert_same, differential, free_port_block, sock_name

if TYPE_CHECKING:
    from conftest import Net

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


# --------------------------------------------------------------------------- TCP over IPv6


def test_tcp6_between_processes(net: Net, sockops: str, netns: list[str]) -> None:
    server = net.start(
        [*netns, sockops, "tcp6", "bind", addr6(10), "7", "listen", "ready",
         "accept", "from", "peer", "name", "recvall", "send", "pong6", "close"],
        net.env(10),
    )
    server.expect("ready")
    assert net.is_socket(sock_name("X", 10, 7)), net.listing()
    assert not net.path(sock_name("T", 10, 7)).exists(), net.listing()
    client = net.start(
        [*netns, sockops, "tcp6", "connect", addr6(10), "7", "backing", "name", "peer",
         "send", "ping6", "shutwr", "recvall"],
        net.env(20),
    )
    assert client.wait() == 0, client.describe()
    assert server.wait() == 0, server.describe()
    cli = client.stdout
    assert "connect: OK" in cli and "backing: unix" in cli, cli
    assert f"peer: {addr6(10)} 7" in cli, cli
    host, port = net.parse_addr(client.expect("name: ", 0.1))
    assert host == addr6(20) and port in net.EPHEMERAL, cli
    assert "data: pong6" in cli, cli
    srv = server.stdout
    assert f"from: {addr6(20)} {port}" in srv and f"peer: {addr6(20)} {port}" in srv, srv
    assert f"name: {addr6(10)} 7" in srv and "data: ping6" in srv, srv


def test_udp6_between_processes(net: Net, netns: list[str]) -> None:
    side = Side(net, True, 53, netns)
    server = side.start(r'''
r = udp(socket.AF_INET6); r.bind((A["srv6"], 53))
out("ready")
data, frm = r.recvfrom(100)
out("from", frm[0], P(frm[1]), data)
r.sendto(b"answer", frm)
''', 10)
    server.expect("ready")
    assert net.is_socket(sock_name("Y", 10, 53)), net.listing()
    lines = side.run(r'''
u = udp(socket.AF_INET6)
step("sendto", u.sendto, b"query", (A["srv6"], 53))
step("name", lambda: u.getsockname()[:2])
step("recvfrom", lambda: (lambda r: (r[0], r[1][:2]))(u.recvfrom(100)))
''', 20)
    assert lines == ["sendto: 5", "name: :: EPH",
                     f"recvfrom: b'answer' from {addr6(10)} PORT"], lines
    assert server.wait() == 0, server.describe()
    assert server.expect("from ", 0.1) == f"from {addr6(20)} EPH b'query'", server.describe()


V6_EXCHANGE = r'''
ls, c, a = tcp_pair(A["srv6"], PORT)
out("client name", fa(c.getsockname()[:2]), "peer", fa(c.getpeername()[:2]))
out("server side name", fa(a.getsockname()[:2]), "peer", fa(a.getpeername()[:2]))
out("sizes", len(c.getsockname()), len(a.getpeername()))
c.sendall(b"six" * 1000); c.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = a.recv(65536)
    if not d:
        break
    got += d
out("received", len(got), got == b"six" * 1000)
u = udp(socket.AF_INET6); u.bind((A["srv6"], PORT + 1))
v = udp(socket.AF_INET6); v.bind((A["cli6"], PORT + 2))
step("udp6 sendto", v.sendto, b"d6", (A["srv6"], PORT + 1))
data, frm = u.recvfrom(10)
out("udp6 recvfrom", data, fa(frm[:2]), "tuple of", len(frm))
b = tcp(socket.AF_INET6)
step("connect nobody", b.connect, (A["srv6"], PORT + 3))
step("tcp4 socket to v6 address", tcp().connect, (A["srv6"], PORT))
'''


def test_ipv6_same_as_kernel(net: Net, netns: list[str]) -> None:
    kernel, wrapped = differential(net, V6_EXCHANGE, prefix=netns)
    assert_same(kernel, wrapped)
    assert wrapped[0] == f"client name {addr6(1)} EPH peer {addr6(10)} PORT", wrapped


# --------------------------------------------------------------------------- dual stack

DUAL = r'''
d = tcp(socket.AF_INET6); d.bind(("::", PORT + 1)); d.listen(4)
step("IPV6_V6ONLY default", d.getsockopt, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
c4 = tcp(); c4.bind((A["cli4"], 0))
step("IPv4 client connects to [::]", c4.connect, (A["def4"], PORT + 1))
a4, frm = d.accept()
out("accepted from", fa(frm[:2]), "local", fa(a4.getsockname()[:2]))
out("client sees peer", fa(c4.getpeername()), "family", a4.getpeername() and a4.family)
c4.sendall(b"v4 data"); out("server got", a4.recv(100))
a4.sendall(b"v6 reply"); out("client got", c4.recv(100))
m = tcp(socket.AF_INET6)
step("IPv6 socket connects to ::ffff:127.0.0.1", m.connect, ("::ffff:" + A["def4"], PORT + 1))
out("mapped client name", fa(m.getsockname()[:2]), "peer", fa(m.getpeername()[:2]))
am, frm = d.accept()
out("accepted from", fa(frm[:2]), "local", fa(am.getsockname()[:2]))
c6 = tcp(socket.AF_INET6)
step("IPv6 client", c6.connect, (A["def6"], PORT + 1))
a6, frm = d.accept()
out("accepted from", fa(frm[:2]), "local", fa(a6.getsockname()[:2]))
x = tcp(); step("IPv4 bind on the dual-stack port", x.bind, ("0.0.0.0", PORT + 1))
v = tcp(socket.AF_INET6)
v.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
v.bind(("::", PORT + 2)); v.listen(4)
step("IPV6_V6ONLY", v.getsockopt, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
step("IPv4 client to v6only", tcp().connect, (A["def4"], PORT + 2))
step("mapped client to v6only", tcp(socket.AF_INET6).connect, ("::ffff:" + A["def4"], PORT + 2))
step("IPv6 client to v6only", tcp(socket.AF_INET6).connect, (A["def6"], PORT + 2))
y = tcp(); step("IPv4 bind on the v6only port", y.bind, ("0.0.0.0", PORT + 2))
z = tcp(socket.AF_INET6)
z.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
step("v6only socket connects to mapped", z.connect, ("::ffff:" + A["def4"], PORT + 1))
w = tcp(socket.AF_INET6); w.bind((A["cli6"], 0))
step("IPv6-bound socket connects to mapped", w.connect, ("::ffff:" + A["def4"], PORT + 1))
b6 = tcp(socket.AF_INET6)
step("bind to a mapped address", b6.bind, ("::ffff:" + A["srv4"], PORT + 3))
step("its name", lambda: fa(b6.getsockname()[:2]))
b6.listen(1)
step("IPv4 client reaches it", tcp().connect, (A["srv4"], PORT + 3))
'''


def test_dual_stack_tcp_same_as_kernel(net: Net, netns: list[str]) -> None:
    kernel, wrapped = differential(net, DUAL, prefix=netns)
    assert_same(kernel, wrapped)
    assert "accepted from ::ffff:127.0.0.20 EPH local ::ffff:127.0.0.1 PORT+1" in wrapped


DUAL_UDP = r'''
u = udp(socket.AF_INET6); u.bind(("::", PORT))
s4 = udp(); s4.bind((A["cli4"], PORT + 1))
step("IPv4 to [::]", s4.sendto, b"u4", (A["def4"], PORT))
data, frm = u.recvfrom(10)
out("[::] got", data, "from", fa(frm[:2]))
step("reply to mapped source", u.sendto, b"r4", frm)
step("IPv4 client got", s4.recvfrom, 10)
s6 = udp(socket.AF_INET6); s6.bind((A["cli6"], PORT + 2))
step("IPv6 to [::]", s6.sendto, b"u6", (A["def6"], PORT))
data, frm = u.recvfrom(10)
out("[::] got", data, "from", fa(frm[:2]))
step("reply", u.sendto, b"r6", frm)
step("IPv6 client got", lambda: (lambda r: (r[0], fa(r[1][:2])))(s6.recvfrom(10)))
m = udp(socket.AF_INET6)
step("unbound IPv6 socket to mapped", m.sendto, b"m", ("::ffff:" + A["cli4"], PORT + 1))
step("its name", lambda: fa(m.getsockname()[:2]))
step("IPv4 socket sees", s4.recvfrom, 10)
step("bound IPv6 socket to mapped", s6.sendto, b"x", ("::ffff:" + A["cli4"], PORT + 1))
v = udp(socket.AF_INET6)
v.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
v.bind(("::", PORT + 3))
step("IPv4 to v6only: sent but lost", s4.sendto, b"lost", (A["def4"], PORT + 3))
v.setblocking(False)
step("v6only receives nothing", v.recvfrom, 10)
step("v6only sends to mapped", v.sendto, b"x", ("::ffff:" + A["cli4"], PORT + 1))
'''


def test_dual_stack_udp_same_as_kernel(net: Net, netns: list[str]) -> None:
    kernel, wrapped = differential(net, DUAL_UDP, prefix=netns)
    assert_same(kernel, wrapped)


FILES = r'''
d = tcp(socket.AF_INET6)
if A["v6only"]:
    d.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
d.bind(("::", 80)); d.listen(4)
u = udp(socket.AF_INET6)
if A["v6only"]:
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
u.bind(("::", 53))
out("wait"); sys.stdin.readline()
d.close(); u.close()
out("closed"); sys.stdin.readline()
'''


@pytest.mark.parametrize("v6only", [False, True], ids=["dual", "v6only"])
def test_wildcard_bind_socket_files(net: Net, netns: list[str], v6only: bool) -> None:
    """[::] binds the default interface; without IPV6_V6ONLY the IPv4 name exists too."""
    proc = Side(net, True, 80, netns).start(FILES, 10, v6only=v6only)
    proc.expect("wait")
    listing = net.listing()
    assert net.is_socket("X0A0050") and net.is_socket("Y0A0035"), listing
    assert net.path("T0A0050").exists() is not v6only, listing
    assert net.path("U0A0035").exists() is not v6only, listing
    proc.send()
    proc.expect("closed")
    assert net.listing() == [], net.listing()
    proc.send()
    assert proc.wait() == 0


def test_v6only_refuses_ipv4_across_processes(net: Net, sockops: str, netns: list[str]) -> None:
    server = Side(net, True, 80, netns).start(r'''
v = tcp(socket.AF_INET6)
v.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
v.bind(("::", 80)); v.listen(4)
out("ready"); sys.stdin.readline()
''', 10)
    server.expect("ready")
    v4 = net.run([*netns, sockops, "tcp4", "connect", "127.0.0.10", "80"], net.env(20))
    assert v4.stdout.splitlines() == ["tcp4: OK", "connect: ECONNREFUSED"], v4
    v6 = net.run([*netns, sockops, "tcp6", "connect", addr6(10), "80"], net.env(20))
    assert v6.stdout.splitlines() == ["tcp6: OK", "connect: OK"], v6


# --------------------------------------------------------------------------- real programs


@needs_curl
def test_http_server_on_dual_stack_reached_over_ipv4_and_ipv6(
    net: Net, netns: list[str], tmp_path: Path
) -> None:
    """`python3 -m http.server --bind ::` (a dual-stack socket) answers curl on 127.0.0.10,
    and logs the client as ::ffff:127.0.0.20; over IPv6 the client is fd00::5357:5f14."""
    assert CURL is not None
    docroot = tmp_path / "www"
    docroot.mkdir()
    (docroot / "index.txt").write_text("dual stack\n")
    port = 8000
    server = net.start(
        [*netns, sys.executable, "-u", "-m", "http.server", "--bind", "::",
         "--directory", str(docroot), str(port)],
        net.env(10), name="http.server --bind ::",
    )
    net.wait_file(sock_name("X", 10, port), proc=server)
    assert net.is_socket(sock_name("T", 10, port)), net.listing()

    res = net.run([*netns, CURL, "-sS", "--max-time", "10", "-w", " %{remote_ip}",
                   f"http://127.0.0.10:{port}/index.txt"], net.env(20))
    assert res.returncode == 0, res.stderr
    assert res.stdout == "dual stack\n 127.0.0.10", res.stdout
    line = server.expect_err("::ffff:127.0.0.20 - - [")
    assert '"GET /index.txt HTTP/1.1" 200' in line, line

    res = net.run([*netns, CURL, "-sS", "--max-time", "10", "-g", "-w", " %{remote_ip}",
                   f"http://[{addr6(10)}]:{port}/index.txt"], net.env(30))
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"dual stack\n {addr6(10)}", res.stdout
    line = server.expect_err(f"{addr6(30)} - - [")
    assert '"GET /index.txt HTTP/1.1" 200' in line, line


@needs_curl
def test_http_server_dual_stack_on_kernel_reference(net: Net, tmp_path: Path) -> None:
    """The same server on kernel loopback logs an IPv4 client as ::ffff:127.0.0.1."""
    assert CURL is not None
    docroot = tmp_path / "www"
    docroot.mkdir()
    (docroot / "index.txt").write_text("dual stack\n")
    port = free_port_block()
    server = net.start(
        [sys.executable, "-u", "-m", "http.server", "--bind", "::", "--directory",
         str(docroot), str(port)], net.kernel_env(), name="kernel http.server")
    server.expect("Serving HTTP on ")
    res = net.run([CURL, "-sS", "--max-time", "10", f"http://127.0.0.1:{port}/index.txt"],
                  net.kernel_env())
    assert res.returncode == 0, res.stderr
    assert res.stdout == "dual stack\n"
    line = server.expect_err("::ffff:127.0.0.1 - - [")
    assert '"GET /index.txt HTTP/1.1" 200' in line, line
