"""Message and vector I/O on emulated sockets (issue 3, item 3).

sendmsg/recvmsg (msg_name, iovecs, MSG_TRUNC, MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, MSG_CTRUNC),
IP_PKTINFO and IPV6_RECVPKTINFO naming the emulated destination, readv/writev,
sendmmsg/recvmmsg (tests/progs/mmsg.c), and sendfile and splice into a wrapped TCP socket.
Each scenario runs on kernel loopback and under the wrapper; both must observe the same.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from netsupport import (
    Side,
    addr4,
    addr6,
    assert_same,
    differential,
    free_port_block,
    normalize,
)

if TYPE_CHECKING:
    from conftest import Net


UDP_MSG = r'''
r = udp(); r.bind((A["srv4"], PORT))
s = udp(); s.bind((A["cli4"], PORT + 1))
step("sendmsg gather", s.sendmsg, [b"ab", b"", b"cde", b"fghij"], [], 0, (A["srv4"], PORT))
data, anc, flags, frm = r.recvmsg(100)
out("recvmsg", data, anc, flags, fa(frm))
s.sendmsg([b"0123456789"], [], 0, (A["srv4"], PORT))
n, anc, flags, frm = r.recvmsg_into([bytearray(3), bytearray(4)], 0, socket.MSG_PEEK)
out("peek scatter", n, flags, fa(frm))
bufs = [bytearray(3), bytearray(4)]
n, anc, flags, frm = r.recvmsg_into(bufs)
out("scatter", n, "MSG_TRUNC" if flags & socket.MSG_TRUNC else flags, bytes(bufs[0]),
    bytes(bufs[1]), fa(frm))
s.sendmsg([b"0123456789"], [], 0, (A["srv4"], PORT))
n, anc, flags, frm = r.recvmsg_into([bytearray(4)], 0, socket.MSG_TRUNC)
out("MSG_TRUNC asked", n, "MSG_TRUNC" if flags & socket.MSG_TRUNC else flags)
step("dontwait on empty", r.recvmsg, 100, 0, socket.MSG_DONTWAIT)
step("sendmsg without a name, unconnected", s.sendmsg, [b"x"])
s.connect((A["srv4"], PORT))
step("sendmsg connected", s.sendmsg, [b"con", b"nected"])
data, anc, flags, frm = r.recvmsg(100)
out("recvmsg", data, flags, fa(frm))
step("sendmsg name overrides connection", s.sendmsg, [b"o"], [], 0, (A["srv4"], PORT))
data, anc, flags, frm = r.recvmsg(100)
out("recvmsg", data, flags, fa(frm))
step("sendmsg to foreign v6 family", s.sendmsg, [b"x"], [], 0, ("::1", PORT))
'''


def test_udp_sendmsg_recvmsg_same_as_kernel(net: Net) -> None:
    assert_same(*differential(net, UDP_MSG))


TCP_MSG = r'''
import threading
ls, c, a = tcp_pair(A["srv4"], PORT)
step("sendmsg gather", c.sendmsg, [b"ab", b"cd", b"ef"])
time.sleep(0.05)
data, anc, flags, frm = a.recvmsg(100)
out("recvmsg", data, anc, flags, frm)
c.sendall(b"peekaboo")
time.sleep(0.05)
step("peek", a.recv, 4, socket.MSG_PEEK)
step("after peek", a.recv, 100)
step("dontwait on empty", a.recv, 100, socket.MSG_DONTWAIT)
step("recvmsg dontwait on empty", a.recvmsg, 100, 0, socket.MSG_DONTWAIT)
def dribble():
    for part in (b"12", b"345", b"6789", b"0abc"):
        time.sleep(0.05)
        c.send(part)
t = threading.Thread(target=dribble); t.start()
step("waitall", a.recv, 10, socket.MSG_WAITALL)
t.join()
time.sleep(0.05)
step("rest", a.recv, 100)
c.send(b"xy")
time.sleep(0.05)
step("waitall dontwait", a.recv, 10, socket.MSG_WAITALL | socket.MSG_DONTWAIT)
step("sendmsg with a name on TCP", c.sendmsg, [b"named"], [], 0, (A["oth4"], 9))
time.sleep(0.05)
data, anc, flags, frm = a.recvmsg(100)
out("recvmsg", data, flags, frm)
step("sendto with a name on TCP", c.sendto, b"sendto", (A["oth4"], 9))
time.sleep(0.05)
step("recvfrom on TCP", a.recvfrom, 100)
c.shutdown(socket.SHUT_WR)
step("recvmsg at EOF", a.recvmsg, 100)
step("waitall at EOF", a.recv, 10, socket.MSG_WAITALL)
step("send after shutdown", c.send, b"x")
'''


def test_tcp_msg_flags_same_as_kernel(net: Net) -> None:
    assert_same(*differential(net, TCP_MSG))


UNCONNECTED_TCP = r'''
u = tcp()
step("send", u.send, b"x")
step("sendmsg", u.sendmsg, [b"x"])
step("write", os.write, u.fileno(), b"x")
step("recv", u.recv, 10)
step("recvmsg", u.recvmsg, 10)
step("read", os.read, u.fileno(), 10)
ls = tcp(); ls.bind((A["srv4"], PORT)); ls.listen(1)
step("send on listener", ls.send, b"x")
step("recv on listener", ls.recv, 10)
step("read on listener", os.read, ls.fileno(), 10)
'''


PEER_CLOSED = r'''
ls, c, a = tcp_pair(A["srv4"], PORT)
a.sendall(b"bye")
a.close()
time.sleep(0.1)
step("first send after the peer closed", c.send, b"request")
time.sleep(0.1)
step("the peer's last words are still there", c.recv, 10)
step("then EOF", c.recv, 10)
step("the next send fails", c.send, b"x")
ls2, c2, a2 = tcp_pair(A["srv4"], PORT + 1)
a2.close()
time.sleep(0.1)
step("first send after the peer closed silently", c2.send, b"x")
time.sleep(0.1)
step("EOF", c2.recv, 10)
step("the next send fails", c2.send, b"x")
'''


def test_first_send_after_peer_close_same_as_kernel(net: Net) -> None:
    """TCP: the first send after the peer closed succeeds (the peer answers with a reset),
    only the next one fails with EPIPE. A program that writes its request to a server that
    has already answered and closed (redis in protected mode, HTTP keep-alive races) reads
    the answer instead of dying of SIGPIPE."""
    assert_same(*differential(net, PEER_CLOSED))


def test_io_on_unconnected_tcp_same_as_kernel(net: Net) -> None:
    """Data calls on a TCP socket that is not connected: EPIPE to send, ENOTCONN to receive
    (a Unix stream socket answers ENOTCONN and EINVAL)."""
    assert_same(*differential(net, UNCONNECTED_TCP))


PKTINFO = r'''
def show(label, s, anc_size=256):
    data, anc, flags, frm = s.recvmsg(100, anc_size)
    items = []
    for level, typ, cdata in anc:
        if (level, typ) == (socket.IPPROTO_IP, IP_PKTINFO):
            idx, spec, dst = struct.unpack("=i4s4s", cdata)
            items.append("IP_PKTINFO ifindex=%d spec_dst=%s addr=%s" % (
                idx, socket.inet_ntoa(spec), socket.inet_ntoa(dst)))
        elif (level, typ) == (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO):
            a6, idx = struct.unpack("=16si", cdata)
            items.append("IPV6_PKTINFO ifindex=%d addr=%s" % (
                idx, socket.inet_ntop(socket.AF_INET6, a6)))
        else:
            items.append("cmsg %d/%d" % (level, typ))
    out(label, data, "CTRUNC" if flags & socket.MSG_CTRUNC else "-", fa(frm[:2]), items)
r = udp(); r.bind((A["srv4"], PORT))
s = udp(); s.bind((A["cli4"], PORT + 1))
s.sendto(b"off", (A["srv4"], PORT)); show("pktinfo off", r)
step("set IP_PKTINFO", r.setsockopt, socket.IPPROTO_IP, IP_PKTINFO, 1)
s.sendto(b"on", (A["srv4"], PORT)); show("bound address", r)
s.sendto(b"small", (A["srv4"], PORT)); show("control buffer too small", r, 8)
s.sendto(b"none", (A["srv4"], PORT)); show("no control buffer", r, 0)
w = udp(); w.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1); w.bind(("0.0.0.0", PORT + 2))
s.sendto(b"any", (A["def4"], PORT + 2)); show("wildcard bound", w)
c = udp(); c.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
c.sendto(b"implicit", (A["srv4"], PORT))
data, frm = r.recvfrom(100)
r.sendto(b"reply", frm); show("implicitly bound", c)
r6 = udp(socket.AF_INET6); r6.bind((A["srv6"], PORT))
r6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
s6 = udp(socket.AF_INET6); s6.bind((A["cli6"], PORT + 1))
s6.sendto(b"v6", (A["srv6"], PORT)); show("IPv6 bound address", r6)
d6 = udp(socket.AF_INET6); d6.bind(("::", PORT + 3))
d6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
s.sendto(b"mapped", (A["def4"], PORT + 3)); show("dual stack, IPv4 sender", d6)
s6.sendto(b"native", (A["def6"], PORT + 3)); show("dual stack, IPv6 sender", d6)
'''


def test_pktinfo_names_destination_same_as_kernel(net: Net, netns: list[str]) -> None:
    kernel, wrapped = differential(net, PKTINFO, prefix=netns)
    assert_same(kernel, wrapped)
    assert ("bound address b'on' - 127.0.0.20 PORT+1 "
            "['IP_PKTINFO ifindex=1 spec_dst=127.0.0.10 addr=127.0.0.10']") in wrapped


VECTORS = r'''
ls, c, a = tcp_pair(A["srv4"], PORT)
step("writev", os.writev, c.fileno(), [b"ab", b"", b"cde", b"f" * 5000])
c.shutdown(socket.SHUT_WR)
got = b""
while True:
    bufs = [bytearray(3), bytearray(1000)]
    n = os.readv(a.fileno(), bufs)
    if n == 0:
        break
    got += (bytes(bufs[0]) + bytes(bufs[1]))[:n]
out("readv total", len(got), got == b"abcde" + b"f" * 5000)
r = udp(); r.bind((A["srv4"], PORT + 1))
u = udp(); u.bind((A["cli4"], PORT + 2))
step("writev unconnected UDP", os.writev, u.fileno(), [b"x"])
u.connect((A["srv4"], PORT + 1))
step("writev connected UDP: one datagram", os.writev, u.fileno(), [b"one", b"-", b"datagram"])
step("write connected UDP", os.write, u.fileno(), b"second")
bufs = [bytearray(4), bytearray(4)]
step("readv UDP", os.readv, r.fileno(), bufs)
out("buffers", bytes(bufs[0]), bytes(bufs[1]))
step("read UDP", os.read, r.fileno(), 100)
'''


def test_readv_writev_same_as_kernel(net: Net) -> None:
    assert_same(*differential(net, VECTORS))


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_sendmmsg_recvmmsg_same_as_kernel(net: Net, progs: dict[str, Path], netns: list[str],
                                          family: str) -> None:
    mmsg = str(progs["mmsg"])
    port = free_port_block()
    if family == "ipv4":
        k_args, w_args = [addr4(10), addr4(20)], [addr4(10), addr4(20)]
    else:
        k_args, w_args = ["::1", "::1"], [addr6(10), addr6(20)]
    kernel = net.run([mmsg, *k_args, str(port)], net.kernel_env())
    assert kernel.returncode == 0, kernel
    wrapped = net.run([*netns, mmsg, *w_args, str(port)], net.env(1))
    assert wrapped.returncode == 0, wrapped
    k, w = kernel.stdout.splitlines(), wrapped.stdout.splitlines()
    assert "recvmmsg vlen=3: 3" in k and "sendmmsg no name: -1 EDESTADDRREQ" in k, k
    assert_same(k, w)
    if family == "ipv6":
        assert f"sender name: {addr6(20)} PORT+1 len=28" in w, w


# --------------------------------------------------------------------------- sendfile, splice

RECEIVE = r'''
import hashlib
ls = tcp(); ls.bind((A["srv4"], PORT)); ls.listen(4)
out("ready")
for i in range(A["conns"]):
    a, frm = ls.accept()
    h = hashlib.sha256(); n = 0
    if A["splice_in"]:
        # socket -> pipe -> memory, with splice(2) reading the wrapped socket
        pr, pw = os.pipe()
        while True:
            k = os.splice(a.fileno(), pw, 1 << 16)
            if k == 0:
                break
            while k:
                d = os.read(pr, k)
                k -= len(d); n += len(d); h.update(d)
        os.close(pr); os.close(pw)
    else:
        while True:
            d = a.recv(1 << 16)
            if not d:
                break
            n += len(d); h.update(d)
    out("conn %d from %s: %d bytes sha256=%s" % (i, frm[0], n, h.hexdigest()))
    a.sendall(b"done")
    a.close()
'''

SEND = r'''
c = tcp(); c.connect((A["srv4"], PORT))
fd = os.open(A["file"], os.O_RDONLY)
size = os.fstat(fd).st_size
sent = 0
if A["how"] == "sendfile":
    while sent < size:
        sent += os.sendfile(c.fileno(), fd, sent, size - sent)
elif A["how"] == "sendfile-offset-none":
    while True:
        k = os.sendfile(c.fileno(), fd, None, 1 << 20)
        if k == 0:
            break
        sent += k
else:
    pr, pw = os.pipe()
    while sent < size:
        k = os.splice(fd, pw, 1 << 16)
        while k:
            m = os.splice(pr, c.fileno(), k)
            k -= m; sent += m
out(A["how"], sent)
c.shutdown(socket.SHUT_WR)
out("reply", c.recv(10))
'''


@pytest.mark.parametrize("splice_in", [False, True], ids=["recv", "splice-in"])
def test_sendfile_and_splice_to_wrapped_tcp(net: Net, tmp_path: Path, splice_in: bool) -> None:
    """Data sent by sendfile(2) and splice(2) from another process arrives intact; the
    receiving side reads with recv or with splice from the socket into a pipe."""
    blob = tmp_path / "blob"
    data = os.urandom(3 << 20) + b"tail"
    blob.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    hows = ["sendfile", "sendfile-offset-none", "splice"]
    side = Side(net, True, 80)
    server = side.start(RECEIVE, 10, conns=len(hows), splice_in=splice_in)
    server.expect("ready")
    for how in hows:
        out = side.run(SEND, 20, file=str(blob), how=how)
        assert out == [f"{how} {len(data)}", "reply b'done'"], out
    assert server.wait() == 0, server.describe()
    lines = [ln for ln in server.stdout if ln.startswith("conn ")]
    assert lines == [f"conn {i} from 127.0.0.20: {len(data)} bytes sha256={digest}"
                     for i in range(len(hows))], server.describe()


def test_sendfile_same_as_kernel(net: Net, tmp_path: Path) -> None:
    """The same sendfile/splice exchange on kernel loopback, as the reference."""
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(1 << 20))
    body = RECEIVE
    port = free_port_block()
    outs = []
    for wrapped in (False, True):
        side = Side(net, wrapped, port)
        server = side.start(body, 10, conns=2, splice_in=True)
        server.expect("ready")
        sends = [side.run(SEND, 20, file=str(blob), how=how) for how in ("sendfile", "splice")]
        assert server.wait() == 0, server.describe()
        outs.append(normalize(sends[0] + sends[1] + server.stdout, wrapped))
    kernel, wrapped_out = outs
    # The kernel side's client is 127.0.0.1 (no emulated interface), the wrapped one's is
    # its default interface: compare everything else.
    assert [ln.replace("127.0.0.20", "127.0.0.1") for ln in wrapped_out] == kernel
