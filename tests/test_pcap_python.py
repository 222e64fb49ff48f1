"""cwrap_py.pcap on its own: writer (dpkt) -> file -> reader, check, follow, summary, CLI.

No preload here: the rules of swrap_pcap.h are exercised through the Python writer, the
parser is checked against it (and against tshark, when installed, with checksum
validation on), and the checker is shown to find each kind of damage.
"""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from pcapsupport import TSHARK, tshark, tshark_bytes, tshark_findings

from cwrap_py import pcap, pcap_format
from cwrap_py.pcap_check import ones_sum

C4, S4 = ("127.0.0.20", 40000), ("127.0.0.10", 7)
C6, S6 = ("fd00::5357:5f14", 40001), ("fd00::5357:5f0a", 7)
SYN, ACK, FIN, RST, PSH = pcap.TCP_SYN, pcap.TCP_ACK, pcap.TCP_FIN, pcap.TCP_RST, pcap.TCP_PSH


def exchange(w: pcap.Writer, c: pcap.Endpoint, s: pcap.Endpoint, request: bytes,
             reply: bytes) -> None:
    """A client/server exchange, client closing first, as the C library records it."""
    w.tcp_connect(c, s)
    w.tcp_send(c, s, request)
    w.tcp_recv_ack(s, c, len(request))
    w.tcp_send(s, c, reply)
    w.tcp_recv_ack(c, s, len(reply))
    w.tcp_close(c, s)
    w.tcp_eof(s, c)
    w.tcp_close(s, c)
    w.tcp_eof(c, s)


def sample(path: Path) -> pcap.Writer:
    with pcap.Writer(path) as w:
        exchange(w, C4, S4, b"hello\n", bytes(range(256)) * 20)
        exchange(w, C6, S6, b"v6 request", b"r" * 3000)
        w.tcp_refused(("127.0.0.20", 40002), ("127.0.0.10", 9))
        w.udp_send(("127.0.0.20", 40003), ("127.0.0.10", 5300), b"query")
        w.udp_send(("127.0.0.20", 40003), ("127.0.0.10", 5301), b"nobody", unreachable=True)
        w.udp_send(("fd00::5357:5f14", 40003), ("fd00::5357:5f0a", 5301), b"q" * 2000,
                   unreachable=True)
    return w


def swrap(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "cwrap_py", *args], capture_output=True,
                          timeout=60, check=False)


# --------------------------------------------------------------------------- format


def test_constants_come_from_the_header() -> None:
    assert pcap.MAGIC == 0xA1B2C3D4
    assert pcap.LINKTYPE_RAW == 101
    assert pcap.SNAPLEN == 262144
    assert (pcap_format.FILE_HEADER_SIZE, pcap_format.RECORD_HEADER_SIZE) == (24, 16)
    assert (SYN, ACK, FIN, RST, PSH) == (2, 16, 1, 4, 8)
    assert pcap_format.IPV4_OVERHEAD == 40 and pcap_format.IPV6_OVERHEAD == 60


def test_file_header_bytes() -> None:
    buf = io.BytesIO()
    pcap.Writer(buf)
    assert buf.getvalue() == struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101)


def test_fnv1a_and_isn() -> None:
    assert pcap.fnv1a32(b"") == 0x811C9DC5
    assert pcap.fnv1a32(b"a") == 0xE40C292C
    assert pcap.fnv1a32(b"foobar") == 0xBF9CF968
    key = bytes([127, 0, 0, 20]) + struct.pack(">H", 40000) + bytes([127, 0, 0, 10]) + b"\0\7"
    assert pcap.isn(C4, S4) == pcap.fnv1a32(key)
    assert pcap.isn(C4, S4) != pcap.isn(S4, C4)
    # a v4-mapped endpoint is its IPv4 address
    assert pcap.isn(("::ffff:127.0.0.20", 40000), S4) == pcap.isn(C4, S4)


def test_path_writer_appends_without_a_second_header(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    with pcap.Writer(path) as w:
        w.udp_send(C4, S4, b"one")
    with pcap.Writer(path) as w:
        w.udp_send(C4, S4, b"two")
    assert [p.payload for p in pcap.read_packets(path)] == [b"one", b"two"]
    assert pcap.check(path).ok


def test_reader_reads_the_other_byte_order(tmp_path: Path) -> None:
    pkt = pcap.udp_packet(C4, S4, b"x")
    swapped = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101)
    swapped += struct.pack(">IIII", 1, 2, len(pkt), len(pkt)) + pkt
    path = tmp_path / "be.pcap"
    path.write_bytes(swapped)
    (p,) = pcap.read_packets(path)
    assert (p.ts_sec, p.ts_usec, p.payload) == (1, 2, b"x")


# --------------------------------------------------------------------------- packets


def test_handshake_data_and_close_records(tmp_path: Path) -> None:
    w = sample(tmp_path / "t.pcap")
    pkts = pcap.read_packets(tmp_path / "t.pcap")
    assert [p.data for p in pkts] == w.packets()
    ci, si = pcap.isn(C4, S4), pcap.isn(S4, C4)
    syn, synack, ack = pkts[:3]
    assert (syn.flags, syn.seq, syn.ack, syn.source, syn.destination) == (SYN, ci, 0, C4, S4)
    assert (synack.flags, synack.seq, synack.ack) == (SYN | ACK, si, ci + 1)
    assert (ack.flags, ack.seq, ack.ack) == (ACK, ci + 1, si + 1)
    data = pkts[3]
    assert (data.flags, data.seq, data.ack, data.payload) == (ACK | PSH, ci + 1, si + 1,
                                                              b"hello\n")
    assert pkts[4].flags == ACK and pkts[4].ack == ci + 7 and pkts[4].source == S4
    for p in pkts:
        assert p.ttl == 64
        assert p.window == (65535 if p.proto == "tcp" else 0)
        if p.version == 4 and p.proto in ("tcp", "udp"):
            assert p.data[6:8] == b"\x40\x00"  # DF, id 0 before it
            assert p.data[4:6] == b"\0\0"


def test_segmentation_at_the_mtu() -> None:
    for mtu, c, s, mss in ((1500, C4, S4, 1460), (1500, C6, S6, 1440), (576, C4, S4, 536),
                           (576, C6, S6, 516)):
        w = pcap.Writer(mtu=mtu)
        w.tcp_connect(c, s)
        segs = w.tcp_send(c, s, b"z" * (2 * mss + 5))
        sizes = [len(pcap.read_packets(io.BytesIO(_file(w)))[3 + i].payload)
                 for i in range(len(segs))]
        assert sizes == [mss, mss, 5]
        flags = [p.flags for p in pcap.read_packets(io.BytesIO(_file(w)))[3:]]
        assert flags == [ACK, ACK, ACK | PSH]
        assert max(len(seg) for seg in segs) == mtu


def _file(w: pcap.Writer) -> bytes:
    out = pcap.pack_file_header()
    for sec, usec, pkt in w.records:
        out += pcap_format.pack_record_header(sec, usec, len(pkt)) + pkt
    return out


def test_close_rules() -> None:
    w = pcap.Writer()
    w.tcp_connect(C4, S4)
    ci, si = pcap.isn(C4, S4), pcap.isn(S4, C4)
    fin, its_ack = w.tcp_close(C4, S4)
    p = pcap.read_packets(io.BytesIO(_file(w)))
    assert (p[3].flags, p[3].seq, p[3].ack, p[3].source) == (FIN | ACK, ci + 1, si + 1, C4)
    assert (p[4].flags, p[4].seq, p[4].ack, p[4].source) == (ACK, si + 1, ci + 2, S4)
    assert p[4].tos == 0 and p[4].ttl == 64
    assert w.tcp_close(C4, S4) == []  # once
    assert w.tcp_eof(S4, C4) == []  # EOF: no record, peer_seq + 1
    assert w.side(S4, C4).peer_seq == (ci + 2) & 0xFFFFFFFF
    w.tcp_close(S4, C4)
    assert pcap.check(io.BytesIO(_file(w))).ok


def test_close_after_an_unread_fin_acknowledges_it() -> None:
    w = pcap.Writer()
    w.tcp_connect(C4, S4)
    ci, si = pcap.isn(C4, S4), pcap.isn(S4, C4)
    w.tcp_close(S4, C4)  # the server closes first; the client never reads the EOF
    fin, _ = w.tcp_close(C4, S4, peer_closed=True)
    p = pcap.read_packets(io.BytesIO(_file(w)))[-2]
    assert (p.flags, p.seq, p.ack) == (FIN | ACK, ci + 1, si + 2)
    assert pcap.check(io.BytesIO(_file(w))).ok


def test_close_with_unread_data_resets() -> None:
    w = pcap.Writer()
    w.tcp_connect(C4, S4)
    w.tcp_send(C4, S4, b"unread")
    (rst,) = w.tcp_close(S4, C4, unread=True)
    p = pcap.read_packets(io.BytesIO(_file(w)))[-1]
    assert p.flags == RST | ACK and p.seq == pcap.isn(S4, C4) + 1
    assert p.ack == pcap.isn(C4, S4) + 1  # unread data is not acknowledged


def test_refused_is_syn_then_rst() -> None:
    w = pcap.Writer()
    w.tcp_refused(C6, S6)
    syn, rst = pcap.read_packets(io.BytesIO(_file(w)))
    assert syn.flags == SYN and syn.seq == pcap.isn(C6, S6)
    assert (rst.flags, rst.seq, rst.ack, rst.source) == (RST | ACK, 0, pcap.isn(C6, S6) + 1, S6)


def test_tos_tclass_and_ttl_in_the_header() -> None:
    w = pcap.Writer()
    w.tcp_connect(C4, S4, tos=0x10, ttl=5, server_tos=0x20)
    w.tcp_send(S4, C4, b"x")
    w.tcp_connect(C6, S6, tos=0xB8, ttl=7)
    w.set_options(C6, S6, tos=0x28)
    w.tcp_send(C6, S6, b"y")
    w.udp_send(C4, S4, b"u", tos=0x08, ttl=3)
    got = [(p.tos, p.ttl) for p in pcap.read_packets(io.BytesIO(_file(w)))]
    assert got == [(0x10, 5), (0, 64), (0x10, 5), (0x20, 64),
                   (0xB8, 7), (0, 64), (0xB8, 7), (0x28, 7), (0x08, 3)]


def test_icmp_port_unreachable() -> None:
    w = pcap.Writer()
    udp4, icmp4 = w.udp_send(C4, S4, b"a" * 100, unreachable=True, tos=0x10)
    udp6, icmp6 = w.udp_send(C6, S6, b"b" * 3000, unreachable=True)
    p = pcap.read_packets(io.BytesIO(_file(w)))
    assert (p[1].proto, p[1].icmp_type, p[1].icmp_code) == ("icmp", 3, 3)
    assert (p[1].src, p[1].dst) == (S4[0], C4[0])
    assert p[1].data[24:28] == b"\0\0\0\0" and p[1].quoted == udp4[:28]
    assert icmp4[1] == 0 and icmp4[6:8] == b"\0\0" and icmp4[8] == 64  # TOS 0, no DF, TTL 64
    assert (p[3].proto, p[3].icmp_type, p[3].icmp_code) == ("icmp6", 1, 4)
    assert len(icmp6) == 1280 and p[3].quoted == udp6[:1232]
    small = w.udp_send(C6, S6, b"c", unreachable=True)[1]
    assert small[48:] == w.packets()[-2]  # the whole datagram is quoted when it fits
    assert pcap.check(io.BytesIO(_file(w))).ok


def test_broadcast_and_v4_mapped_addresses() -> None:
    w = pcap.Writer()
    w.udp_send(("::ffff:127.0.0.20", 5000), ("255.255.255.255", 5300), b"all")
    w.tcp_connect(("::ffff:127.0.0.20", 40000), ("::ffff:127.0.0.10", 7))
    seg = w.tcp_send(("::ffff:127.0.0.20", 40000), ("::ffff:127.0.0.10", 7), b"m" * 2000)
    p = pcap.read_packets(io.BytesIO(_file(w)))
    assert p[0].version == 4 and p[0].dst == "255.255.255.255" and p[0].src == "127.0.0.20"
    assert all(q.version == 4 for q in p)
    assert len(seg[0]) == 1500  # IPv4 MSS
    with pytest.raises(pcap.PcapBuildError):
        pcap.udp_packet(C4, S6, b"")


def test_zero_udp_checksum_is_sent_as_all_ones() -> None:
    for src, dst in ((C4, S4), (C6, S6)):
        for value in range(65536):
            pkt = pcap.udp_packet(src, dst, value.to_bytes(2, "big"))
            cksum = pkt[-4:-2]
            if cksum == b"\xff\xff":
                break
        else:
            pytest.fail("no payload gives a zero checksum")
        assert pcap.check(io.BytesIO(pcap.pack_file_header() +
                                     pcap_format.pack_record_header(0, 0, len(pkt)) + pkt)).ok


def test_sequence_numbers_wrap(tmp_path: Path) -> None:
    w = pcap.Writer(tmp_path / "w.pcap")
    w.tcp_connect(C4, S4)
    side = w.side(C4, S4)
    side.my_seq = 0xFFFFFF00
    w.side(S4, C4).peer_seq = 0xFFFFFF00
    data = bytes(range(256)) * 12
    w.tcp_send(C4, S4, data)
    w.tcp_recv_ack(S4, C4, len(data))
    w.close()
    assert side.my_seq == (0xFFFFFF00 + len(data)) & 0xFFFFFFFF
    # The handshake set other numbers: follow from the first data segment.
    pkts = pcap.read_packets(tmp_path / "w.pcap")[3:]
    conv = pcap.conversations(pkts)[0]
    assert pcap.follow(conv).data[0] == data


def test_checksums_are_right() -> None:
    w = pcap.Writer()
    exchange(w, C4, S4, b"odd length!", b"x" * 5001)
    exchange(w, C6, S6, b"y", b"z")
    w.udp_send(C6, S6, b"odd", unreachable=True)
    w.udp_send(C4, S4, b"odd", unreachable=True)
    for pkt in pcap.read_packets(io.BytesIO(_file(w))):
        if pkt.version == 4:
            assert ones_sum(pkt.data[:20]) == 0xFFFF
    assert pcap.check(io.BytesIO(_file(w))).ok


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_reads_the_python_trace_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    sample(path)
    assert tshark_findings(path) == []
    bad = tshark("-r", str(path), "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
                 "-o", "udp.check_checksum:TRUE", "-Y",
                 "ip.checksum.status == 0 || tcp.checksum.status == 0 || "
                 "udp.checksum.status == 0 || icmp.checksum.status == 0 || "
                 "icmpv6.checksum.status == 0")
    assert bad == ""
    good = tshark("-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o",
                  "udp.check_checksum:TRUE", "-Y",
                  "tcp.checksum.status == 1 || udp.checksum.status == 1")
    assert len(good.splitlines()) == len(pcap.read_packets(path)) - 2  # all but the 2 ICMP
    for mode in ("ascii", "raw"):
        for stream in ("0", "1"):
            theirs = tshark_bytes("-r", str(path), "-q", "-z", f"follow,tcp,{mode},{stream}")
            ours = swrap("pcap", "follow", str(path), "--stream", stream, "--format", mode)
            assert ours.stdout == theirs  # the same text as tshark's follow


# --------------------------------------------------------------------------- check


def _damaged(tmp_path: Path, edit: str) -> str:
    w = pcap.Writer()
    exchange(w, C4, S4, b"a" * 3000, b"b" * 100)
    recs = list(w.records)
    if edit == "checksum":
        sec, usec, pkt = recs[3]
        recs[3] = (sec, usec, pkt[:-1] + bytes([pkt[-1] ^ 1]))
    elif edit == "drop":
        del recs[4]  # second data segment
    elif edit == "duplicate":
        recs.insert(4, recs[3])
    elif edit == "dupack":
        recs.insert(7, recs[6])
    elif edit == "ack-first":
        recs[5], recs[6] = recs[6], recs[5]  # the ACK before the last data segment
    elif edit == "iplen":
        sec, usec, pkt = recs[0]
        recs[0] = (sec, usec, pkt + b"\0")
    elif edit == "late-syn":
        recs = recs[3:4] + recs[:3] + recs[4:]
    out = pcap.pack_file_header()
    for sec, usec, pkt in recs:
        out += pcap_format.pack_record_header(sec, usec, len(pkt)) + pkt
    if edit == "truncated":
        out = out[:-7]
    if edit == "magic":
        out = b"\0\0\0\0" + out[4:]
    path = tmp_path / f"{edit}.pcap"
    path.write_bytes(out)
    result = pcap.check(path)
    assert not result.ok
    assert "\n" not in result.line()
    return result.line()


@pytest.mark.parametrize(("edit", "expected"), [
    ("checksum", "record 4: TCP checksum 0x"),
    ("drop", "record 5: previous segment not captured"),
    ("duplicate", "record 5: retransmission"),
    ("dupack", "record 8: duplicate ACK"),
    ("ack-first", "record 6: ACK of unseen data"),
    ("iplen", "record 1: IPv4 total length 40, packet has 41 bytes"),
    ("late-syn", "record 2: SYN after record 1"),
    ("truncated", "packet truncated"),
    ("magic", "bad magic 00000000"),
])
def test_check_finds_the_first_problem(tmp_path: Path, edit: str, expected: str) -> None:
    line = _damaged(tmp_path, edit)
    assert line.startswith(expected) or expected in line, line


def test_check_ok_on_a_clean_trace(tmp_path: Path) -> None:
    sample(tmp_path / "t.pcap")
    result = pcap.check(tmp_path / "t.pcap")
    assert result.ok, result.line()
    assert (result.records, result.tcp_streams, result.udp_conversations) == (34, 3, 3)


# --------------------------------------------------------------------------- follow, summary


def test_follow_reassembles_out_of_order_segments() -> None:
    w = pcap.Writer()
    w.tcp_connect(C4, S4)
    data = bytes(range(256)) * 40
    w.tcp_send(C4, S4, data)
    w.tcp_send(S4, C4, b"reply")
    recs = w.records[:3] + list(reversed(w.records[3:]))
    pkts = pcap.read_packets(io.BytesIO(
        pcap.pack_file_header() + b"".join(pcap_format.pack_record_header(s, u, len(p)) + p
                                           for s, u, p in recs)))
    f = pcap.follow(pcap.tcp_streams(pkts)[0])
    assert f.data == (data, b"reply") and f.gaps == (0, 0)
    assert (f.a, f.b) == (C4, S4)


def test_summary_counts(tmp_path: Path) -> None:
    sample(tmp_path / "t.pcap")
    info = pcap.summary(tmp_path / "t.pcap")
    assert info["records"] == 34
    first = info["conversations"][0]
    assert (first["proto"], first["a"], first["b"]) == ("tcp", "127.0.0.20:40000",
                                                       "127.0.0.10:7")
    assert first["a_to_b"]["payload"] == 6 and first["b_to_a"]["payload"] == 5120
    assert first["a_to_b"]["packets"] == 6  # SYN, ACK, data, ACK, FIN, ACK of the FIN
    v6 = info["conversations"][1]
    assert v6["a"] == "[fd00::5357:5f14]:40001"
    udp = [c for c in info["conversations"] if c["proto"] == "udp"]
    assert [c["unreachable"] for c in udp] == [0, 1, 1]


# --------------------------------------------------------------------------- CLI


def test_cli_summary_follow_check(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    sample(path)
    res = swrap("pcap", "summary", str(path))
    assert res.returncode == 0, res.stderr
    assert re.search(rb"\ntcp +0 +127\.0\.0\.20:40000 +<-> 127\.0\.0\.10:7 ", res.stdout)
    res = swrap("pcap", "summary", "--json", str(path))
    assert json.loads(res.stdout)["records"] == 34
    res = swrap("pcap", "follow", str(path), "--stream", "1")
    assert res.returncode == 0
    text = res.stdout.decode()
    assert "Filter: tcp.stream eq 1" in text and "v6 request" in text
    assert "Node 1: [fd00::5357:5f0a]:7" in text
    res = swrap("pcap", "follow", str(path), "--stream", "0", "--direction", "1")
    assert res.stdout == bytes(range(256)) * 20
    res = swrap("pcap", "follow", str(path), "--stream", "0", "--format", "raw")
    assert "68656c6c6f0a" in res.stdout.decode()
    res = swrap("pcap", "check", str(path))
    assert res.returncode == 0 and res.stdout.decode().startswith(f"{path}: OK: 34 records")


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    res = swrap("pcap", "check", str(tmp_path / "missing.pcap"))
    assert res.returncode == 2
    assert res.stderr.decode() == f"swrap: {tmp_path / 'missing.pcap'}: No such file or directory\n"
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a pcap file at all, really")
    res = swrap("pcap", "check", str(bad))
    assert res.returncode == 1 and len(res.stdout.decode().splitlines()) == 1
    assert b"bad magic" in res.stdout and b"Traceback" not in res.stderr
    for cmd in (["summary"], ["follow"]):
        res = swrap("pcap", *cmd, str(bad))
        assert res.returncode == 1 and res.stderr.decode().count("\n") == 1, res.stderr
        assert res.stderr.startswith(b"swrap: ") and b"Traceback" not in res.stderr
    sample(tmp_path / "t.pcap")
    res = swrap("pcap", "follow", str(tmp_path / "t.pcap"), "--stream", "9")
    assert res.returncode == 2
    assert res.stderr.decode() == f"swrap: {tmp_path / 't.pcap'}: no TCP stream 9 (it has 3)\n"
    res = swrap("pcap", "follow", str(tmp_path / "t.pcap"), "--direction", "0")
    assert res.returncode == 2 and b"--direction needs --stream" in res.stderr
