"""Check a trace: file and record headers, IP/TCP/UDP/ICMP headers and checksums,
and per TCP stream and direction the sequence analysis Wireshark does (previous
segment not captured, retransmission, duplicate ACK, ACK of unseen data).

The result names the first problem in file order, as one line.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from dataclasses import dataclass
from typing import IO

from cwrap_py import pcap_format as fmt
from cwrap_py.pcap_format import PcapFormatError
from cwrap_py.pcap_read import Conversation, Packet, Reader, conversations


def ones_sum(data: bytes) -> int:
    """16-bit ones' complement sum of data (big-endian words), folded."""
    if len(data) % 2:
        data += b"\0"
    total = sum(array("H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    if sys.byteorder == "little":
        total = ((total & 0xFF) << 8) | (total >> 8)
    return total


def _pseudo(pkt: Packet, length: int) -> bytes:
    data = pkt.data
    if pkt.version == 4:
        return data[12:20] + struct.pack(">BBH", 0, pkt.ip_proto, length)
    return data[8:40] + struct.pack(">IxxxB", length, pkt.ip_proto)


def _verify_sum(what: str, covered: bytes, at: int) -> str:
    """'' if the checksum field at offset `at` of `covered` is right, else the problem."""
    if ones_sum(covered) == 0xFFFF:
        return ""
    stored = struct.unpack_from(">H", covered, at)[0]
    expected = ~ones_sum(covered[:at] + b"\0\0" + covered[at + 2:]) & 0xFFFF
    return f"{what} checksum 0x{stored:04x}, expected 0x{expected:04x}"


def packet_problem(pkt: Packet, snaplen: int) -> str:
    """The first problem of one record on its own ('' if none)."""
    if pkt.orig_len != len(pkt.data):
        return f"captured {len(pkt.data)} of {pkt.orig_len} bytes (incl_len != orig_len)"
    if pkt.ts_usec >= 1_000_000:
        return f"timestamp microseconds {pkt.ts_usec} out of range"
    if len(pkt.data) > snaplen:
        return f"{len(pkt.data)} bytes exceed the snapshot length {snaplen}"
    if pkt.problem:
        return pkt.problem
    data = pkt.data
    if pkt.version == 4:
        if pkt.ip_header_len != 20:
            return f"IPv4 header length {pkt.ip_header_len} (options are never written)"
        total = struct.unpack_from(">H", data, 2)[0]
        if total != len(data):
            return f"IPv4 total length {total}, packet has {len(data)} bytes"
        frag = struct.unpack_from(">H", data, 6)[0]
        if frag & 0x3FFF:
            return f"IPv4 fragment (flags/offset 0x{frag:04x})"
        bad = _verify_sum("IPv4 header", data[:20], 10)
        if bad:
            return bad
    else:
        plen = struct.unpack_from(">H", data, 4)[0]
        if plen != len(data) - 40:
            return f"IPv6 payload length {plen}, packet has {len(data) - 40} bytes after the header"
    l4 = data[pkt.l4_offset:]
    if pkt.proto == "tcp":
        return _verify_sum("TCP", _pseudo(pkt, len(l4)) + l4, 12 + 16)
    if pkt.proto == "udp":
        ulen, stored = struct.unpack_from(">HH", l4, 4)
        if ulen != len(l4):
            return f"UDP length {ulen}, datagram has {len(l4)} bytes"
        if stored == 0:
            return "UDP checksum missing (0)"
        return _verify_sum("UDP", _pseudo(pkt, len(l4)) + l4, 12 + 16 if pkt.version == 4
                           else 40 + 6)
    if pkt.proto == "icmp":
        return _verify_sum("ICMP", l4, 2)
    if pkt.proto == "icmp6":
        return _verify_sum("ICMPv6", _pseudo(pkt, len(l4)) + l4, 40 + 2)
    return f"unexpected IP protocol {pkt.ip_proto}"


def _signed(delta: int) -> int:
    delta &= 0xFFFFFFFF
    return delta - (1 << 32) if delta & 0x80000000 else delta


@dataclass
class _Dir:
    next_seq: int | None = None
    last_ack: int | None = None
    last_win: int | None = None
    fin: bool = False


def sequence_problem(conv: Conversation) -> tuple[int, str] | None:
    """(record index, problem) of the first sequence problem of a TCP stream."""
    dirs = (_Dir(), _Dir())
    first = conv.packets[0] if conv.packets else None
    for pkt in conv.packets:
        if pkt.proto != "tcp":
            continue
        if pkt.flags & (fmt.TCP_SYN | fmt.TCP_ACK) == fmt.TCP_SYN and first is not pkt:
            assert first is not None
            return pkt.index, (f"SYN after record {first.index} of the same connection "
                               f"(handshake recorded late) (tcp.stream {conv.stream}: "
                               f"{pkt.describe()})")
        node = 0 if conv.from_a(pkt) else 1
        fwd, rev = dirs[node], dirs[1 - node]
        syn, fin, rst = (bool(pkt.flags & f) for f in (fmt.TCP_SYN, fmt.TCP_FIN, fmt.TCP_RST))
        ack_flag = bool(pkt.flags & fmt.TCP_ACK)
        seglen = len(pkt.payload) + syn + fin
        where = f"tcp.stream {conv.stream}: {pkt.describe()}"
        if pkt.payload and fwd.fin:
            return pkt.index, f"data after FIN ({where})"
        if fwd.next_seq is None:
            fwd.next_seq = pkt.seq
        rel = _signed(pkt.seq - fwd.next_seq)
        if rel > 0 and not rst:
            return pkt.index, (f"previous segment not captured: seq {pkt.seq}, "
                               f"expected {fwd.next_seq} ({where})")
        if rel < 0 and seglen > 0:
            return pkt.index, (f"retransmission: seq {pkt.seq} below the next expected "
                               f"{fwd.next_seq} ({where})")
        dup = (seglen == 0 and not rst and ack_flag and rel == 0 and pkt.window != 0
               and pkt.ack == fwd.last_ack and pkt.window == fwd.last_win)
        if dup:
            return pkt.index, f"duplicate ACK {pkt.ack} ({where})"
        if ack_flag and rev.next_seq is not None and _signed(pkt.ack - rev.next_seq) > 0:
            return pkt.index, (f"ACK of unseen data: ack {pkt.ack}, the other side sent up to "
                               f"{rev.next_seq} ({where})")
        if rel == 0:
            fwd.next_seq = (pkt.seq + seglen) & 0xFFFFFFFF
        if ack_flag:
            fwd.last_ack, fwd.last_win = pkt.ack, pkt.window
        if fin:
            fwd.fin = True
    return None


@dataclass
class CheckResult:
    problem: str | None
    records: int = 0
    tcp_streams: int = 0
    udp_conversations: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        if self.problem is not None:
            return self.problem
        return (f"OK: {self.records} records, {self.tcp_streams} TCP streams, "
                f"{self.udp_conversations} UDP conversations; headers, checksums and "
                f"sequence numbers consistent")


def check(source: str | os.PathLike[str] | IO[bytes]) -> CheckResult:
    """Check a trace file; the result has the first problem (in file order) or None."""
    try:
        reader = Reader(source)
    except PcapFormatError as err:
        return CheckResult(str(err))
    with reader:
        hdr = reader.header
        if (hdr.version_major, hdr.version_minor) != (fmt.VERSION_MAJOR, fmt.VERSION_MINOR):
            return CheckResult(f"file header: version {hdr.version_major}.{hdr.version_minor}, "
                               f"expected {fmt.VERSION_MAJOR}.{fmt.VERSION_MINOR}")
        packets: list[Packet] = []
        try:
            for pkt in reader:
                bad = packet_problem(pkt, hdr.snaplen)
                if bad:
                    return CheckResult(f"record {pkt.index}: {bad}", pkt.index)
                packets.append(pkt)
        except PcapFormatError as err:
            return CheckResult(str(err), len(packets))
    convs = conversations(packets)
    found = [p for p in (sequence_problem(c) for c in convs if c.proto == "tcp") if p]
    tcp = sum(1 for c in convs if c.proto == "tcp")
    udp = len(convs) - tcp
    if found:
        index, problem = min(found)
        return CheckResult(f"record {index}: {problem}", len(packets), tcp, udp)
    return CheckResult(None, len(packets), tcp, udp)
