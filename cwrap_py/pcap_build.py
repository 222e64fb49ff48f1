"""Build the trace the C library writes, with dpkt: packets and the events of the rules.

Endpoints are ``(ip_string, port)``. An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``)
stands for the IPv4 address: such a socket talks IPv4 on the wire.

The :class:`Writer` keeps, per TCP connection and side, the sequence numbers of the
rules (``my_seq``, ``peer_seq``) and turns socket events into records::

    w = Writer("trace.pcap")
    w.tcp_connect(("127.0.0.20", 40000), ("127.0.0.10", 7))   # SYN, SYN|ACK, ACK
    w.tcp_send(("127.0.0.20", 40000), ("127.0.0.10", 7), b"hello")
    w.tcp_recv_ack(("127.0.0.10", 7), ("127.0.0.20", 40000), 5)
    w.close()
"""

from __future__ import annotations

import ipaddress
import os
import struct
import time
from dataclasses import dataclass
from typing import BinaryIO

import dpkt

from cwrap_py import pcap_format as fmt

Endpoint = tuple[str, int]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

IP_PROTO_ICMP = 1
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
IP_PROTO_ICMP6 = 58
IPV4_DF = 0x4000
ICMP6_UNREACH_PORT = 4  # ICMPv6 destination unreachable: port unreachable
MTU_DEFAULT = 1500


class PcapBuildError(ValueError):
    """An event that the rules cannot turn into records (unknown connection, bad address)."""


def wire_address(ip: str | IPAddress) -> IPAddress:
    """The address as it appears in packets (v4-mapped IPv6 -> IPv4)."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _wire(ep: Endpoint) -> tuple[IPAddress, int]:
    ip, port = ep
    if not 0 <= port <= 0xFFFF:
        raise PcapBuildError(f"port {port} out of range")
    return wire_address(ip), port


def _pair(src: Endpoint, dst: Endpoint) -> tuple[IPAddress, int, IPAddress, int]:
    sip, sport = _wire(src)
    dip, dport = _wire(dst)
    if sip.version != dip.version:
        raise PcapBuildError(f"{src} and {dst} are not of one address family")
    return sip, sport, dip, dport


def isn(a: Endpoint, b: Endpoint) -> int:
    """Initial sequence number of the direction a -> b (FNV-1a-32 of the endpoints)."""
    aip, aport, bip, bport = _pair(a, b)
    return fmt.fnv1a32(aip.packed + struct.pack(">H", aport) + bip.packed
                       + struct.pack(">H", bport))


def mss(mtu: int, ip_version: int) -> int:
    """Largest TCP payload of one segment for this MTU."""
    return mtu - (fmt.IPV4_OVERHEAD if ip_version == 4 else fmt.IPV6_OVERHEAD)


def _ip(
    sip: IPAddress, dip: IPAddress, proto: int, l4: dpkt.Packet, tos: int, ttl: int, df: bool
) -> bytes:
    """An IPv4 or IPv6 packet around l4, every checksum computed (dpkt)."""
    if sip.version == 4:
        pkt4 = dpkt.ip.IP(src=sip.packed, dst=dip.packed, p=proto, tos=tos, ttl=ttl, id=0,
                          data=l4)
        pkt4.df = 1 if df else 0
        pkt4.len = len(pkt4)
        return bytes(pkt4)
    pkt6 = dpkt.ip6.IP6(src=sip.packed, dst=dip.packed, nxt=proto, hlim=ttl, plen=len(l4),
                        data=l4)
    pkt6.fc = tos
    pkt6.flow = 0
    out = bytes(pkt6)  # computes the upper-layer checksum with the pseudo-header
    if proto == IP_PROTO_UDP and l4.sum == 0:  # RFC 768/8200: zero is sent as all ones
        l4.sum = 0xFFFF
        out = bytes(pkt6)
    return out


def tcp_packet(
    src: Endpoint, dst: Endpoint, seq: int, ack: int, flags: int, payload: bytes = b"",
    *, tos: int = 0, ttl: int = fmt.TTL,
) -> bytes:
    """One TCP segment: 20-byte header, no options, window SWRAP_PCAP_TCP_WINDOW."""
    sip, sport, dip, dport = _pair(src, dst)
    seg = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF,
                       win=fmt.TCP_WINDOW, data=payload)
    seg.off = 5
    seg.flags = flags
    return _ip(sip, dip, IP_PROTO_TCP, seg, tos, ttl, df=True)


def udp_packet(
    src: Endpoint, dst: Endpoint, data: bytes, *, tos: int = 0, ttl: int = fmt.TTL
) -> bytes:
    """One UDP datagram (8-byte header with checksum)."""
    sip, sport, dip, dport = _pair(src, dst)
    dgram = dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(data), data=data)
    return _ip(sip, dip, IP_PROTO_UDP, dgram, tos, ttl, df=True)


def icmp_port_unreachable(original: bytes) -> bytes:
    """The ICMP (v4: 3/3) or ICMPv6 (1/4) port unreachable answering ``original``.

    It goes from the original destination back to its source; IPv4 quotes the
    original IP header and 8 bytes of payload, IPv6 as much of the original packet
    as keeps the error within SWRAP_PCAP_ICMP6_MAX bytes.
    """
    version = original[0] >> 4
    if version == 4:
        ihl = (original[0] & 0x0F) * 4
        sip = ipaddress.IPv4Address(original[16:20])
        dip = ipaddress.IPv4Address(original[12:16])
        unreach = dpkt.icmp.ICMP.Unreach(data=original[:ihl + 8])
        msg = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_UNREACH, code=dpkt.icmp.ICMP_UNREACH_PORT,
                             data=unreach)
        return _ip(sip, dip, IP_PROTO_ICMP, msg, 0, fmt.TTL, df=False)
    if version == 6:
        sip6 = ipaddress.IPv6Address(original[24:40])
        dip6 = ipaddress.IPv6Address(original[8:24])
        room = fmt.ICMP6_MAX - 40 - 8
        unreach6 = dpkt.icmp6.ICMP6.Unreach(data=original[:room])
        msg6 = dpkt.icmp6.ICMP6(type=dpkt.icmp6.ICMP6_DST_UNREACH,
                                code=ICMP6_UNREACH_PORT, data=unreach6)
        return _ip(sip6, dip6, IP_PROTO_ICMP6, msg6, 0, fmt.TTL, df=False)
    raise PcapBuildError(f"not an IP packet (version {version})")


@dataclass
class TcpSide:
    """One socket's view of a connection: the rules' my_seq / peer_seq and options."""

    local: Endpoint
    peer: Endpoint
    my_seq: int
    peer_seq: int
    tos: int = 0
    ttl: int = fmt.TTL
    eof: bool = False  # EOF received (the peer's FIN counted in peer_seq)
    closed: bool = False  # FIN or RST sent (shutdown(SHUT_WR) or last close)


def _ts_split(ts: float | None) -> tuple[int, int]:
    micros = round((time.time() if ts is None else ts) * 1_000_000)
    return micros // 1_000_000, micros % 1_000_000


def _key(local: Endpoint, peer: Endpoint) -> tuple[Endpoint, Endpoint]:
    lip, lport, pip, pport = _pair(local, peer)
    return (str(lip), lport), (str(pip), pport)


class Writer:
    """A trace file built by the rules of swrap_pcap.h / pcap_spec.

    ``file`` is a path (opened O_APPEND; the global header is written when the file
    is empty), a binary file object (the header is written at once), or None (the
    records are only kept in memory). Every record is also kept in ``records`` as
    ``(ts_sec, ts_usec, packet)``.

    Packets a socket sends carry that socket's TOS / traffic class and TTL / hop
    limit (``tos``/``ttl`` of the call that created the side, changed with
    :meth:`set_options`); packets recorded on behalf of the other end's kernel
    (SYN|ACK, the RST of a refused connect, the ACK of our FIN) and ICMP errors carry
    TOS 0 and TTL 64, as the C library writes them (it cannot know the peer's options).
    """

    def __init__(
        self,
        file: str | os.PathLike[str] | BinaryIO | None = None,
        *,
        mtu: int = MTU_DEFAULT,
        linktype: int = fmt.LINKTYPE_RAW,
        snaplen: int = fmt.SNAPLEN,
    ) -> None:
        self.mtu = mtu
        self.records: list[tuple[int, int, bytes]] = []
        self.tcp: dict[tuple[Endpoint, Endpoint], TcpSide] = {}
        self._fd: int | None = None
        self._fileobj: BinaryIO | None = None
        header = fmt.pack_file_header(linktype=linktype, snaplen=snaplen)
        if file is None:
            return
        if isinstance(file, (str, os.PathLike)):
            self._fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                               0o644)
            if os.fstat(self._fd).st_size == 0:
                os.write(self._fd, header)
        else:
            self._fileobj = file
            file.write(header)

    # ------------------------------------------------------------------ records

    def write(self, packet: bytes, ts: float | None = None) -> bytes:
        """Append one record (incl_len = orig_len = len(packet)); returns the packet."""
        sec, usec = _ts_split(ts)
        self.records.append((sec, usec, packet))
        data = fmt.pack_record_header(sec, usec, len(packet)) + packet
        if self._fd is not None:
            os.write(self._fd, data)  # one write per record on an O_APPEND fd
        elif self._fileobj is not None:
            self._fileobj.write(data)
        return packet

    def packets(self) -> list[bytes]:
        """The packets written so far, in order, without timestamps."""
        return [pkt for _, _, pkt in self.records]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._fileobj is not None:
            self._fileobj.flush()
            self._fileobj = None

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ TCP

    def side(self, local: Endpoint, peer: Endpoint) -> TcpSide:
        """The state of the socket ``local`` connected to ``peer``."""
        try:
            return self.tcp[_key(local, peer)]
        except KeyError:
            raise PcapBuildError(f"no TCP connection {local} -> {peer}") from None

    def set_options(
        self, local: Endpoint, peer: Endpoint, *, tos: int | None = None, ttl: int | None = None
    ) -> None:
        """setsockopt(IP_TOS / IPV6_TCLASS, IP_TTL / IPV6_UNICAST_HOPS) on a connected side."""
        s = self.side(local, peer)
        if tos is not None:
            s.tos = tos
        if ttl is not None:
            s.ttl = ttl

    def _tcp(self, src: Endpoint, dst: Endpoint, seq: int, ack: int, flags: int,
             payload: bytes, tos: int, ttl: int, ts: float | None) -> bytes:
        return self.write(tcp_packet(src, dst, seq, ack, flags, payload, tos=tos, ttl=ttl), ts)

    def tcp_connect(
        self, client: Endpoint, server: Endpoint, ts: float | None = None, *,
        tos: int = 0, ttl: int = fmt.TTL, server_tos: int = 0, server_ttl: int = fmt.TTL,
        peer_tos: int = 0, peer_ttl: int = fmt.TTL,
    ) -> list[bytes]:
        """Rule 1: SYN, SYN|ACK, ACK; both sides become connected.

        tos/ttl are the client socket's, server_tos/server_ttl the accepted socket's;
        the SYN|ACK (recorded by the client for the server's kernel) carries
        peer_tos/peer_ttl.
        """
        c_isn, s_isn = isn(client, server), isn(server, client)
        ptos, pttl = peer_tos, peer_ttl
        out = [
            self._tcp(client, server, c_isn, 0, fmt.TCP_SYN, b"", tos, ttl, ts),
            self._tcp(server, client, s_isn, c_isn + 1, fmt.TCP_SYN | fmt.TCP_ACK, b"",
                      ptos, pttl, ts),
            self._tcp(client, server, c_isn + 1, s_isn + 1, fmt.TCP_ACK, b"", tos, ttl, ts),
        ]
        ck, sk = _key(client, server), _key(server, client)
        self.tcp[ck] = TcpSide(ck[0], ck[1], (c_isn + 1) & 0xFFFFFFFF,
                               (s_isn + 1) & 0xFFFFFFFF, tos, ttl)
        self.tcp[sk] = TcpSide(sk[0], sk[1], (s_isn + 1) & 0xFFFFFFFF,
                               (c_isn + 1) & 0xFFFFFFFF, server_tos, server_ttl)
        return out

    def tcp_refused(
        self, client: Endpoint, server: Endpoint, ts: float | None = None, *,
        tos: int = 0, ttl: int = fmt.TTL, peer_tos: int = 0, peer_ttl: int = fmt.TTL,
    ) -> list[bytes]:
        """Rule 2: SYN, then RST|ACK (seq 0) from the server."""
        c_isn = isn(client, server)
        return [
            self._tcp(client, server, c_isn, 0, fmt.TCP_SYN, b"", tos, ttl, ts),
            self._tcp(server, client, 0, c_isn + 1, fmt.TCP_RST | fmt.TCP_ACK, b"",
                      peer_tos, peer_ttl, ts),
        ]

    def tcp_send(
        self, src: Endpoint, dst: Endpoint, data: bytes, mtu: int | None = None,
        ts: float | None = None,
    ) -> list[bytes]:
        """Rule 3: data in segments of at most MSS; PSH on the last one of the call."""
        s = self.side(src, dst)
        size = mss(self.mtu if mtu is None else mtu, wire_address(s.local[0]).version)
        chunks = [data[i:i + size] for i in range(0, len(data), size)]
        out = []
        for i, chunk in enumerate(chunks):
            flags = fmt.TCP_ACK | (fmt.TCP_PSH if i == len(chunks) - 1 else 0)
            out.append(self._tcp(s.local, s.peer, s.my_seq, s.peer_seq, flags, chunk,
                                 s.tos, s.ttl, ts))
            s.my_seq = (s.my_seq + len(chunk)) & 0xFFFFFFFF
        return out

    def tcp_recv_ack(
        self, me: Endpoint, peer: Endpoint, n: int, ts: float | None = None
    ) -> list[bytes]:
        """Rule 4: a receive of n > 0 bytes is acknowledged."""
        if n <= 0:
            return []
        s = self.side(me, peer)
        s.peer_seq = (s.peer_seq + n) & 0xFFFFFFFF
        return [self._tcp(s.local, s.peer, s.my_seq, s.peer_seq, fmt.TCP_ACK, b"", s.tos,
                          s.ttl, ts)]

    def tcp_eof(self, me: Endpoint, peer: Endpoint, ts: float | None = None) -> list[bytes]:
        """Rule 5: the first EOF received counts the peer's FIN; no record (the peer's
        kernel ACK of a FIN is recorded with the FIN, rule 6)."""
        s = self.side(me, peer)
        if not s.eof:
            s.eof = True
            s.peer_seq = (s.peer_seq + 1) & 0xFFFFFFFF
        return []

    def tcp_close(
        self, me: Endpoint, peer: Endpoint, ts: float | None = None, *, unread: bool = False,
        peer_closed: bool = False, peer_tos: int = 0, peer_ttl: int = fmt.TTL,
    ) -> list[bytes]:
        """Rule 6: shutdown(SHUT_WR/SHUT_RDWR) or last close, once.

        FIN|ACK, then the peer kernel's immediate ACK of it (TOS 0, TTL 64); with
        ``unread`` data left in the socket, RST|ACK instead of both. ``peer_closed``: the
        peer's FIN is waiting unread (EOF not received yet), so rule 5 applies first.
        """
        s = self.side(me, peer)
        if s.closed:
            return []
        s.closed = True
        if peer_closed and not unread:
            self.tcp_eof(me, peer, ts)
        if unread:
            return [self._tcp(s.local, s.peer, s.my_seq, s.peer_seq, fmt.TCP_RST | fmt.TCP_ACK,
                              b"", s.tos, s.ttl, ts)]
        out = [self._tcp(s.local, s.peer, s.my_seq, s.peer_seq, fmt.TCP_FIN | fmt.TCP_ACK,
                         b"", s.tos, s.ttl, ts)]
        s.my_seq = (s.my_seq + 1) & 0xFFFFFFFF
        out.append(self._tcp(s.peer, s.local, s.peer_seq, s.my_seq, fmt.TCP_ACK, b"",
                             peer_tos, peer_ttl, ts))
        return out

    tcp_shutdown = tcp_close

    # ------------------------------------------------------------------ UDP

    def udp_send(
        self, src: Endpoint, dst: Endpoint, data: bytes, *, unreachable: bool = False,
        tos: int = 0, ttl: int = fmt.TTL, ts: float | None = None,
    ) -> list[bytes]:
        """UDP rules 1-2: the datagram, then ICMP port unreachable if nobody is bound."""
        pkt = self.write(udp_packet(src, dst, data, tos=tos, ttl=ttl), ts)
        if not unreachable:
            return [pkt]
        return [pkt, self.write(icmp_port_unreachable(pkt), ts)]

