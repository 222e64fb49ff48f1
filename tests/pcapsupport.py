"""Helpers of the trace tests, and a scripted socket program (run as a script).

As a script (``python pcapsupport.py STEPS_JSON``), under the preload, it runs the
steps of a scenario on real sockets and prints one JSON line per trace event with the
addresses and byte counts it actually saw. :func:`replay` feeds those events to
``cwrap_py.pcap.Writer``, which then holds the records the C library should have
written. Only the standard library is imported at module level: the script runs
inside wrapped processes.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import termios
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

TSHARK = shutil.which("tshark")
HERE = Path(__file__).resolve()

# Expert / analysis findings that a clean exchange must not show.
FORBIDDEN_EXPERT = re.compile(
    r"malformed|previous segment|retransmission|duplicate ack|dup ack|out-of-order"
    r"|wasn't captured|zero ?window probe|keep-alive",
    re.IGNORECASE,
)
ANALYSIS_FILTER = (
    "tcp.analysis.retransmission || tcp.analysis.fast_retransmission || "
    "tcp.analysis.spurious_retransmission || tcp.analysis.duplicate_ack || "
    "tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment || "
    "tcp.analysis.out_of_order || _ws.malformed || _ws.expert.severity >= error"
)


# --------------------------------------------------------------------------- the script


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-looking payload bytes."""
    out = bytearray()
    x = (seed * 2654435761 + 12345) & 0xFFFFFFFF
    while len(out) < size:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out += x.to_bytes(4, "big")
    return bytes(out[:size])


def _fam(name: str) -> socket.AddressFamily:
    return socket.AF_INET6 if name == "6" else socket.AF_INET


def _ep(addr: Any) -> list[Any]:
    return [addr[0], addr[1]]


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the peer's FIN is waiting (a peeking, non-blocking read sees EOF)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False


def _set_tos(sock: socket.socket, value: int) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, value)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, value)


class Actor:
    """Runs steps on named sockets; emits events as JSON lines."""

    def __init__(self) -> None:
        self.socks: dict[str, socket.socket] = {}
        self.tos: dict[str, int] = {}
        self.lock = threading.Lock()

    def emit(self, **ev: Any) -> None:
        line = json.dumps(ev)
        with self.lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def echo_one(self, conn: socket.socket, cid: int) -> None:
        """Echo until EOF, then close (one thread per connection; cid = accept number)."""
        local, peer = _ep(conn.getsockname()), _ep(conn.getpeername())
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                self.emit(ev="eof", me=local, peer=peer, cid=cid)
                break
            self.emit(ev="recv", me=local, peer=peer, n=len(chunk), cid=cid)
            view = memoryview(chunk)
            while view:
                n = conn.send(view)
                self.emit(ev="send", src=local, dst=peer, data=bytes(view[:n]).hex(), cid=cid)
                view = view[n:]
        self.emit(ev="close", me=local, peer=peer, unread=False, cid=cid)
        conn.close()

    def echo_server(self, fam: str, ip: str, port: int, count: int) -> None:
        lsock = socket.socket(_fam(fam), socket.SOCK_STREAM)
        lsock.bind((ip, port))
        lsock.listen(512)
        threads = []
        for cid in range(count):
            conn, _ = lsock.accept()
            t = threading.Thread(target=self.echo_one, args=(conn, cid))
            t.start()
            threads.append(t)
            if len(threads) > 64:
                threads.pop(0).join()
        for t in threads:
            t.join()
        lsock.close()

    def load(self, fam: str, ip: str, port: int, count: int, seed: int) -> None:
        """count exchanges: connect, send a request, read the echo, close."""
        for i in range(count):
            s = socket.socket(_fam(fam), socket.SOCK_STREAM)
            s.connect((ip, port))
            local, peer = _ep(s.getsockname()), _ep(s.getpeername())
            self.emit(ev="connect", client=local, server=peer, tos=0)
            data = pattern(50 + (seed * 7 + i) % 200, seed * 100000 + i)
            s.sendall(data)
            self.emit(ev="send", src=local, dst=peer, data=data.hex())
            got = 0
            while got < len(data):
                n = len(s.recv(len(data) - got))
                if n == 0:
                    raise SystemExit("early EOF")
                got += n
                self.emit(ev="recv", me=local, peer=peer, n=n)
            self.emit(ev="close", me=local, peer=peer, unread=False)
            s.close()

    def ends(self, name: str) -> tuple[list[Any], list[Any]]:
        s = self.socks[name]
        return _ep(s.getsockname()), _ep(s.getpeername())

    def step(self, op: str, *args: Any) -> None:  # noqa: C901 - a dispatcher
        if op == "echo_server":
            self.echo_server(*args)
        elif op == "load":
            self.load(*args)
        elif op == "listen":
            name, fam, ip, port = args
            s = socket.socket(_fam(fam), socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip, port))
            s.listen(64)
            self.socks[name] = s
        elif op == "tcp":
            name, fam = args
            self.socks[name] = socket.socket(_fam(fam), socket.SOCK_STREAM)
        elif op == "tos":
            name, value = args
            _set_tos(self.socks[name], value)
            self.tos[name] = value
            try:
                local, peer = self.ends(name)
            except OSError:
                return  # not connected yet: the value goes with the connect event
            self.emit(ev="tos", local=local, peer=peer, tos=value)
        elif op == "connect":
            name, ip, port = args
            s = self.socks[name]
            try:
                s.connect((ip, port))
            except ConnectionRefusedError:
                self.emit(ev="refused", client=_ep(s.getsockname()), server=[ip, port],
                          tos=self.tos.get(name, 0))
                return
            local, peer = self.ends(name)
            self.emit(ev="connect", client=local, server=peer, tos=self.tos.get(name, 0))
        elif op == "accept":
            name, listener = args
            conn, _ = self.socks[listener].accept()
            self.socks[name] = conn
        elif op == "send":
            name, size, seed = args
            data = pattern(size, seed)
            local, peer = self.ends(name)
            s = self.socks[name]
            view = memoryview(data)
            while view:
                n = s.send(view)
                self.emit(ev="send", src=local, dst=peer, data=bytes(view[:n]).hex())
                view = view[n:]
        elif op == "recv":
            name, total = args
            local, peer = self.ends(name)
            got = 0
            while got < total:
                chunk = self.socks[name].recv(total - got)
                if not chunk:
                    raise SystemExit(f"{name}: EOF after {got} of {total} bytes")
                got += len(chunk)
                self.emit(ev="recv", me=local, peer=peer, n=len(chunk))
        elif op == "eof":
            (name,) = args
            local, peer = self.ends(name)
            if self.socks[name].recv(100) != b"":
                raise SystemExit(f"{name}: data where EOF was expected")
            self.emit(ev="eof", me=local, peer=peer)
        elif op == "shutdown":
            (name,) = args
            local, peer = self.ends(name)
            closed = _peer_closed(self.socks[name])
            self.socks[name].shutdown(socket.SHUT_WR)
            self.emit(ev="close", me=local, peer=peer, unread=False, peer_closed=closed)
        elif op == "close":
            (name,) = args
            s = self.socks.pop(name)
            try:
                local, peer = _ep(s.getsockname()), _ep(s.getpeername())
            except OSError:
                s.close()  # a listener or unconnected socket: no TCP event
                return
            if s.type == socket.SOCK_STREAM:
                buf = fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0")
                unread = struct.unpack("i", buf)[0] > 0
                self.emit(ev="close", me=local, peer=peer, unread=unread,
                          peer_closed=not unread and _peer_closed(s))
            s.close()
        elif op == "udp":
            name, fam, bind = args
            s = socket.socket(_fam(fam), socket.SOCK_DGRAM)
            if bind:
                s.bind(tuple(bind))
            self.socks[name] = s
        elif op == "broadcast":
            (name,) = args
            self.socks[name].setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        elif op == "sendto":
            name, ip, port, size, seed, unreachable = args
            s = self.socks[name]
            data = pattern(size, seed)
            n = s.sendto(data, (ip, port))
            assert n == len(data)
            self.emit(ev="udp", src=_ep(s.getsockname()), dst=[ip, port], data=data.hex(),
                      unreachable=unreachable, tos=self.tos.get(name, 0))
        elif op == "recvfrom":
            name, size = args
            data, _ = self.socks[name].recvfrom(65536)
            if len(data) != size:
                raise SystemExit(f"{name}: datagram of {len(data)} bytes, expected {size}")
        else:
            raise SystemExit(f"unknown step {op}")


def main(argv: Sequence[str]) -> int:
    steps = json.loads(argv[0])
    actor = Actor()
    for step in steps:
        actor.step(*step)
    # Leave without closing what the steps left open: the interpreter's own clean-up would
    # close sockets (and record FINs) in an order no step asked for.
    sys.stdout.flush()
    os._exit(0)


# --------------------------------------------------------------------------- test helpers


def actor_argv(steps: Sequence[Sequence[Any]]) -> list[str]:
    return [sys.executable, str(HERE), json.dumps(steps)]


def parse_events(lines: Iterable[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def replay(events: Iterable[dict[str, Any]], writer: Any, iface: int = 1) -> None:
    """Feed actor events to a cwrap_py.pcap.Writer, in order.

    A wildcard local address (an implicitly bound UDP socket reports 0.0.0.0 or ::, as
    the kernel does) stands for the default interface ``iface``: packets carry that.
    """
    concrete = {"0.0.0.0": f"127.0.0.{iface}", "::": f"fd00::5357:5f{iface:02x}"}

    def _t(ep: Sequence[Any]) -> tuple[str, int]:
        return concrete.get(str(ep[0]), str(ep[0])), int(ep[1])

    for ev in events:
        kind = ev["ev"]
        if kind == "connect":
            writer.tcp_connect(_t(ev["client"]), _t(ev["server"]), tos=ev.get("tos", 0))
        elif kind == "refused":
            writer.tcp_refused(_t(ev["client"]), _t(ev["server"]), tos=ev.get("tos", 0))
        elif kind == "tos":
            writer.set_options(_t(ev["local"]), _t(ev["peer"]), tos=ev["tos"])
        elif kind == "send":
            writer.tcp_send(_t(ev["src"]), _t(ev["dst"]), bytes.fromhex(ev["data"]))
        elif kind == "recv":
            writer.tcp_recv_ack(_t(ev["me"]), _t(ev["peer"]), ev["n"])
        elif kind == "eof":
            writer.tcp_eof(_t(ev["me"]), _t(ev["peer"]))
        elif kind == "close":
            writer.tcp_close(_t(ev["me"]), _t(ev["peer"]), unread=ev["unread"],
                             peer_closed=ev.get("peer_closed", False))
        elif kind == "udp":
            writer.udp_send(_t(ev["src"]), _t(ev["dst"]), bytes.fromhex(ev["data"]),
                            unreachable=ev["unreachable"], tos=ev.get("tos", 0))
        else:
            raise ValueError(f"unknown event {kind}")


def records(path: str | os.PathLike[str]) -> list[bytes]:
    """The packets of a trace file, timestamps aside."""
    from cwrap_py import pcap

    return [p.data for p in pcap.read_packets(path)]


def describe_bytes(data: bytes) -> str:
    from cwrap_py import pcap_read

    pkt = pcap_read.parse_packet(pcap_read.Packet(0, 0, 0, 0, data, len(data)))
    return f"{pkt.describe()} tos={pkt.tos} ttl={pkt.ttl}\n    {data.hex()}"


def diff_records(actual: Sequence[bytes], expected: Sequence[bytes]) -> str:
    """'' if equal, else the first differing record, both versions in hex."""
    for i, (a, e) in enumerate(zip(actual, expected, strict=False)):
        if a != e:
            return (f"record {i + 1} differs:\n  C:      {describe_bytes(a)}\n"
                    f"  Python: {describe_bytes(e)}")
    if len(actual) != len(expected):
        longer, who = (actual, "C") if len(actual) > len(expected) else (expected, "Python")
        extra = longer[min(len(actual), len(expected))]
        return (f"C wrote {len(actual)} records, Python built {len(expected)}; first extra "
                f"({who}): {describe_bytes(extra)}")
    return ""


def diff_multiset(actual: Sequence[bytes], expected: Sequence[bytes]) -> str:
    """'' if both hold the same records (any order), else a sample of the difference."""
    ca, ce = Counter(actual), Counter(expected)
    if ca == ce:
        return ""
    missing = list((ce - ca).elements())
    extra = list((ca - ce).elements())
    out = [f"C wrote {len(actual)} records, Python built {len(expected)}; "
           f"{len(missing)} expected records missing, {len(extra)} unexpected"]
    out += [f"  missing: {describe_bytes(r)}" for r in missing[:3]]
    out += [f"  unexpected: {describe_bytes(r)}" for r in extra[:3]]
    return "\n".join(out)


def tshark_bytes(*args: str, timeout: float = 120) -> bytes:
    """tshark's standard output as is (unwrapped, bounded wait)."""
    assert TSHARK is not None
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("SOCKET_WRAPPER_")}
    res = subprocess.run([TSHARK, *args], capture_output=True, timeout=timeout, env=env,
                         check=False)
    assert res.returncode == 0, f"tshark {' '.join(args)} failed: {res.stderr!r}"
    return res.stdout


def tshark(*args: str, timeout: float = 120) -> str:
    return tshark_bytes(*args, timeout=timeout).decode("utf-8", "replace")


def tshark_findings(path: str | os.PathLike[str]) -> list[str]:
    """Expert lines and analysis-flagged frames a clean exchange must not have."""
    expert = tshark("-r", str(path), "-q", "-z", "expert")
    bad = [line.strip() for line in expert.splitlines() if FORBIDDEN_EXPERT.search(line)]
    flagged = tshark("-r", str(path), "-Y", ANALYSIS_FILTER)
    bad += [line.strip() for line in flagged.splitlines() if line.strip()]
    return bad


def tshark_follow_raw(path: str | os.PathLike[str], stream: int) -> tuple[bytes, bytes, str, str]:
    """Both directions of `-z follow,tcp,raw,N`: (node 0 data, node 1 data, node 0, node 1)."""
    out = tshark("-r", str(path), "-q", "-z", f"follow,tcp,raw,{stream}")
    data = [bytearray(), bytearray()]
    nodes = ["", ""]
    for line in out.splitlines():
        if line.startswith("Node 0: "):
            nodes[0] = line[8:]
        elif line.startswith("Node 1: "):
            nodes[1] = line[8:]
        elif re.fullmatch(r"\t?[0-9a-f]+", line):
            data[1 if line.startswith("\t") else 0] += bytes.fromhex(line.strip())
    return bytes(data[0]), bytes(data[1]), nodes[0], nodes[1]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
