"""Socket options and ioctls on emulated sockets (issue 3, items 5 and 6).

Every option the issue lists is read (default), set and read back on each kind of socket,
on kernel loopback and under the wrapper: the values reported back, SO_DOMAIN/SO_TYPE/
SO_PROTOCOL/SO_ACCEPTCONN, TCP_INFO's state, and the errno for options and levels a socket
does not have must all be what Linux reports. Then FIONREAD/SIOCINQ, FIONBIO and SIOCOUTQ,
and `nc -l`, which must not complain about SO_REUSEPORT.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest
from netsupport import assert_same, differential, sock_name

if TYPE_CHECKING:
    from conftest import Net

NC = shutil.which("nc")

OPTIONS = r'''
S = socket
fam, typ = {"tcp4": (S.AF_INET, S.SOCK_STREAM), "tcp6": (S.AF_INET6, S.SOCK_STREAM),
            "udp4": (S.AF_INET, S.SOCK_DGRAM), "udp6": (S.AF_INET6, S.SOCK_DGRAM)}[A["kind"]]
LINGER = struct.pack("ii", 1, 5)
TV = struct.pack("ll", 2, 500000)
OPTS = [
    ("SO_REUSEADDR", S.SOL_SOCKET, S.SO_REUSEADDR, 1),
    ("SO_REUSEPORT", S.SOL_SOCKET, S.SO_REUSEPORT, 1),
    ("SO_KEEPALIVE", S.SOL_SOCKET, S.SO_KEEPALIVE, 1),
    ("SO_BROADCAST", S.SOL_SOCKET, S.SO_BROADCAST, 1),
    ("SO_PRIORITY", S.SOL_SOCKET, S.SO_PRIORITY, 6),
    ("SO_LINGER", S.SOL_SOCKET, S.SO_LINGER, LINGER),
    ("SO_RCVTIMEO", S.SOL_SOCKET, S.SO_RCVTIMEO, TV),
    ("SO_SNDTIMEO", S.SOL_SOCKET, S.SO_SNDTIMEO, TV),
    ("TCP_NODELAY", S.IPPROTO_TCP, S.TCP_NODELAY, 1),
    ("TCP_KEEPIDLE", S.IPPROTO_TCP, S.TCP_KEEPIDLE, 30),
    ("TCP_KEEPINTVL", S.IPPROTO_TCP, S.TCP_KEEPINTVL, 5),
    ("TCP_KEEPCNT", S.IPPROTO_TCP, S.TCP_KEEPCNT, 3),
    ("IP_TOS", S.IPPROTO_IP, S.IP_TOS, 0x10),
    ("IP_TTL", S.IPPROTO_IP, S.IP_TTL, 7),
    ("IP_PKTINFO", S.IPPROTO_IP, IP_PKTINFO, 1),
    ("IP_RECVERR", S.IPPROTO_IP, IP_RECVERR, 1),
    ("IPV6_V6ONLY", S.IPPROTO_IPV6, S.IPV6_V6ONLY, 1),
    ("IPV6_TCLASS", S.IPPROTO_IPV6, S.IPV6_TCLASS, 0xb8),
    ("IPV6_RECVPKTINFO", S.IPPROTO_IPV6, S.IPV6_RECVPKTINFO, 1),
]
def get(s, level, opt, raw):
    if raw is None:
        return s.getsockopt(level, opt)
    v = s.getsockopt(level, opt, len(raw))
    return struct.unpack("ii" if len(raw) == 8 and raw is LINGER else "ll", v)
def attempt(fn, *a):
    try:
        r = fn(*a)
        return "OK" if r is None else r
    except OSError as e:
        return en(e)
for name, level, opt, val in OPTS:
    s = S.socket(fam, typ)
    raw = val if isinstance(val, bytes) else None
    out("%s: default=%s set=%s get=%s" % (
        name, attempt(get, s, level, opt, raw), attempt(s.setsockopt, level, opt, val),
        attempt(get, s, level, opt, raw)))
    s.close()
s = S.socket(fam, typ)
for name in ("SO_TYPE", "SO_DOMAIN", "SO_PROTOCOL", "SO_ACCEPTCONN", "SO_ERROR"):
    step(name, s.getsockopt, S.SOL_SOCKET, getattr(S, name))
for level, opt in ((S.SOL_SOCKET, 9999), (S.IPPROTO_TCP, 9999), (S.IPPROTO_IP, 9999),
                   (S.IPPROTO_IPV6, 9999), (S.IPPROTO_UDP, 9999), (9999, 1)):
    step("unknown get %d/%d" % (level, opt), s.getsockopt, level, opt)
    step("unknown set %d/%d" % (level, opt), s.setsockopt, level, opt, 1)
step("TCP_NODELAY with a 1-byte value", s.setsockopt, S.IPPROTO_TCP, S.TCP_NODELAY, b"\x01")
step("SO_TYPE into 1 byte", s.getsockopt, S.SOL_SOCKET, S.SO_TYPE, 1)
step("IP_TTL into 1 byte", s.getsockopt, S.IPPROTO_IP, S.IP_TTL, 1)
'''

BYTE_SIZED = r'''
S = socket
for kind, fam, typ in (("tcp4", S.AF_INET, S.SOCK_STREAM), ("udp4", S.AF_INET, S.SOCK_DGRAM),
                       ("udp6", S.AF_INET6, S.SOCK_DGRAM)):
    s = S.socket(fam, typ)
    step(kind + " IP_TOS set from 1 byte", s.setsockopt, S.IPPROTO_IP, S.IP_TOS, b"\x10")
    step(kind + " IP_TOS", s.getsockopt, S.IPPROTO_IP, S.IP_TOS)
    step(kind + " IP_TTL set from 1 byte", s.setsockopt, S.IPPROTO_IP, S.IP_TTL, b"\x09")
    step(kind + " IP_TTL", s.getsockopt, S.IPPROTO_IP, S.IP_TTL)
'''


@pytest.mark.parametrize("kind", ["tcp4", "tcp6", "udp4", "udp6"])
def test_options_same_as_kernel(net: Net, kind: str) -> None:
    """Defaults, set-then-get, identity options and the errno of options a socket lacks."""
    assert_same(*differential(net, OPTIONS, kind=kind))


def test_ip_options_from_a_byte_same_as_kernel(net: Net) -> None:
    """Linux takes IPPROTO_IP integer options (IP_TOS, IP_TTL) from a 1-byte value too."""
    assert_same(*differential(net, BYTE_SIZED))


TCP_STATE = r'''
STATES = {1: "ESTABLISHED", 7: "CLOSE", 10: "LISTEN"}
def state(s):
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return STATES.get(info[0], str(info[0])), len(info)
for host in (A["srv4"], A["srv6"]):
    s = tcp(fam_of(host))
    out("fresh", state(s), s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    s.bind((host, 0))
    out("bound", state(s))
    ls, c, a = tcp_pair(host, PORT)
    out("listener", state(ls), ls.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    out("connected", state(c), state(a), c.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
        a.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    for x in (ls, c, a, s):
        x.close()
'''


def test_tcp_info_state_same_as_kernel(net: Net, netns: list[str]) -> None:
    assert_same(*differential(net, TCP_STATE, prefix=netns))


OPTIONS_SURVIVE = r'''
ls = tcp(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
ls.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
ls.bind((A["srv4"], PORT)); ls.listen(4)
c = tcp(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)
c.connect((A["srv4"], PORT))
a, _ = ls.accept()
d = os.dup(c.fileno())
dc = socket.socket(fileno=d)
for label, s in (("listener", ls), ("client", c), ("accepted", a), ("dup of client", dc)):
    out(label, [s.getsockopt(lvl, opt) for lvl, opt in (
        (socket.SOL_SOCKET, socket.SO_REUSEADDR), (socket.SOL_SOCKET, socket.SO_REUSEPORT),
        (socket.IPPROTO_TCP, socket.TCP_NODELAY), (socket.IPPROTO_IP, socket.IP_TOS),
        (socket.SOL_SOCKET, socket.SO_DOMAIN), (socket.SOL_SOCKET, socket.SO_PROTOCOL))])
dc.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
out("set through the dup, seen on the original", c.getsockopt(socket.IPPROTO_TCP,
                                                               socket.TCP_NODELAY))
'''


def test_options_through_connect_accept_and_dup_same_as_kernel(net: Net) -> None:
    """Options set before connect stay; an accepted socket inherits what Linux makes it
    inherit; a dup shares the options with the original."""
    assert_same(*differential(net, OPTIONS_SURVIVE))


SO_ERROR = r'''
s = tcp(); s.setblocking(False)
try:
    s.connect((A["srv4"], PORT + 1))
except OSError as e:
    out("connect", en(e))
p = select.poll(); p.register(s, select.POLLOUT); p.poll(2000)
step("SO_ERROR", s.getsockopt, socket.SOL_SOCKET, socket.SO_ERROR)
step("SO_ERROR again", s.getsockopt, socket.SOL_SOCKET, socket.SO_ERROR)
u = udp(); u.connect((A["srv4"], PORT + 2))
u.send(b"x"); time.sleep(0.1)
step("UDP SO_ERROR after port unreachable", u.getsockopt, socket.SOL_SOCKET, socket.SO_ERROR)
step("and then", u.getsockopt, socket.SOL_SOCKET, socket.SO_ERROR)
'''


def test_so_error_same_as_kernel(net: Net) -> None:
    assert_same(*differential(net, SO_ERROR))


# --------------------------------------------------------------------------- ioctl

IOCTL = r'''
ls, c, a = tcp_pair(A["srv4"], PORT)
step("SIOCINQ empty", ioctl_int, a, SIOCINQ)
c.sendall(b"x" * 1000)
readable(a); time.sleep(0.05)
step("SIOCINQ (FIONREAD)", ioctl_int, a, SIOCINQ)
a.recv(300)
step("SIOCINQ after a partial read", ioctl_int, a, SIOCINQ)
a.recv(1000)
step("SIOCINQ on a listener", ioctl_int, ls, SIOCINQ)
step("SIOCOUTQ after the peer read everything", ioctl_int, c, SIOCOUTQ)
step("FIONBIO on", ioctl_int, a, FIONBIO, 1)
out("O_NONBLOCK", bool(fcntl.fcntl(a.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK))
step("recv would block", a.recv, 10)
step("FIONBIO off", ioctl_int, a, FIONBIO, 0)
out("O_NONBLOCK", bool(fcntl.fcntl(a.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK))
r = udp(); r.bind((A["srv4"], PORT + 1))
s = udp(); s.bind((A["cli4"], PORT + 2))
step("UDP SIOCINQ empty", ioctl_int, r, SIOCINQ)
s.sendto(b"abc", (A["srv4"], PORT + 1)); s.sendto(b"defgh", (A["srv4"], PORT + 1))
readable(r)
step("UDP SIOCINQ: size of the first datagram", ioctl_int, r, SIOCINQ)
r.recv(10)
step("UDP SIOCINQ: next datagram", ioctl_int, r, SIOCINQ)
r.recv(10)
step("FIONBIO on UDP", ioctl_int, r, FIONBIO, 1)
step("UDP recv would block", r.recv, 10)
'''


def test_ioctl_same_as_kernel(net: Net) -> None:
    assert_same(*differential(net, IOCTL))


OUTQ = r'''
ls, c, a = tcp_pair(A["srv4"], PORT)
step("SIOCOUTQ on a listener", ioctl_int, ls, SIOCOUTQ)
c.sendall(b"x" * 1000)
readable(a); time.sleep(0.05)
step("SIOCOUTQ, delivered but not yet read", ioctl_int, c, SIOCOUTQ)
r = udp(); r.bind((A["srv4"], PORT + 1))
s = udp(); s.bind((A["cli4"], PORT + 2))
s.sendto(b"abc", (A["srv4"], PORT + 1))
readable(r)
step("UDP SIOCOUTQ, delivered but not yet read", ioctl_int, s, SIOCOUTQ)
'''


def test_siocoutq_same_as_kernel(net: Net) -> None:
    """SIOCOUTQ counts what the network has not taken yet: on loopback, data sitting in the
    peer's receive queue is acknowledged (TCP) or gone (UDP), so 0; a listener: EINVAL."""
    assert_same(*differential(net, OUTQ))


# --------------------------------------------------------------------------- nc


@pytest.mark.skipif(NC is None, reason="netcat-openbsd (nc) is not installed")
@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_nc_listen_sets_reuseport_silently(net: Net, udp: bool) -> None:
    """OpenBSD nc sets SO_REUSEPORT on its listening socket; under cwrap's library that fails
    and nc prints "Couldn't set SO_REUSEPORT". Here it must not."""
    assert NC is not None
    flags = ["-u"] if udp else []
    server = net.start([NC, *flags, "-l", "127.0.0.10", "7000"], net.env(10), name="nc -l")
    server.close_stdin()
    net.wait_file(sock_name("U" if udp else "T", 10, 7000), proc=server)
    client = net.run([NC, *flags, "-N", "-q", "1", "127.0.0.10", "7000"] if not udp else
                     [NC, "-u", "-w", "1", "127.0.0.10", "7000"], net.env(20), input="hello nc\n")
    assert client.returncode == 0, client.stderr
    assert "REUSEPORT" not in client.stderr, client.stderr
    server.expect("hello nc")
    server.kill()
    assert not any("REUSEPORT" in ln for ln in server.stderr), server.describe()
