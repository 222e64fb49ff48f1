"""UDP over the emulated network (issue 3, item 1).

sendto/recvfrom with emulated sources, connected UDP and its AF_UNSPEC disconnect, implicit
bind on the first send, and broadcast. Scenarios run once on kernel loopback and once under
the wrapper and must observe the same; what only the wrapper can show (interfaces other than
127.0.0.1 for an unbound socket, socket files, broadcast to every interface) is checked on
its own. Anything sent to 255.255.255.255 or on the 10 network runs in an empty network
namespace, so that a broken interposer cannot put it on a real network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from netsupport import Side, addr4, assert_same, differential, free_port_block, sock_name

if TYPE_CHECKING:
    from conftest import Net, Proc


# --------------------------------------------------------------------------- differential

EXCHANGE = r'''
r = udp(); r.bind((A["srv4"], PORT))
s = udp(); s.bind((A["cli4"], PORT + 1))
step("sendto", s.sendto, b"hello", (A["srv4"], PORT))
step("recvfrom", r.recvfrom, 100)
step("reply", r.sendto, b"reply", (A["cli4"], PORT + 1))
step("recvfrom reply", s.recvfrom, 100)
step("empty datagram", s.sendto, b"", (A["srv4"], PORT))
step("recvfrom empty", r.recvfrom, 100)
step("largest", s.sendto, b"x" * 65507, (A["srv4"], PORT))
step("recv largest", lambda: len(r.recv(70000)))
step("too large", s.sendto, b"x" * 65508, (A["srv4"], PORT))
step("to nobody", s.sendto, b"lost", (A["oth4"], PORT + 9))
for i in range(3):
    s.sendto(b"order%d" % i, (A["srv4"], PORT))
for i in range(3):
    step("in order", r.recv, 100)
r.setblocking(False)
step("nothing left", r.recvfrom, 100)
step("getsockname", r.getsockname)
step("getpeername unconnected", r.getpeername)
step("send unconnected", r.send, b"x")
'''


def test_sendto_recvfrom_same_as_kernel(net: Net) -> None:
    assert_same(*differential(net, EXCHANGE))


IMPLICIT = r'''
r = udp(); r.bind((A["srv4"], PORT))
u = udp()
step("name before", u.getsockname)
step("sendto unbound", u.sendto, b"first", (A["srv4"], PORT))
step("name after", u.getsockname)
data, frm = r.recvfrom(100)
out("source", fa(frm))
step("same port as name", lambda: frm[1] == u.getsockname()[1])
step("reply", r.sendto, b"back", frm)
step("recvfrom", u.recvfrom, 100)
step("second send keeps the port", u.sendto, b"second", (A["srv4"], PORT))
data, frm2 = r.recvfrom(100)
step("same source", lambda: frm2 == frm)
v = udp()
r.setblocking(False)
v.bind(("0.0.0.0", 0))
step("bound to port 0", lambda: fa(v.getsockname()))
v.sendto(b"v", (A["srv4"], PORT))
step("from port-0 socket", lambda: fa(r.recvfrom(100)[1]))
'''


def test_implicit_bind_same_as_kernel(net: Net) -> None:
    """The first sendto of an unbound socket binds it to 0.0.0.0:ephemeral; the peer sees
    the default interface (127.0.0.1, as the kernel picks for a loopback destination)."""
    kernel, wrapped = differential(net, IMPLICIT)
    assert_same(kernel, wrapped)
    assert "source 127.0.0.1 EPH" in wrapped


CONNECTED = r'''
r = udp(); r.bind((A["srv4"], PORT))
o = udp(); o.bind((A["oth4"], PORT + 2))
c = udp(); c.bind((A["cli4"], PORT + 3))
step("connect", c.connect, (A["srv4"], PORT))
step("getpeername", c.getpeername)
step("getsockname", c.getsockname)
step("send", c.send, b"via send")
step("server got", r.recvfrom, 100)
step("write", os.write, c.fileno(), b"via write")
step("server got", r.recvfrom, 100)
step("sendto other while connected", c.sendto, b"override", (A["oth4"], PORT + 2))
step("other got", o.recvfrom, 100)
step("stranger sends to connected", o.sendto, b"intruder", (A["cli4"], PORT + 3))
step("peer sends to connected", r.sendto, b"from peer", (A["cli4"], PORT + 3))
step("connected receives peer only", c.recvfrom, 100)
c.setblocking(False)
step("intruder was dropped", c.recvfrom, 100)
c.setblocking(True)
step("read", lambda: (r.sendto(b"for read", (A["cli4"], PORT + 3)), os.read(c.fileno(), 100))[1])
step("reconnect elsewhere", c.connect, (A["oth4"], PORT + 2))
step("getpeername", c.getpeername)
step("send", c.send, b"to other")
step("other got", o.recvfrom, 100)
step("disconnect", disconnect, c)
step("getpeername after disconnect", c.getpeername)
step("getsockname after disconnect", c.getsockname)
step("send after disconnect", c.send, b"x")
step("sendto after disconnect", c.sendto, b"named", (A["srv4"], PORT))
step("server got", r.recvfrom, 100)
step("stranger now reaches it", o.sendto, b"welcome", (A["cli4"], PORT + 3))
step("received", c.recvfrom, 100)
step("disconnect twice", disconnect, c)
u = udp()
step("disconnect never connected", disconnect, u)
'''


def test_connected_udp_same_as_kernel(net: Net) -> None:
    assert_same(*differential(net, CONNECTED))


DISCONNECT_IMPLICIT = r'''
r = udp(); r.bind((A["srv4"], PORT))
c = udp()
step("connect unbound", c.connect, (A["srv4"], PORT))
step("getsockname", c.getsockname)
step("disconnect", disconnect, c)
step("getsockname after disconnect", c.getsockname)
step("send by name", c.sendto, b"again", (A["srv4"], PORT))
step("getsockname", c.getsockname)
'''


def test_disconnect_forgets_implicit_binding(net: Net) -> None:
    """Linux: connect() binds an unbound UDP socket implicitly (127.0.0.1:port); connecting
    to AF_UNSPEC undoes that binding, getsockname reports 0.0.0.0:0 again."""
    assert_same(*differential(net, DISCONNECT_IMPLICIT))


REFUSED = r'''
c = udp(); c.bind((A["cli4"], PORT + 1))
step("connect to closed port", c.connect, (A["srv4"], PORT + 5))
step("first send", c.send, b"x")
time.sleep(0.1)
c.setblocking(False)
step("recv reports the refusal", c.recv, 10)
step("then nothing", c.recv, 10)
r = udp(); r.bind((A["srv4"], PORT + 5))
step("send once the port is open", c.send, b"y")
c.setblocking(True)
step("arrives", r.recvfrom, 10)
'''


def test_connected_udp_port_unreachable_same_as_kernel(net: Net) -> None:
    """A connected UDP socket learns ECONNREFUSED once (ICMP port unreachable on Linux)."""
    assert_same(*differential(net, REFUSED))


FLAGS = r'''
r = udp(); r.bind((A["srv4"], PORT))
s = udp(); s.bind((A["cli4"], PORT + 1))
buf = bytearray(4)
s.sendto(b"0123456789", (A["srv4"], PORT))
step("peek", r.recvfrom, 4, socket.MSG_PEEK)
step("peek again", r.recvfrom, 100, socket.MSG_PEEK)
step("trunc returns the real length", r.recv_into, buf, 4, socket.MSG_TRUNC)
out("buffer", bytes(buf))
step("dontwait on empty", r.recv, 4, socket.MSG_DONTWAIT)
s.sendto(b"abcdef", (A["srv4"], PORT))
step("short buffer drops the rest", r.recv, 3)
step("dontwait on empty", r.recv, 4, socket.MSG_DONTWAIT)
'''


def test_recv_flags_same_as_kernel(net: Net) -> None:
    assert_same(*differential(net, FLAGS))


# --------------------------------------------------------------------------- across processes

ECHO_ONCE = r'''
r = udp(socket.AF_INET6 if ":" in A["bind"] else socket.AF_INET)
r.bind((A["bind"], PORT))
out("ready")
data, frm = r.recvfrom(100)
out("from", frm[0], P(frm[1]))
r.sendto(b"echo " + data, frm)
'''

SEND_ONCE = r'''
u = udp(socket.AF_INET6 if ":" in A["dest"] else socket.AF_INET)
step("sendto", u.sendto, b"hi", (A["dest"], PORT))
n = u.getsockname()
out("name", n[0], P(n[1]))
step("recvfrom", u.recvfrom, 100)
out("wait")
sys.stdin.readline()
'''


@pytest.mark.parametrize(("client_iface", "server_iface"), [(20, 10), (254, 1), (1, 254)])
def test_emulated_source_across_processes(net: Net, client_iface: int,
                                          server_iface: int) -> None:
    """An unbound client in another process appears with its own interface's address; the
    implicit bind leaves a socket file for it."""
    side = Side(net, True, 7)
    server = side.start(ECHO_ONCE, server_iface, bind=addr4(server_iface))
    server.expect("ready")
    assert net.is_socket(sock_name("U", server_iface, 7)), net.listing()
    client = side.start(SEND_ONCE, client_iface, dest=addr4(server_iface))
    name = client.expect("name ")
    assert name.startswith("name 0.0.0.0 "), client.describe()
    frm = server.expect("from ")
    assert frm.startswith(f"from {addr4(client_iface)} EPH"), server.describe()
    assert client.expect("recvfrom: ") == f"recvfrom: b'echo hi' from {addr4(server_iface)} PORT"
    client.expect("wait")
    eph = [n for n in net.listing() if n.startswith(sock_name("U", client_iface, 0)[:3])]
    assert eph, f"no implicit-bind file for iface {client_iface}: {net.listing()}"
    client.send()
    assert client.wait() == 0, client.describe()
    assert server.wait() == 0, server.describe()


def test_send_to_unknown_address_is_unreachable(net: Net, netns: list[str]) -> None:
    side = Side(net, True, 7, netns)
    out = side.run(r'''
u = udp()
for dst in ("192.0.2.1", "10.53.57.10", "8.8.8.8", "127.1.0.10"):
    step("sendto " + dst, u.sendto, b"x", (dst, PORT))
step("connect 192.0.2.1", u.connect, ("192.0.2.1", PORT))
''')
    assert out == [
        "sendto 192.0.2.1: ENETUNREACH",
        "sendto 10.53.57.10: ENETUNREACH",
        "sendto 8.8.8.8: ENETUNREACH",
        "sendto 127.1.0.10: ENETUNREACH",
        "connect 192.0.2.1: ENETUNREACH",
    ], out


# --------------------------------------------------------------------------- broadcast

RECEIVER = r'''
fam = socket.AF_INET6 if ":" in A["bind"] else socket.AF_INET
r = udp(fam)
r.bind((A["bind"], A["rport"]))
r.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
out("ready")
while True:
    data, frm = r.recvfrom(100)
    out("got %s from %s %s" % (data.decode(), frm[0], P(frm[1])))
    if data == b"quit":
        break
'''

BROADCASTER = r'''
s = udp()
s.bind((A["src"], PORT + 9))
for dst in A["dests"]:
    step("without SO_BROADCAST " + dst, s.sendto, b"x", (dst, PORT))
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
step("SO_BROADCAST", s.getsockopt, socket.SOL_SOCKET, socket.SO_BROADCAST)
for dst in A["dests"]:
    step("to " + dst, s.sendto, dst.encode(), (dst, PORT))
c = udp()
c.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
step("connect " + A["dests"][-1], c.connect, (A["dests"][-1], PORT))
step("send connected", c.send, b"connected")
for port in (PORT, PORT + 1):
    s.sendto(b"quit", (A["dests"][0], port))
'''


def start_receivers(net: Net, port: int, prefix: list[str], network: str | None,
                    specs: list[tuple[int, str, int]]) -> list[Proc]:
    """One receiver process per (iface, bind address, port)."""
    procs = []
    for iface, bind, rport in specs:
        env = net.env(iface, network=network)
        side = Side(net, True, port, prefix)
        proc = net.start(side.argv(RECEIVER, bind=bind, rport=rport), env,
                         name=f"receiver {bind}:{rport} iface {iface}")
        procs.append(proc)
    for proc in procs:
        proc.expect("ready")
    return procs


def broadcast_run(net: Net, netns: list[str], network: str | None, net_prefix: str,
                  dests: list[str]) -> None:
    port = 5000
    rx = start_receivers(net, port, netns, network, [
        (10, f"{net_prefix}.10", port),     # bound to an interface address
        (20, f"{net_prefix}.20", port),
        (30, "0.0.0.0", port),               # wildcard: the default interface
        (40, "::", port),                    # dual stack [::]
        (50, f"{net_prefix}.50", port + 1),  # another port: gets nothing but "quit"
    ])
    side = Side(net, True, port, netns)
    res = net.run(side.argv(BROADCASTER, src=f"{net_prefix}.60", dests=dests),
                  net.env(60, network=network))
    assert res.returncode == 0 and res.stderr == "", res
    out = res.stdout.splitlines()
    for dst in dests:
        assert f"without SO_BROADCAST {dst}: EACCES" in out, out
        assert f"to {dst}: {len(dst)}" in out, out
    assert "send connected: 9" in out, out
    for proc in rx:
        assert proc.wait() == 0, proc.describe()
    src = f"{net_prefix}.60"
    for proc in rx[:4]:
        got = [ln for ln in proc.stdout if ln.startswith("got ")]
        mapped = "::ffff:" if "::" in proc.name else ""
        expect = [f"got {dst} from {mapped}{src} PORT+9" for dst in dests]
        assert got[:len(dests)] == expect, proc.describe()
        # The connected broadcast came from an implicitly bound socket on iface 60.
        assert got[len(dests)].startswith(f"got connected from {mapped}{src} EPH"), \
            proc.describe()
        assert got[-1] == f"got quit from {mapped}{src} PORT+9", proc.describe()
        assert len(got) == len(dests) + 2, proc.describe()
    assert [ln for ln in rx[4].stdout if ln.startswith("got ")] == [
        f"got quit from {src} PORT+9"], rx[4].describe()


def test_broadcast_reaches_every_interface(net: Net, netns: list[str]) -> None:
    """255.255.255.255 and 127.255.255.255 reach every socket bound to the port, whatever
    its interface (and a dual-stack [::] one); EACCES without SO_BROADCAST, as Linux."""
    broadcast_run(net, netns, None, "127.0.0", ["255.255.255.255", "127.255.255.255"])


def test_broadcast_on_ten_network(net: Net, netns: list[str]) -> None:
    broadcast_run(net, netns, "10.53.57.0", "10.53.57", ["255.255.255.255", "10.255.255.255"])


NO_BROADCAST_FLAG = r'''
s = udp(); s.bind((A["cli4"], PORT + 1))
step("127.255.255.255 without SO_BROADCAST", s.sendto, b"x", ("127.255.255.255", PORT))
c = udp()
step("connect to broadcast without SO_BROADCAST", c.connect, ("127.255.255.255", PORT))
step("send", c.send, b"x")
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
step("with SO_BROADCAST", s.sendto, b"x", ("127.255.255.255", PORT))
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 0)
step("cleared again", s.sendto, b"x", ("127.255.255.255", PORT))
'''


def test_broadcast_permission_same_as_kernel(net: Net) -> None:
    assert_same(*differential(net, NO_BROADCAST_FLAG))


PKTINFO_BROADCAST = r'''
r = udp(); r.bind(("0.0.0.0", PORT)); r.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
s = udp(); s.bind((A["oth4"], PORT + 1))
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
for dst in ("127.255.255.255", A["def4"]):
    s.sendto(b"b", (dst, PORT))
    data, anc, flags, frm = r.recvmsg(10, 256)
    for level, typ, cdata in anc:
        if (level, typ) == (socket.IPPROTO_IP, IP_PKTINFO):
            idx, spec, dst_ = struct.unpack("=i4s4s", cdata)
            out("to %s: from %s ifindex=%d spec_dst=%s addr=%s" % (
                dst, fa(frm), idx, socket.inet_ntoa(spec), socket.inet_ntoa(dst_)))
    if not anc:
        out("to %s: no IP_PKTINFO" % dst)
'''

LO_UP = ["sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def test_broadcast_pktinfo_names_broadcast_destination(net: Net, netns: list[str]) -> None:
    """IP_PKTINFO of a broadcast datagram: ipi_addr is the broadcast address it was sent to,
    ipi_spec_dst the receiver's own address (kernel reference: a namespace's loopback)."""
    port = free_port_block()
    kernel = Side(net, False, port, [*netns, *LO_UP]).run(PKTINFO_BROADCAST)
    wrapped = Side(net, True, port, netns).run(PKTINFO_BROADCAST)
    assert kernel == [
        "to 127.255.255.255: from 127.0.0.30 PORT+1 ifindex=1 spec_dst=127.0.0.1 "
        "addr=127.255.255.255",
        "to 127.0.0.1: from 127.0.0.30 PORT+1 ifindex=1 spec_dst=127.0.0.1 addr=127.0.0.1",
    ], kernel
    assert_same(kernel, wrapped)


def test_udp_socket_files(net: Net) -> None:
    """UDP/IPv4 sockets are U files, bound names as the wrapper documents them."""
    side = Side(net, True, 53)
    proc = side.start(r'''
a = udp(); a.bind((A["srv4"], 53))
b = udp(); b.bind(("0.0.0.0", 5353))
out("wait"); sys.stdin.readline()
a.close(); b.close()
out("closed"); sys.stdin.readline()
''', 10)
    proc.expect("wait")
    assert net.is_socket("U0A0035") and net.is_socket("U0A14E9"), net.listing()
    proc.send()
    proc.expect("closed")
    assert not net.path("U0A0035").exists() and not net.path("U0A14E9").exists(), net.listing()
    proc.send()
    assert proc.wait() == 0
