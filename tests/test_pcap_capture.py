"""SOCKET_WRAPPER_PCAP_FILE written by the C library, held against cwrap_py.pcap and tshark.

- The equality test: a scripted exchange (tests/pcapsupport.py run as a wrapped Python
  program) logs what it did; cwrap_py.pcap.Writer builds the records for those events;
  the C-written file must hold exactly those records, in order, timestamps aside.
- Real programs (nc, socat), both ends wrapped and writing one file: tshark finds no
  malformed packet and no sequence-analysis flag, `swrap pcap check` finds nothing,
  `tshark -z follow,tcp,raw` gives back both directions byte for byte.
- Many processes into one file, a 10 MiB transfer, a refused connect, an unwritable path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pcapsupport import (
    TSHARK,
    actor_argv,
    diff_multiset,
    diff_records,
    parse_events,
    pattern,
    records,
    replay,
    tshark_findings,
    tshark_follow_raw,
)

from cwrap_py import pcap

if TYPE_CHECKING:
    from conftest import Net

NC = shutil.which("nc")
SOCAT = shutil.which("socat")
needs_nc = pytest.mark.skipif(NC is None, reason="netcat-openbsd (nc) is not installed")
needs_socat = pytest.mark.skipif(SOCAT is None, reason="socat is not installed")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")

SRV4, SRV6 = "127.0.0.10", "fd00::5357:5f0a"
CLIENT_IFACE = 20


def traced(net: Net, iface: int, trace: Path, **extra: str) -> dict[str, str]:
    return net.env(iface, extra={"SOCKET_WRAPPER_PCAP_FILE": str(trace), **extra})


def swrap(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "cwrap_py", *args], capture_output=True,
                          timeout=300, check=False)


def assert_check_ok(trace: Path) -> None:
    res = swrap("pcap", "check", str(trace))
    assert res.returncode == 0, (res.stdout + res.stderr).decode()
    assert b": OK: " in res.stdout


def run_actor(net: Net, trace: Path, steps: list[list[Any]], **extra: str) -> list[dict[str, Any]]:
    res = net.run(actor_argv(steps), traced(net, CLIENT_IFACE, trace, **extra), timeout=60)
    assert res.returncode == 0, res.stderr
    return parse_events(res.stdout.splitlines())


# --------------------------------------------------------------------------- equality


def tcp_steps(fam: str, ip: str, port: int) -> list[list[Any]]:
    """Connect, small request, a reply of several segments, client half-closes first; a
    second connection whose server closes first with data unread by the client (RST); a
    third whose client closes without reading the server's FIN; a refused connect."""
    return [
        ["listen", "L" + fam, fam, ip, port],
        ["tcp", "C" + fam, fam], ["connect", "C" + fam, ip, port], ["accept", "A" + fam, "L" + fam],
        ["send", "C" + fam, 5, 1], ["recv", "A" + fam, 5],
        ["send", "A" + fam, 5000, 2], ["recv", "C" + fam, 5000],
        ["send", "A" + fam, 1, 3], ["recv", "C" + fam, 1],
        ["shutdown", "C" + fam], ["eof", "A" + fam], ["close", "A" + fam],
        ["eof", "C" + fam], ["close", "C" + fam],
        ["tcp", "D" + fam, fam], ["connect", "D" + fam, ip, port], ["accept", "B" + fam, "L" + fam],
        ["send", "D" + fam, 3000, 4], ["recv", "B" + fam, 3000], ["send", "B" + fam, 100, 5],
        ["close", "B" + fam], ["close", "D" + fam],
        ["tcp", "E" + fam, fam], ["connect", "E" + fam, ip, port], ["accept", "F" + fam, "L" + fam],
        ["send", "E" + fam, 10, 6], ["recv", "F" + fam, 10], ["close", "F" + fam],
        ["close", "E" + fam],  # the peer's FIN never read: acknowledged with our FIN
        ["tcp", "R" + fam, fam], ["connect", "R" + fam, ip, port + 1],
        ["close", "L" + fam],
    ]


def udp_steps(fam: str, ip: str, port: int) -> list[list[Any]]:
    return [
        ["udp", "U" + fam, fam, [ip, port]], ["udp", "V" + fam, fam, None],
        ["sendto", "V" + fam, ip, port, 20, 6, False], ["recvfrom", "U" + fam, 20],
        ["sendto", "U" + fam, ip, port, 7, 7, False],  # to itself
        ["recvfrom", "U" + fam, 7],
        ["sendto", "V" + fam, ip, port + 1, 30, 8, True],  # nobody there
        ["sendto", "V" + fam, ip, port + 1, 3000, 9, True],
    ]


MAPPED_AND_BROADCAST: list[list[Any]] = [
    ["listen", "LM", "4", SRV4, 7100],
    ["tcp", "M", "6"], ["connect", "M", "::ffff:" + SRV4, 7100], ["accept", "AM", "LM"],
    ["send", "M", 2000, 10], ["recv", "AM", 2000], ["close", "M"], ["eof", "AM"], ["close", "AM"],
    ["udp", "UB", "4", ["0.0.0.0", 7200]], ["udp", "VB", "4", None], ["broadcast", "VB"],
    ["sendto", "VB", "255.255.255.255", 7200, 20, 11, False], ["recvfrom", "UB", 20],
    ["sendto", "VB", "127.255.255.255", 7200, 20, 12, False], ["recvfrom", "UB", 20],
]


@pytest.mark.parametrize("mtu", [None, "576"])
def test_c_trace_equals_python(net: Net, tmp_path: Path, mtu: str | None) -> None:
    trace = tmp_path / "c.pcap"
    steps = (tcp_steps("4", SRV4, 7000) + tcp_steps("6", SRV6, 7000)
             + udp_steps("4", SRV4, 5300) + udp_steps("6", SRV6, 5300) + MAPPED_AND_BROADCAST)
    extra = {"SOCKET_WRAPPER_MTU": mtu} if mtu else {}
    events = run_actor(net, trace, steps, **extra)
    expected = pcap.Writer(mtu=int(mtu) if mtu else 1500)
    replay(events, expected, CLIENT_IFACE)
    actual = records(trace)
    assert diff_records(actual, expected.packets()) == ""
    assert len(actual) > 80
    assert_check_ok(trace)


def test_ip_tos_and_ipv6_tclass_show_in_the_header(net: Net, tmp_path: Path) -> None:
    trace = tmp_path / "tos.pcap"
    steps: list[list[Any]] = [
        ["listen", "L", "4", SRV4, 7000], ["listen", "L6", "6", SRV6, 7000],
        ["tcp", "C", "4"], ["tos", "C", 0x10], ["connect", "C", SRV4, 7000],
        ["accept", "A", "L"], ["send", "C", 10, 1], ["recv", "A", 10],
        ["tos", "A", 0x20], ["send", "A", 10, 2], ["recv", "C", 10],
        ["tcp", "C6", "6"], ["tos", "C6", 0xB8], ["connect", "C6", SRV6, 7000],
        ["accept", "A6", "L6"], ["send", "C6", 10, 3], ["recv", "A6", 10],
        ["udp", "U", "4", None], ["tos", "U", 0x08], ["sendto", "U", SRV4, 5400, 5, 4, True],
        ["udp", "U6", "6", None], ["tos", "U6", 0x28], ["sendto", "U6", SRV6, 5400, 5, 5, True],
    ]
    events = run_actor(net, trace, steps)
    marks = [(p.version, p.proto, p.tos) for p in pcap.read_packets(trace)]
    assert (4, "tcp", 0x10) in marks, f"IP_TOS 0x10 of the client is not in the header: {marks}"
    assert (4, "tcp", 0x20) in marks, f"IP_TOS 0x20 set after accept is missing: {marks}"
    assert (6, "tcp", 0xB8) in marks, marks
    assert (4, "udp", 0x08) in marks and (6, "udp", 0x28) in marks, marks
    expected = pcap.Writer()
    replay(events, expected, CLIENT_IFACE)
    assert diff_records(records(trace), expected.packets()) == ""


# --------------------------------------------------------------------------- real programs


def both_ends(net: Net, tmp_path: Path, server: str, client: str, server_port_file: str,
              request: bytes, reply: bytes | None, server_rc: tuple[int, ...] = (0,)
              ) -> tuple[Path, bytes, bytes]:
    """Run `server` (iface 10) and `client` (iface 20) shell commands, both traced into one
    file; the server reads $IN and writes $OUT (likewise the client). Returns the trace and
    what the server and the client received."""
    trace = tmp_path / "trace.pcap"
    files = {n: tmp_path / n for n in ("srv.in", "srv.out", "cli.in", "cli.out")}
    files["srv.in"].write_bytes(reply or b"")
    files["cli.in"].write_bytes(request)
    srv = net.start(["sh", "-c", f"exec {server} < {files['srv.in']} > {files['srv.out']}"],
                    traced(net, 10, trace), name="server")
    net.wait_file(server_port_file, proc=srv)
    res = net.run(["sh", "-c", f"exec {client} < {files['cli.in']} > {files['cli.out']}"],
                  traced(net, CLIENT_IFACE, trace), timeout=60)
    assert res.returncode == 0, res.stderr
    assert srv.wait(30) in server_rc, srv.describe()
    return trace, files["srv.out"].read_bytes(), files["cli.out"].read_bytes()


def assert_clean_tcp(trace: Path, request: bytes, reply: bytes, server: str) -> None:
    assert tshark_findings(trace) == []
    assert_check_ok(trace)
    sent_by_client, sent_by_server, node0, node1 = tshark_follow_raw(trace, 0)
    assert node1.endswith(server), (node0, node1)
    assert sent_by_client == request
    assert sent_by_server == reply


@needs_nc
@needs_tshark
@pytest.mark.parametrize(("fam", "ip", "name"), [("4", SRV4, "T0A1B58"),
                                                 ("6", SRV6, "X0A1B58")])
def test_nc_tcp_exchange_is_clean(net: Net, tmp_path: Path, fam: str, ip: str,
                                  name: str) -> None:
    request, reply = pattern(20000, 1), pattern(30000, 2)
    trace, got_srv, got_cli = both_ends(
        net, tmp_path, f"{NC} -{fam} -N -l {ip} 7000", f"{NC} -{fam} -N {ip} 7000", name,
        request, reply)
    assert (got_srv, got_cli) == (request, reply)
    assert_clean_tcp(trace, request, reply, ":7000")


@needs_socat
@needs_tshark
@pytest.mark.parametrize(("fam", "ip", "name"), [("4", SRV4, "T0A1B59"),
                                                 ("6", "[" + SRV6 + "]", "X0A1B59")])
def test_socat_tcp_echo_is_clean(net: Net, tmp_path: Path, fam: str, ip: str,
                                 name: str) -> None:
    request = pattern(50000, 3)
    trace, _, got_cli = both_ends(
        net, tmp_path, f"{SOCAT} TCP{fam}-LISTEN:7001,bind={ip} EXEC:cat",
        f"{SOCAT} -t 5 - TCP{fam}:{ip}:7001", name, request, None)
    assert got_cli == request
    assert_clean_tcp(trace, request, request, ":7001")


@needs_nc
@needs_tshark
@pytest.mark.parametrize(("fam", "ip", "name"), [("4", SRV4, "U0A5BA0"),
                                                 ("6", SRV6, "Y0A5BA0")])
def test_nc_udp_exchange_is_clean(net: Net, tmp_path: Path, fam: str, ip: str,
                                  name: str) -> None:
    request = b"datagram one\ndatagram two\n"
    trace, got_srv, _ = both_ends(
        net, tmp_path, f"timeout 3 {NC} -{fam} -u -l {ip} 23456",
        f"{NC} -{fam} -u -w 1 {ip} 23456", name, request, None, server_rc=(0, 124))
    assert got_srv == request
    assert tshark_findings(trace) == []
    assert_check_ok(trace)
    pkts = pcap.read_packets(trace)
    assert pkts and all(p.proto == "udp" and p.dport == 23456 for p in pkts)
    assert b"".join(p.payload for p in pkts) == request
    assert {p.version for p in pkts} == {int(fam)}


@needs_nc
def test_refused_connect_shows_syn_then_rst(net: Net, tmp_path: Path) -> None:
    trace = tmp_path / "refused.pcap"
    res = net.run([NC or "nc", "-N", SRV4, "7999"], traced(net, CLIENT_IFACE, trace))
    assert res.returncode != 0
    syn, rst = pcap.read_packets(trace)
    client = syn.source
    assert (syn.flags, syn.destination, syn.ack) == (pcap.TCP_SYN, (SRV4, 7999), 0)
    assert syn.seq == pcap.isn(client, (SRV4, 7999))
    assert (rst.flags, rst.source, rst.destination) == (pcap.TCP_RST | pcap.TCP_ACK,
                                                        (SRV4, 7999), client)
    assert (rst.seq, rst.ack) == (0, (syn.seq + 1) & 0xFFFFFFFF)
    assert_check_ok(trace)


@needs_nc
def test_unwritable_trace_path_one_line_and_traffic_goes_on(net: Net, tmp_path: Path) -> None:
    bad = tmp_path / "no-such-dir" / "t.pcap"
    srv = net.start([NC or "nc", "-N", "-l", SRV4, "7000"], traced(net, 10, bad), name="nc -l")
    srv.close_stdin()
    net.wait_file("T0A1B58", proc=srv)
    res = net.run([NC or "nc", "-N", SRV4, "7000"], traced(net, CLIENT_IFACE, bad),
                  input="still works\n")
    assert res.returncode == 0, res.stderr
    assert srv.wait() == 0, srv.describe()
    assert srv.stdout == ["still works"]
    for stderr in (res.stderr.splitlines(), srv.stderr):
        assert len(stderr) == 1, stderr
        assert "SOCKET_WRAPPER_PCAP_FILE" in stderr[0] and str(bad) in stderr[0], stderr
    assert not bad.parent.exists()


def test_empty_existing_file_gets_one_header(net: Net, tmp_path: Path) -> None:
    trace = tmp_path / "empty.pcap"
    trace.touch()
    run_actor(net, trace, udp_steps("4", SRV4, 5300))
    run_actor(net, trace, udp_steps("4", SRV4, 5300))
    data = trace.read_bytes()
    assert data.count(pcap.pack_file_header()) == 1 and data.startswith(pcap.pack_file_header())
    assert len(pcap.read_packets(trace)) == 2 * 6
    assert_check_ok(trace)


# --------------------------------------------------------------------------- load


def _connections(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Events per connection: the client's (from its connect), then the server's.

    A client port may come back for a later connection (same four-tuple): the client's
    events split at each connect, the server's by accept number (cid), paired in order.
    """
    clients: dict[tuple[Any, ...], list[list[dict[str, Any]]]] = defaultdict(list)
    servers: dict[tuple[Any, ...], dict[int, list[dict[str, Any]]]] = defaultdict(dict)
    for ev in events:
        if ev["ev"] == "connect":
            clients[(tuple(ev["client"]), tuple(ev["server"]))].append([ev])
            continue
        me = tuple(ev.get("me") or ev["src"])
        peer = tuple(ev.get("peer") or ev["dst"])
        if "cid" in ev:
            servers[(me, peer)].setdefault(ev["cid"], []).append(ev)
        else:
            clients[(me, peer)][-1].append(ev)
    out = []
    for (client, server), gens in clients.items():
        accepted = [evs for _, evs in sorted(servers[(server, client)].items())]
        assert len(accepted) == len(gens), (client, server)
        out += [c + s for c, s in zip(gens, accepted, strict=True)]
    return out


def test_many_processes_one_file(net: Net, tmp_path: Path) -> None:
    """8 client processes x 1000 exchanges with one threaded server, all into one file:
    every record the rules call for is there exactly once, and the file is valid."""
    procs, per = 8, 1000
    trace = tmp_path / "load.pcap"
    server = net.start(actor_argv([["echo_server", "4", SRV4, 7000, procs * per]]),
                       traced(net, 10, trace), name="server")
    net.wait_file("T0A1B58", proc=server)
    clients = [net.start(actor_argv([["load", "4", SRV4, 7000, per, 100 + i]]),
                         traced(net, CLIENT_IFACE + i, trace), name=f"client{i}")
               for i in range(procs)]
    for c in clients:
        assert c.wait(300) == 0, c.describe()
    assert server.wait(60) == 0, server.describe()
    events = parse_events([line for p in [server, *clients] for line in p.stdout])
    connections = _connections(events)
    assert len(connections) == procs * per
    expected = pcap.Writer()
    for evs in connections:
        replay(evs, expected)
    actual = records(trace)  # parses the whole file: one header, no torn record
    assert len(actual) == len(expected.records)
    assert diff_multiset(actual, expected.packets()) == ""
    assert_check_ok(trace)


@needs_nc
def test_ten_mib_transfer_reassembled_byte_exact(net: Net, tmp_path: Path) -> None:
    data = os.urandom(10 * 1024 * 1024)
    trace, got_srv, _ = both_ends(net, tmp_path, f"{NC} -N -l {SRV4} 7000",
                                  f"{NC} -N {SRV4} 7000", "T0A1B58", data, b"")
    assert got_srv == data
    res = swrap("pcap", "follow", str(trace), "--stream", "0", "--direction", "0")
    assert res.returncode == 0, res.stderr
    assert len(res.stdout) == len(data) and res.stdout == data
    res = swrap("pcap", "follow", str(trace), "--stream", "0", "--direction", "1")
    assert res.stdout == b""


def test_pcap_check_cli_on_c_trace(net: Net, tmp_path: Path) -> None:
    trace = tmp_path / "c.pcap"
    run_actor(net, trace, tcp_steps("4", SRV4, 7000) + udp_steps("6", SRV6, 5300))
    res = swrap("pcap", "summary", "--json", str(trace))
    assert res.returncode == 0, res.stderr
    res = swrap("pcap", "follow", str(trace), "--stream", "0")
    assert res.returncode == 0 and b"Follow: tcp,ascii" in res.stdout
