"""Issue 5, item 3: the record of a passed socket is the same in C and in Python.

The C library writes ``SOCKET_WRAPPER_DIR/.fdpass-<inode>`` when a wrapped process sends
an emulated socket with SCM_RIGHTS; ``cwrap_py.fdpass`` reads it from the same header
(swrap_fdpass.h, through cffi). Here a wrapped sender passes sockets to a receiver that
does not take the record (an unwrapped process, or a wrapped one that has not called
recvmsg yet), the test decodes the record and checks each field against what the sender
sees; then Python writes a changed record and the wrapped receiver must report the change
(the C decoder read what Python wrote). A record of another version is ignored.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cwrap_py import fdpass
from fdpasssupport import LabProc, records_in, start_lab, tcp_segments, wait_until

if TYPE_CHECKING:
    from conftest import Net

TCP = socket.IPPROTO_TCP
IP = socket.IPPROTO_IP


# --------------------------------------------------------------------------- pure Python

_ADDR4 = st.builds(
    lambda a, p: fdpass.SockAddr(socket.AF_INET, socket.inet_ntop(socket.AF_INET, a), p),
    st.binary(min_size=4, max_size=4), st.integers(0, 0xFFFF),
)
_ADDR6 = st.builds(
    lambda a, p, f, s: fdpass.SockAddr(
        socket.AF_INET6, socket.inet_ntop(socket.AF_INET6, a), p, f, s),
    st.binary(min_size=16, max_size=16), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)
_ADDR = st.one_of(_ADDR4, _ADDR6, st.just(fdpass.SockAddr(0)))
_OPT = st.builds(fdpass.SockOpt, st.integers(-(2**15), 2**15 - 1),
                 st.integers(-(2**15), 2**15 - 1).filter(bool), st.integers(-(2**31), 2**31 - 1))
_U32 = st.integers(0, 2**32 - 1)
_RECORDS = st.builds(
    fdpass.Record,
    inode=st.integers(0, 2**64 - 1),
    family=st.sampled_from(sorted(fdpass.FAMILIES)),
    type=st.sampled_from(sorted(fdpass.TYPES)),
    protocol=st.sampled_from([socket.IPPROTO_TCP, socket.IPPROTO_UDP]),
    local=_ADDR, peer=_ADDR,
    name_family=st.sampled_from([socket.AF_INET, socket.AF_INET6]),
    flags=st.builds(fdpass.Flags, st.integers(0, 255)),
    pending_error=st.integers(-(2**31), 2**31 - 1),
    port=st.integers(0, 0xFFFF), iface=st.integers(0, 255), peer_iface=st.integers(0, 255),
    my_seq=_U32, peer_seq=_U32, trace_state=_U32,
    options=st.lists(_OPT, max_size=fdpass.OPT_SLOTS).map(tuple),
)


@given(_RECORDS)
def test_encode_decode_round_trip(record: fdpass.Record) -> None:
    data = fdpass.encode(record)
    assert len(data) == fdpass.RECORD_SIZE
    assert fdpass.decode(data) == record
    assert fdpass.encode(fdpass.decode(data)) == data


def test_layout_is_the_headers() -> None:
    """The cdef'd struct has the fixed layout the header promises (no hidden padding)."""
    assert fdpass.RECORD_SIZE == 112 + 8 * fdpass.OPT_SLOTS
    assert fdpass.offset("magic") == 0
    assert fdpass.offset("version") == 4
    assert fdpass.offset("size") == 6
    assert fdpass.offset("inode") == 8
    assert fdpass.offset("local") == 56
    assert fdpass.offset("peer") == 56 + fdpass.ADDR_SIZE
    assert fdpass.offset("opts") == 56 + 2 * fdpass.ADDR_SIZE
    assert fdpass.ADDR_SIZE == 28  # sizeof(struct sockaddr_in6)


def _sample() -> fdpass.Record:
    return fdpass.Record(
        inode=42, family=socket.AF_INET, type=socket.SOCK_STREAM, protocol=TCP,
        local=fdpass.SockAddr(socket.AF_INET, "127.0.0.10", 80),
        peer=fdpass.SockAddr(socket.AF_INET, "127.0.0.20", 40000),
        name_family=socket.AF_INET, flags=fdpass.Flags.BOUND | fdpass.Flags.CONNECTED,
        port=80, iface=10, peer_iface=20, options=(fdpass.SockOpt(TCP, 1, 1),),
    )


def _patch(data: bytes, field: str, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, fdpass.offset(field), value)
    return bytes(out)


@pytest.mark.parametrize(
    ("field", "fmt", "value", "message"),
    [
        ("magic", "=I", 0x12345678, "bad magic 0x12345678"),
        ("version", "=H", fdpass.VERSION + 1, f"record version {fdpass.VERSION + 1}"),
        ("size", "=H", fdpass.RECORD_SIZE - 8, f"record size field {fdpass.RECORD_SIZE - 8}"),
        ("family", "=i", socket.AF_UNIX, "family 1"),
        ("type", "=i", socket.SOCK_SEQPACKET, "socket type 5"),
    ],
)
def test_decode_rejects(field: str, fmt: str, value: int, message: str) -> None:
    data = _patch(fdpass.encode(_sample()), field, fmt, value)
    with pytest.raises(fdpass.RecordError, match=message) as info:
        fdpass.decode(data)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_decode_rejects_wrong_length() -> None:
    data = fdpass.encode(_sample())
    for bad in (b"", data[:7], data[:-1], data + b"\0"):
        with pytest.raises(ValueError, match="bytes"):
            fdpass.decode(bad)


def test_encode_rejects_what_the_format_cannot_hold() -> None:
    base = _sample()
    too_many = tuple(fdpass.SockOpt(TCP, i, i) for i in range(1, fdpass.OPT_SLOTS + 2))
    for bad in (
        fdpass.Record(**{**base.__dict__, "options": too_many}),
        fdpass.Record(**{**base.__dict__, "port": 70000}),
        fdpass.Record(**{**base.__dict__, "options": (fdpass.SockOpt(TCP, 0, 16),)}),
    ):
        with pytest.raises(fdpass.RecordError):
            fdpass.encode(bad)


def test_files(tmp_path: Path) -> None:
    rec = _sample()
    path = fdpass.write_record(tmp_path, rec)
    assert path == tmp_path / ".fdpass-42" == fdpass.record_path(tmp_path, 42)
    assert fdpass.read_record(tmp_path, 42) == rec
    assert fdpass.record_inodes(tmp_path) == [42]
    (tmp_path / ".fdpass-7").write_bytes(fdpass.encode(rec))  # the record of another inode
    with pytest.raises(fdpass.RecordError, match="inode 42"):
        fdpass.read_record(tmp_path, 7)
    with pytest.raises(FileNotFoundError):
        fdpass.read_record(tmp_path, 8)
    found = dict(fdpass.records(tmp_path))
    assert found[42] == rec and isinstance(found[7], fdpass.RecordError)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".fdpass-42", ".fdpass-7"]


# --------------------------------------------------------------------------- C vs Python


def _tcp_scene(lab: LabProc, client_iface: int = 20) -> None:
    """L listens on 127.0.0.10:5000; C (bound to client_iface) connects; A is accepted.
    A has options set and has exchanged data (so its trace sequence numbers moved)."""
    lab.do("socket", name="L")
    lab.do("bind", name="L", host="127.0.0.10", port=5000)
    lab.do("listen", name="L")
    lab.do("socket", name="C")
    lab.do("bind", name="C", host=f"127.0.0.{client_iface}", port=0)
    lab.do("connect", name="C", host="127.0.0.10", port=5000)
    lab.do("accept", name="A", listener="L")
    lab.do("setopt", name="A", level="IPPROTO_TCP", opt="TCP_NODELAY", value=1)
    lab.do("setopt", name="A", level="IPPROTO_TCP", opt="TCP_KEEPIDLE", value=33)
    lab.do("setopt", name="A", level="IPPROTO_IP", opt="IP_TOS", value=0x10)
    lab.do("send", name="A", data="hello")
    assert lab.do("recv", name="C", size=5)["data"] == "hello"
    lab.do("send", name="C", data="world!")
    assert lab.do("recv", name="A", size=6)["data"] == "world!"


def _link(sender: LabProc, receiver: LabProc, where: Path) -> None:
    path = str(where / "via")
    receiver.do("unix_listen", name="ul", path=path)
    sender.do("unix_connect", name="via", path=path)
    receiver.do("unix_accept", name="via", listener="ul")


def _addr_of(info: Any) -> fdpass.SockAddr:
    fam = socket.AF_INET6 if len(info) == 4 else socket.AF_INET
    return fdpass.SockAddr.from_tuple(fam, tuple(info))


def _sent_segments(pcap: Path, src: tuple[str, int], dst: tuple[str, int]) -> int:
    """Next sequence number after the last segment src sent to dst in the trace."""
    nxt: int | None = None
    for _, key, tcp in tcp_segments(pcap):
        if key == (*src, *dst):
            span = len(tcp.data) + bool(tcp.flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN))
            nxt = (int(tcp.seq) + span) & 0xFFFFFFFF
    assert nxt is not None, f"no segment {src} -> {dst} in the trace"
    return nxt


def test_c_record_decodes_to_what_the_sender_sees(net: Net, rendezvous: Path) -> None:
    """Wrapped sender -> unwrapped receiver (which leaves the records in place): the record
    of each socket holds exactly what getsockname/getpeername/getsockopt report in the
    sender, and the trace sequence numbers of the pcap."""
    pcap = rendezvous / "trace.pcap"
    sender = start_lab(net, net.env(10, extra={"SOCKET_WRAPPER_PCAP_FILE": str(pcap)}), "sender")
    receiver = start_lab(net, net.kernel_env(), "plain-receiver")
    _tcp_scene(sender)
    sender.do("socket", name="U", family=6, kind="udp")
    sender.do("bind", name="U", host="fd00::5357:5f0a", port=53)
    sender.do("socket", name="E", kind="udp")
    sender.do("bind", name="E", host="127.0.0.30", port=7000)
    sender.do("socket", name="D", kind="udp")
    sender.do("connect", name="D", host="127.0.0.30", port=7000)
    sender.do("socket", name="W", kind="udp")
    sender.do("bind", name="W", host="0.0.0.0", port=5353)
    sender.do("socket", name="S6", family=6)
    sender.do("bind", name="S6", host="::", port=5001)
    sender.do("listen", name="S6")
    sender.do("socket", name="C6", family=6)
    sender.do("connect", name="C6", host="fd00::5357:5f0a", port=5001)
    sender.do("accept", name="A6", listener="S6")
    _link(sender, receiver, rendezvous)
    names = ["A", "L", "U", "D", "W", "S6", "A6"]
    infos = {n: sender.do("info", name=n) for n in names}
    assert records_in(net.dir) == []
    sender.do("sendfds", via="via", groups=[["A", "L"], ["U", "D"], ["W", "S6", "A6"]])
    got = receiver.do("recvfds", via="via", names=[n.lower() for n in names])
    assert len(got["fds"]) == len(names) and not got["ctrunc"]

    recs: dict[str, fdpass.Record] = {}
    for n in names:
        info = infos[n]
        raw = fdpass.record_path(net.dir, info["inode"]).read_bytes()
        rec = fdpass.decode(raw)
        assert fdpass.encode(rec) == raw, f"{n}: Python re-encodes the C record differently"
        assert rec == fdpass.read_record(net.dir, info["inode"])
        recs[n] = rec
        assert rec.inode == info["inode"]
        assert rec.family == info["family"] == info["so_domain"]
        assert rec.name_family == info["family"]
        assert rec.type == info["type"] == info["so_type"]
        assert rec.protocol == (TCP if info["type"] == socket.SOCK_STREAM
                                else socket.IPPROTO_UDP)
        assert rec.local == _addr_of(info["sockname"]), n
        if rec.flags & fdpass.Flags.WILDCARD:  # 0.0.0.0 / ::: the file is on the default iface
            assert rec.iface == 10, n
        else:
            assert rec.iface == int(ipaddr_last(rec.local)), n
        assert rec.port == rec.local.port
        assert rec.pending_error == 0
        assert bool(rec.flags & fdpass.Flags.LISTENING) == bool(info["acceptconn"])
        assert rec.flags & fdpass.Flags.BOUND
        if info["peername"] is None:
            assert not rec.flags & fdpass.Flags.CONNECTED, n
        else:
            assert rec.flags & fdpass.Flags.CONNECTED, n
            assert rec.peer == _addr_of(info["peername"]), n
    assert len(records_in(net.dir)) == len(names)

    a, ln, u, d, w, s6, a6 = (recs[n] for n in names)
    assert w.flags == fdpass.Flags.BOUND | fdpass.Flags.WILDCARD
    assert w.local == fdpass.SockAddr(socket.AF_INET, "0.0.0.0", 5353)
    assert s6.flags & fdpass.Flags.LISTENING and s6.flags & fdpass.Flags.WILDCARD
    assert s6.family == socket.AF_INET6 and s6.local.host == "::"
    assert a6.flags & fdpass.Flags.CONNECTED and a6.family == socket.AF_INET6
    assert a6.local.host == "fd00::5357:5f0a" and a6.peer.host == "fd00::5357:5f0a"
    assert a.flags == fdpass.Flags.BOUND | fdpass.Flags.CONNECTED
    assert ln.flags == fdpass.Flags.BOUND | fdpass.Flags.LISTENING
    assert u.flags == fdpass.Flags.BOUND and u.family == socket.AF_INET6
    assert d.flags & fdpass.Flags.CONNECTED and d.peer.port == 7000
    # Options the program set, as getsockopt reports them.
    for opt, value in (("TCP_NODELAY", 1), ("TCP_KEEPIDLE", 33)):
        assert sender.do("getopt", name="A", level="IPPROTO_TCP", opt=opt)["value"] == value
        assert a.option(TCP, getattr(socket, opt)) == value
    assert sender.do("getopt", name="A", level="IPPROTO_IP", opt="IP_TOS")["value"] == 0x10
    assert a.option(IP, socket.IP_TOS) == 0x10
    assert len(a.options) == 3
    assert ln.options == () and u.options == ()
    # The trace: my_seq/peer_seq continue the stream the pcap holds so far.
    local = (a.local.host, a.local.port)
    peer = (a.peer.host, a.peer.port)
    assert a.my_seq == _sent_segments(pcap, local, peer)
    assert a.peer_seq == _sent_segments(pcap, peer, local)
    assert a.trace_state == 0


def test_c_record_peer_iface(net: Net, rendezvous: Path) -> None:
    """peer_iface is the interface of the peer's file, on the connecting side and on the
    accepting side alike (as the receiver's rebuild from names sets it)."""
    sender = start_lab(net, net.env(10), "sender")
    receiver = start_lab(net, net.kernel_env(), "plain-receiver")
    _tcp_scene(sender, client_iface=20)
    _link(sender, receiver, rendezvous)
    inode = {n: sender.do("info", name=n)["inode"] for n in ("A", "C")}
    sender.do("sendfds", via="via", groups=[["A", "C"]])
    receiver.do("recvfds", via="via", names=["a", "c"])
    assert fdpass.read_record(net.dir, inode["C"]).peer_iface == 10
    assert fdpass.read_record(net.dir, inode["A"]).peer_iface == 20, (
        "accepted socket: record carries peer_iface 0 though its peer is 127.0.0.20"
    )


def test_c_record_carries_ip_level_options(net: Net, rendezvous: Path) -> None:
    """IPPROTO_IP options (level 0: IP_TOS, IP_TTL) are emulated, so they must travel."""
    sender = start_lab(net, net.env(10), "sender")
    receiver = start_lab(net, net.kernel_env(), "plain-receiver")
    _tcp_scene(sender)
    sender.do("setopt", name="A", level="IPPROTO_IP", opt="IP_TOS", value=0x10)
    assert sender.do("getopt", name="A", level="IPPROTO_IP", opt="IP_TOS")["value"] == 0x10, (
        "setsockopt(IPPROTO_IP, IP_TOS, 0x10) succeeded but getsockopt reads it back as 0"
    )
    _link(sender, receiver, rendezvous)
    inode = sender.do("info", name="A")["inode"]
    sender.do("sendfds", via="via", groups=[["A"]])
    receiver.do("recvfds", via="via", names=["a"])
    assert fdpass.read_record(net.dir, inode).option(IP, socket.IP_TOS) == 0x10


def ipaddr_last(addr: fdpass.SockAddr) -> int:
    """Interface id of an emulated address (its last byte)."""
    return socket.inet_pton(addr.family, addr.host)[-1]


def _held_pass(net: Net, rendezvous: Path) -> tuple[LabProc, LabProc, int]:
    """Wrapped sender passes A to a wrapped receiver that has not called recvmsg yet."""
    sender = start_lab(net, net.env(10), "sender")
    receiver = start_lab(net, net.env(40), "receiver")
    _tcp_scene(sender)
    _link(sender, receiver, rendezvous)
    inode = sender.do("info", name="A")["inode"]
    sender.do("sendfds", via="via", groups=[["A"]])
    wait_until(lambda: fdpass.record_path(net.dir, inode).exists(), what="the record")
    return sender, receiver, inode


def test_python_record_read_by_c_receiver(net: Net, rendezvous: Path) -> None:
    """Python rewrites the record in flight (option value, peer address, trace state); the
    wrapped receiver reports what Python wrote, then takes (removes) the record."""
    sender, receiver, inode = _held_pass(net, rendezvous)
    rec = fdpass.read_record(net.dir, inode)
    changed = fdpass.Record(**{
        **rec.__dict__,
        "peer": fdpass.SockAddr(socket.AF_INET, "127.0.0.99", 4242),
        "peer_iface": 99,
        "options": tuple(
            fdpass.SockOpt(o.level, o.name, {(TCP, socket.TCP_KEEPIDLE): 77,
                                             (IP, socket.IP_TOS): 0x28}.get((o.level, o.name),
                                                                           o.value))
            for o in rec.options
        ) + (fdpass.SockOpt(TCP, socket.TCP_KEEPCNT, 5), fdpass.SockOpt(IP, socket.IP_TTL, 9)),
    })
    fdpass.write_record(net.dir, changed)
    assert fdpass.read_record(net.dir, inode) == changed
    got = receiver.do("recvfds", via="via", names=["a"])
    assert len(got["fds"]) == 1
    info = receiver.do("info", name="a")
    assert info["family"] == socket.AF_INET and info["type"] == socket.SOCK_STREAM
    assert info["peername"] == ["127.0.0.99", 4242]
    assert info["sockname"] == ["127.0.0.10", 5000]

    def opt(name: str) -> int:
        return int(receiver.do("getopt", name="a", level="IPPROTO_TCP", opt=name)["value"])

    assert opt("TCP_KEEPIDLE") == 77
    assert opt("TCP_KEEPCNT") == 5
    assert opt("TCP_NODELAY") == 1
    assert receiver.do("getopt", name="a", level="IPPROTO_IP", opt="IP_TOS")["value"] == 0x28
    assert receiver.do("getopt", name="a", level="IPPROTO_IP", opt="IP_TTL")["value"] == 9
    assert records_in(net.dir) == [], "the receiver takes the record"
    # Still the same connection underneath.
    receiver.do("send", name="a", data="via-receiver")
    assert sender.do("recv", name="C", size=12)["data"] == "via-receiver"


@pytest.mark.parametrize(
    ("field", "fmt", "delta"),
    [("version", "=H", 1), ("magic", "=I", 1), ("size", "=H", -8), ("inode", "=Q", 1)],
)
def test_foreign_record_is_ignored(
    net: Net, rendezvous: Path, field: str, fmt: str, delta: int
) -> None:
    """A record of another version/magic/size (or of another inode) is not read: the
    receiver rebuilds the identity from the socket's names, and nothing crashes."""
    sender, receiver, inode = _held_pass(net, rendezvous)
    path = fdpass.record_path(net.dir, inode)
    data = path.read_bytes()
    (old,) = struct.unpack_from(fmt, data, fdpass.offset(field))
    bad = _patch(data, field, fmt, old + delta)
    if field == "inode":  # a well-formed record, but of another socket
        bad = _patch(fdpass.encode(fdpass.Record(**{
            **fdpass.decode(data).__dict__, "peer": fdpass.SockAddr(socket.AF_INET, "127.0.0.99", 9)
        })), field, fmt, old + delta)
    else:
        with pytest.raises(fdpass.RecordError):
            fdpass.decode(bad)
    path.write_bytes(bad)
    got = receiver.do("recvfds", via="via", names=["a"])
    assert len(got["fds"]) == 1
    info = receiver.do("info", name="a")
    client = sender.do("info", name="C")["sockname"]
    assert info["family"] == socket.AF_INET
    assert info["sockname"] == ["127.0.0.10", 5000]
    assert info["peername"] == client  # from the Unix names, not from the record
    assert receiver.do("getopt", name="a", level="IPPROTO_TCP", opt="TCP_KEEPIDLE")["value"] \
        == 7200, "options do not survive without a record (the default is read)"
    receiver.do("send", name="a", data="still-works")
    assert sender.do("recv", name="C", size=11)["data"] == "still-works"
    assert receiver.proc.alive() and sender.proc.alive()
    # Once the socket is gone everywhere, its stale record goes too.
    receiver.do("close", names=["a"])
    sender.do("close", names=["A", "C"])
    wait_until(lambda: records_in(net.dir) == [], timeout=10,
               what=f"stale record removed (left: {records_in(net.dir)})")


def test_foreign_record_removed_when_receiver_closes_last(net: Net, rendezvous: Path) -> None:
    """As above, but the sender closes its copy first: the record of another version must
    not stay in the directory after the receiver, the last holder, closes the socket."""
    sender, receiver, inode = _held_pass(net, rendezvous)
    path = fdpass.record_path(net.dir, inode)
    path.write_bytes(_patch(path.read_bytes(), "version", "=H", fdpass.VERSION + 1))
    receiver.do("recvfds", via="via", names=["a"])
    assert receiver.do("info", name="a")["sockname"] == ["127.0.0.10", 5000]
    sender.do("close", names=["A", "C", "L"])
    receiver.do("close", names=["a"])
    wait_until(lambda: records_in(net.dir) == [], timeout=10,
               what=f"stale record removed (left: {records_in(net.dir)})")
