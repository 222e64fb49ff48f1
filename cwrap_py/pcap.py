"""The packet trace (SOCKET_WRAPPER_PCAP_FILE): build it, read it, summarise, follow, check.

The format and its constants come from the C header swrap_pcap.h (cffi):
:mod:`cwrap_py.pcap_format`. This module gathers the public API:

- :class:`Writer` (dpkt): the records the C library writes for the same events
  (``tcp_connect``, ``tcp_refused``, ``tcp_send``, ``tcp_recv_ack``, ``tcp_eof``,
  ``tcp_close``, ``udp_send``), see :mod:`cwrap_py.pcap_build`;
- :class:`Reader`: records -> :class:`Packet`; :func:`conversations`, :func:`follow`;
- :func:`summary` / :func:`format_summary`, :func:`follow_text`;
- :func:`check`: the first problem of a trace, as one line.
"""

from __future__ import annotations

import os
from typing import IO, Any

from cwrap_py.pcap_build import (
    Endpoint,
    PcapBuildError,
    TcpSide,
    Writer,
    icmp_port_unreachable,
    isn,
    mss,
    tcp_packet,
    udp_packet,
    wire_address,
)
from cwrap_py.pcap_check import CheckResult, check
from cwrap_py.pcap_format import (
    LINKTYPE_RAW,
    MAGIC,
    SNAPLEN,
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    PcapFormatError,
    fnv1a32,
    pack_file_header,
)
from cwrap_py.pcap_read import (
    Conversation,
    Followed,
    Packet,
    Reader,
    conversations,
    endpoint_str,
    follow,
    read_packets,
    tcp_streams,
)

__all__ = [
    "CheckResult", "Conversation", "Endpoint", "Followed", "LINKTYPE_RAW", "MAGIC", "Packet",
    "PcapBuildError", "PcapFormatError", "Reader", "SNAPLEN", "TCP_ACK", "TCP_FIN", "TCP_PSH",
    "TCP_RST", "TCP_SYN", "TcpSide", "Writer", "check", "conversations", "endpoint_str",
    "fnv1a32", "follow", "follow_text", "format_summary", "icmp_port_unreachable", "isn", "mss",
    "pack_file_header", "read_packets", "summary", "tcp_packet", "tcp_streams", "udp_packet",
    "wire_address",
]

Source = str | os.PathLike[str] | IO[bytes]


def summary(source: Source) -> dict[str, Any]:
    """Records, time span and conversations (TCP streams, UDP pairs) of a trace."""
    packets = read_packets(source)
    convs = conversations(packets)
    t0 = min((p.ts for p in packets), default=0.0)
    t1 = max((p.ts for p in packets), default=0.0)
    return {
        "records": len(packets),
        "first": round(t0, 6),
        "duration": round(t1 - t0, 6),
        "conversations": [c.as_dict(t0) for c in convs],
    }


def format_summary(info: dict[str, Any]) -> str:
    """A table like ``tshark -z conv``: one line per conversation."""
    convs = info["conversations"]
    lines = [f"{info['records']} records, {len(convs)} conversations, "
             f"{info['duration']:.6f} s"]
    if not convs:
        return lines[0]
    width_a = max(len(c["a"]) for c in convs)
    width_b = max(len(c["b"]) for c in convs)
    lines.append(
        f"{'proto':<5} {'#':>4}  {'A':<{width_a}}     {'B':<{width_b}}  "
        f"{'A->B pkts':>9} {'bytes':>10} {'data':>10}  {'B->A pkts':>9} {'bytes':>10} "
        f"{'data':>10}  {'start':>10} {'duration':>10}"
    )
    for c in convs:
        ab, ba = c["a_to_b"], c["b_to_a"]
        extra = f"  unreachable {c['unreachable']}" if c.get("unreachable") else ""
        lines.append(
            f"{c['proto']:<5} {c['stream']:>4}  {c['a']:<{width_a}} <-> {c['b']:<{width_b}}  "
            f"{ab['packets']:>9} {ab['bytes']:>10} {ab['payload']:>10}  "
            f"{ba['packets']:>9} {ba['bytes']:>10} {ba['payload']:>10}  "
            f"{c['start']:>10.6f} {c['duration']:>10.6f}{extra}"
        )
    return "\n".join(lines)


def _printable(data: bytes) -> str:
    """As tshark's ascii follow: printable ASCII, CR and LF kept, the rest as '.'."""
    return "".join(chr(b) if 32 <= b < 127 or b in (10, 13) else "." for b in data)


def follow_text(f: Followed, mode: str = "ascii") -> str:
    """One stream in the layout of ``tshark -z follow,tcp,MODE,N`` (ascii or raw)."""
    sep = "=" * 67
    lines = ["", sep, f"Follow: tcp,{mode}", f"Filter: tcp.stream eq {f.stream}",
             f"Node 0: {endpoint_str(f.a)}", f"Node 1: {endpoint_str(f.b)}"]
    for node, data in f.chunks:
        indent = "\t" if node else ""
        if mode == "raw":
            lines.append(indent + data.hex())
        else:
            lines.append(f"{indent}{len(data)}")
            lines.append(_printable(data))
    lines.append(sep)
    return "\n".join(lines)
