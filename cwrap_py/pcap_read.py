"""Read a trace: records -> parsed packets, TCP streams and conversations, follow.

The parser is written against the packet formats directly (not dpkt) so that it
can check what the dpkt-based writer and the C library produce.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from cwrap_py import pcap_format as fmt
from cwrap_py.pcap_format import PcapFormatError

Endpoint = tuple[str, int]

PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6"}


@dataclass
class Packet:
    """One record, parsed. ``problem`` is set when the packet cannot be parsed."""

    index: int  # 1-based record number (Wireshark's frame number)
    offset: int  # file offset of the record header
    ts_sec: int
    ts_usec: int
    data: bytes  # the captured packet (link type raw IP)
    orig_len: int
    version: int = 0
    src: str = ""
    dst: str = ""
    proto: str = ""  # tcp, udp, icmp, icmp6 or the protocol number
    ip_proto: int = 0
    tos: int = 0  # IPv4 TOS or IPv6 traffic class
    ttl: int = 0  # IPv4 TTL or IPv6 hop limit
    ip_header_len: int = 0
    l4_offset: int = 0  # offset of the transport header in data
    sport: int = 0
    dport: int = 0
    seq: int = 0
    ack: int = 0
    flags: int = 0
    window: int = 0
    l4_header_len: int = 0
    payload: bytes = b""
    icmp_type: int = -1
    icmp_code: int = -1
    quoted: bytes = b""  # the original packet quoted by an ICMP error
    problem: str = ""

    @property
    def ts(self) -> float:
        return self.ts_sec + self.ts_usec / 1_000_000

    @property
    def source(self) -> Endpoint:
        return self.src, self.sport

    @property
    def destination(self) -> Endpoint:
        return self.dst, self.dport

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)

    def describe(self) -> str:
        """A short one-line description (for messages)."""
        base = f"{endpoint_str(self.source)} > {endpoint_str(self.destination)}"
        if self.proto == "tcp":
            return (f"tcp {base} [{flag_names(self.flags)}] seq={self.seq} ack={self.ack} "
                    f"len={len(self.payload)}")
        if self.proto in ("icmp", "icmp6"):
            return f"{self.proto} {self.src} > {self.dst} type={self.icmp_type} " \
                   f"code={self.icmp_code}"
        return f"{self.proto} {base} len={len(self.payload)}"


def endpoint_str(ep: Endpoint) -> str:
    ip, port = ep
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def flag_names(flags: int) -> str:
    names = [(fmt.TCP_SYN, "SYN"), (fmt.TCP_FIN, "FIN"), (fmt.TCP_RST, "RST"),
             (fmt.TCP_PSH, "PSH"), (fmt.TCP_ACK, "ACK")]
    return "|".join(n for bit, n in names if flags & bit) or "none"


def parse_packet(pkt: Packet) -> Packet:
    """Fill the header fields of pkt from pkt.data; sets pkt.problem when it cannot."""
    data = pkt.data
    if not data:
        pkt.problem = "empty packet"
        return pkt
    pkt.version = data[0] >> 4
    if pkt.version == 4:
        if len(data) < 20:
            pkt.problem = f"IPv4 header truncated ({len(data)} bytes)"
            return pkt
        ihl = (data[0] & 0x0F) * 4
        pkt.ip_header_len = ihl
        pkt.tos, pkt.ttl, pkt.ip_proto = data[1], data[8], data[9]
        pkt.src = str(ipaddress.IPv4Address(data[12:16]))
        pkt.dst = str(ipaddress.IPv4Address(data[16:20]))
        if ihl < 20 or ihl > len(data):
            pkt.problem = f"bad IPv4 header length {ihl}"
            return pkt
        total = struct.unpack_from(">H", data, 2)[0]
        end = min(total, len(data)) if total >= ihl else len(data)
        l4 = data[ihl:end]
        pkt.l4_offset = ihl
    elif pkt.version == 6:
        if len(data) < 40:
            pkt.problem = f"IPv6 header truncated ({len(data)} bytes)"
            return pkt
        pkt.ip_header_len = 40
        word = struct.unpack_from(">I", data, 0)[0]
        pkt.tos = (word >> 20) & 0xFF
        plen = struct.unpack_from(">H", data, 4)[0]
        pkt.ip_proto, pkt.ttl = data[6], data[7]
        pkt.src = str(ipaddress.IPv6Address(data[8:24]))
        pkt.dst = str(ipaddress.IPv6Address(data[24:40]))
        l4 = data[40:40 + plen]
        pkt.l4_offset = 40
    else:
        pkt.problem = f"not an IP packet (version {pkt.version})"
        return pkt
    pkt.proto = PROTO_NAMES.get(pkt.ip_proto, str(pkt.ip_proto))
    if pkt.proto == "tcp":
        if len(l4) < 20:
            pkt.problem = f"TCP header truncated ({len(l4)} bytes)"
            return pkt
        pkt.sport, pkt.dport, pkt.seq, pkt.ack, off_flags, pkt.window = struct.unpack_from(
            ">HHIIHH", l4, 0)
        pkt.l4_header_len = (off_flags >> 12) * 4
        pkt.flags = off_flags & 0x1FF
        if pkt.l4_header_len < 20 or pkt.l4_header_len > len(l4):
            pkt.problem = f"bad TCP data offset {pkt.l4_header_len}"
            return pkt
        pkt.payload = l4[pkt.l4_header_len:]
    elif pkt.proto == "udp":
        if len(l4) < 8:
            pkt.problem = f"UDP header truncated ({len(l4)} bytes)"
            return pkt
        pkt.sport, pkt.dport = struct.unpack_from(">HH", l4, 0)
        pkt.l4_header_len = 8
        pkt.payload = l4[8:]
    elif pkt.proto in ("icmp", "icmp6"):
        if len(l4) < 8:
            pkt.problem = f"{pkt.proto.upper()} header truncated ({len(l4)} bytes)"
            return pkt
        pkt.icmp_type, pkt.icmp_code = l4[0], l4[1]
        pkt.l4_header_len = 8
        pkt.payload = l4[8:]
        errors = (3, 4, 5, 11, 12) if pkt.proto == "icmp" else (1, 2, 3, 4)
        if pkt.icmp_type in errors:
            pkt.quoted = pkt.payload
    return pkt


class Reader:
    """Iterate over the records of a trace file as parsed :class:`Packet` objects.

    ``source`` is a path or a binary file object. File-level damage (bad global
    header, truncated record) raises :class:`PcapFormatError` when reached.
    """

    def __init__(self, source: str | os.PathLike[str] | IO[bytes]) -> None:
        if isinstance(source, (str, os.PathLike)):
            self._file: IO[bytes] = open(source, "rb")  # noqa: SIM115 - closed in close()
            self._owned = True
        else:
            self._file = source
            self._owned = False
        self.header = fmt.parse_file_header(self._file.read(fmt.FILE_HEADER_SIZE))
        if self.header.linktype != fmt.LINKTYPE_RAW:
            raise PcapFormatError(
                f"link type {self.header.linktype} is not supported "
                f"(expected {fmt.LINKTYPE_RAW}, raw IP)"
            )
        self._rec = fmt.record_struct(self.header.byte_order)

    def __iter__(self) -> Iterator[Packet]:
        offset = fmt.FILE_HEADER_SIZE
        index = 0
        read = self._file.read
        rec = self._rec
        while True:
            head = read(rec.size)
            if not head:
                return
            index += 1
            if len(head) < rec.size:
                raise PcapFormatError(
                    f"record {index} at offset {offset}: header truncated "
                    f"({len(head)} of {rec.size} bytes)"
                )
            sec, usec, incl, orig = rec.unpack(head)
            if incl > max(self.header.snaplen, fmt.SNAPLEN):
                raise PcapFormatError(
                    f"record {index} at offset {offset}: captured length {incl} "
                    f"exceeds the snapshot length {self.header.snaplen}"
                )
            data = read(incl)
            if len(data) < incl:
                raise PcapFormatError(
                    f"record {index} at offset {offset}: packet truncated "
                    f"({len(data)} of {incl} bytes)"
                )
            yield parse_packet(Packet(index, offset, sec, usec, data, orig))
            offset += rec.size + incl

    def close(self) -> None:
        if self._owned:
            self._file.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_packets(source: str | os.PathLike[str] | IO[bytes]) -> list[Packet]:
    """All packets of a trace file."""
    with Reader(source) as reader:
        return list(reader)


# --------------------------------------------------------------------------- conversations


@dataclass
class Direction:
    packets: int = 0
    bytes: int = 0  # whole IP packets
    payload: int = 0  # transport payload

    def add(self, pkt: Packet) -> None:
        self.packets += 1
        self.bytes += len(pkt.data)
        self.payload += len(pkt.payload)

    def as_dict(self) -> dict[str, int]:
        return {"packets": self.packets, "bytes": self.bytes, "payload": self.payload}


@dataclass
class Conversation:
    """A TCP connection (one tshark tcp.stream) or a UDP endpoint pair.

    ``a`` is the side that spoke first (the SYN's sender for TCP).
    """

    proto: str
    a: Endpoint
    b: Endpoint
    stream: int = -1  # tcp.stream index (TCP) or udp.stream index (UDP)
    packets: list[Packet] = field(default_factory=list)
    a_to_b: Direction = field(default_factory=Direction)
    b_to_a: Direction = field(default_factory=Direction)
    unreachable: int = 0  # ICMP port unreachable answers (UDP)
    syn: bool = False
    fins: set[Endpoint] = field(default_factory=set)  # senders of a FIN
    reset: bool = False  # RST seen

    @property
    def closed(self) -> bool:
        """Over: a RST, or a FIN each way (a new SYN then starts a new stream)."""
        return self.reset or len(self.fins) == 2

    @property
    def start(self) -> float:
        return self.packets[0].ts if self.packets else 0.0

    @property
    def duration(self) -> float:
        return self.packets[-1].ts - self.packets[0].ts if self.packets else 0.0

    def from_a(self, pkt: Packet) -> bool:
        """Whether pkt goes from a to b."""
        return (pkt.src, pkt.sport) == self.a

    def add(self, pkt: Packet, from_a: bool) -> None:
        self.packets.append(pkt)
        (self.a_to_b if from_a else self.b_to_a).add(pkt)

    def as_dict(self, t0: float = 0.0) -> dict[str, Any]:
        out: dict[str, Any] = {
            "proto": self.proto,
            "stream": self.stream,
            "a": endpoint_str(self.a),
            "b": endpoint_str(self.b),
            "a_to_b": self.a_to_b.as_dict(),
            "b_to_a": self.b_to_a.as_dict(),
            "start": round(self.start - t0, 6),
            "duration": round(self.duration, 6),
        }
        if self.proto == "udp":
            out["unreachable"] = self.unreachable
        return out


def _pair_key(proto: str, x: Endpoint, y: Endpoint) -> tuple[str, Endpoint, Endpoint]:
    lo, hi = sorted((x, y))
    return proto, lo, hi


def conversations(packets: Iterable[Packet]) -> list[Conversation]:
    """TCP streams (numbered as tshark's tcp.stream) and UDP conversations, in order of
    first appearance. ICMP port unreachable errors count with the UDP conversation of the
    datagram they quote."""
    convs: list[Conversation] = []
    current: dict[tuple[str, Endpoint, Endpoint], Conversation] = {}
    counters = {"tcp": 0, "udp": 0}
    for pkt in packets:
        if pkt.problem:
            continue
        if pkt.proto in ("icmp", "icmp6"):
            _add_icmp(pkt, current)
            continue
        if pkt.proto not in ("tcp", "udp"):
            continue
        key = _pair_key(pkt.proto, pkt.source, pkt.destination)
        conv = current.get(key)
        pure_syn = pkt.proto == "tcp" and pkt.flags & (fmt.TCP_SYN | fmt.TCP_ACK) == fmt.TCP_SYN
        if conv is None or (pure_syn and conv.closed):
            conv = Conversation(pkt.proto, pkt.source, pkt.destination, counters[pkt.proto])
            counters[pkt.proto] += 1
            current[key] = conv
            convs.append(conv)
        if pure_syn:
            conv.syn = True
            if pkt.source != conv.a:  # packets of the server came first: the SYN says who is who
                conv.a, conv.b = conv.b, conv.a
                conv.a_to_b, conv.b_to_a = conv.b_to_a, conv.a_to_b
        if pkt.proto == "tcp" and pkt.flags & fmt.TCP_FIN:
            conv.fins.add(pkt.source)
        if pkt.proto == "tcp" and pkt.flags & fmt.TCP_RST:
            conv.reset = True
        conv.add(pkt, conv.from_a(pkt))
    return convs


def _add_icmp(pkt: Packet, current: dict[tuple[str, Endpoint, Endpoint], Conversation]) -> None:
    if not pkt.quoted:
        return
    inner = parse_packet(Packet(0, 0, 0, 0, pkt.quoted, len(pkt.quoted)))
    if inner.proto != "udp" or (inner.problem and not inner.sport):
        return
    conv = current.get(_pair_key("udp", inner.source, inner.destination))
    if conv is None:
        return
    conv.add(pkt, pkt.src == conv.a[0] and pkt.src != conv.b[0])
    conv.unreachable += 1


# --------------------------------------------------------------------------- follow


@dataclass
class Followed:
    """The reassembled payload of one TCP stream, both directions.

    ``chunks`` lists (node, bytes) in the order the data became contiguous, one per
    segment as tshark's follow shows them: node 0 is ``a`` (the client), node 1 is ``b``.
    ``gaps`` counts holes (missing segments).
    """

    stream: int
    a: Endpoint
    b: Endpoint
    data: tuple[bytes, bytes]
    chunks: list[tuple[int, bytes]]
    gaps: tuple[int, int]


class _Assembler:
    def __init__(self) -> None:
        self.base: int | None = None
        self.buf = bytearray()
        self.pending: dict[int, bytes] = {}
        self.gaps = 0

    def syn(self, seq: int) -> None:
        if self.base is None:
            self.base = (seq + 1) & 0xFFFFFFFF

    def add(self, seq: int, payload: bytes) -> bytes:
        """Add one segment; returns the bytes that became contiguous."""
        if not payload:
            return b""
        if self.base is None:
            self.base = seq
        rel = (seq - self.base) & 0xFFFFFFFF
        if rel > len(self.buf):
            self.pending[rel] = max(payload, self.pending.get(rel, b""), key=len)
            return b""
        start = len(self.buf)
        self._extend(rel, payload)
        while self.pending:
            nxt = min(self.pending)
            if nxt > len(self.buf):
                break
            self._extend(nxt, self.pending.pop(nxt))
        return bytes(self.buf[start:])

    def _extend(self, rel: int, payload: bytes) -> None:
        end = rel + len(payload)
        if end > len(self.buf):
            self.buf += payload[len(self.buf) - rel:]

    def finish(self) -> bytes:
        """The data; what comes after a hole (a missing segment) is appended, holes counted."""
        shift = 0
        for rel in sorted(self.pending):
            pos = rel - shift
            if pos > len(self.buf):
                self.gaps += 1
                shift += pos - len(self.buf)
                pos = len(self.buf)
            self._extend(pos, self.pending[rel])
        self.pending.clear()
        return bytes(self.buf)


def follow(conv: Conversation) -> Followed:
    """Reassemble both directions of a TCP conversation (by sequence number)."""
    sides = (_Assembler(), _Assembler())
    chunks: list[tuple[int, bytes]] = []
    for pkt in conv.packets:
        if pkt.proto != "tcp":
            continue
        node = 0 if conv.from_a(pkt) else 1
        asm = sides[node]
        if pkt.flags & fmt.TCP_SYN:
            asm.syn(pkt.seq)
        new = asm.add(pkt.seq, pkt.payload)
        if new:
            chunks.append((node, new))
    data = (sides[0].finish(), sides[1].finish())
    return Followed(conv.stream, conv.a, conv.b, data, chunks, (sides[0].gaps, sides[1].gaps))


def tcp_streams(packets: Iterable[Packet]) -> list[Conversation]:
    return [c for c in conversations(packets) if c.proto == "tcp"]
