"""Issue 5: wrapped sockets that move between processes (SCM_RIGHTS, exec).

- a pre-fork server: the parent accepts on 127.0.0.10:80 and hands each connection to one
  of 4 workers over socketpairs; 200 clients on interfaces 20..29;
- limits: SCM_MAX_FD (253) fds in one message, wrapped and ordinary mixed, several
  SCM_RIGHTS control messages; MSG_CTRUNC without leaked fds or records;
- a receiver without the wrapper gets a working Unix socket and nothing else;
- inheritance across exec: a supervisor's listening socket, a forked child's connection.

The programs are tests/fdpasssupport.py run as scripts (Python under the preload), with
real tools where it matters (curl, tshark).
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import Net, Proc, short_tmpdir
from fdpasssupport import (
    CURL,
    HERE,
    SCM_MAX_FD,
    TSHARK,
    LabProc,
    expert_findings,
    fd_count,
    kill_pids,
    records_in,
    start_lab,
    tcp_conversations,
    tcp_stream_problems,
    wait_until,
)

SCRIPT = [sys.executable, str(HERE)]


def _link(sender: LabProc, receiver: LabProc, where: Path, name: str = "via") -> None:
    path = str(where / name)
    receiver.do("unix_listen", name=name + "-l", path=path)
    sender.do("unix_connect", name=name, path=path)
    receiver.do("unix_accept", name=name, listener=name + "-l")


# --------------------------------------------------------------------------- pre-fork server

WORKERS = 4
CLIENT_IFACES = range(20, 30)
PER_CLIENT = 20
TOTAL = len(CLIENT_IFACES) * PER_CLIENT  # 200


@dataclass
class PreforkRun:
    net: Net
    pcap: Path
    server: Proc
    worker_pids: list[int]
    answers: list[dict[str, Any]] = field(default_factory=list)
    served: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def prefork(libswrap: Path) -> Iterator[PreforkRun]:
    directory = short_tmpdir()
    net = Net(directory, libswrap)
    pcap = directory.with_name(directory.name + ".pcap")
    extra = {"SOCKET_WRAPPER_PCAP_FILE": str(pcap)}
    worker_pids: list[int] = []
    try:
        server = net.start([*SCRIPT, "prefork", "127.0.0.10", "80", str(WORKERS), str(TOTAL)],
                           net.env(10, extra=extra), "prefork")
        for _ in range(WORKERS):
            worker_pids.append(int(server.expect("worker ").split()[1]))
        server.expect("ready")
        run = PreforkRun(net, pcap, server, worker_pids)
        clients = [
            net.start([*SCRIPT, "client", "127.0.0.10", "80", str(PER_CLIENT), f"c{iface}"],
                      net.env(iface, extra=extra), f"client{iface}")
            for iface in CLIENT_IFACES
        ]
        for c in clients:
            rc = c.wait(timeout=120)
            assert rc == 0, c.describe()
            run.answers += [json.loads(line) for line in c.stdout]
        server.expect("done", timeout=60)
        assert server.wait(timeout=60) == 0, server.describe()
        run.served = [json.loads(line.split(" ", 1)[1]) for line in server.stdout
                      if line.startswith("served ")]
        yield run
    finally:
        net.close()
        kill_pids(worker_pids)
        shutil.rmtree(directory, ignore_errors=True)
        pcap.unlink(missing_ok=True)


def test_prefork_clients_get_answers_with_right_addresses(prefork: PreforkRun) -> None:
    assert len(prefork.answers) == TOTAL
    ids = set()
    for a in prefork.answers:
        iface = int(a["id"].split("-")[0][2:])
        assert a["mine"][0] == f"127.0.0.{iface}", a
        assert a["theirs"] == ["127.0.0.10", 80], a
        ans = a["answer"]
        assert ans["path"] == a["id"], a
        assert ans["peer"] == a["mine"], f"the worker sees another peer: {a}"
        assert ans["local"] == ["127.0.0.10", 80], a
        assert ans["family"] == socket.AF_INET
        assert ans["pid"] in prefork.worker_pids
        ids.add(a["id"])
    assert len(ids) == TOTAL


def test_prefork_workers_share_the_load(prefork: PreforkRun) -> None:
    per_worker: dict[int, int] = {}
    for s in prefork.served:
        per_worker[s["pid"]] = per_worker.get(s["pid"], 0) + 1
        assert s["local"] == ["127.0.0.10", 80]
        assert s["peer"][0] in {f"127.0.0.{i}" for i in CLIENT_IFACES}
    assert sorted(per_worker) == sorted(prefork.worker_pids)
    assert sorted(per_worker.values()) == [TOTAL // WORKERS] * WORKERS
    assert records_in(prefork.net.dir) == [], "records left behind"
    # (The listener's file T0A0050 may be left: see test_listener_file_goes_after_fork.)
    assert [n for n in prefork.net.listing() if n != "T0A0050"] == [], "socket files left"


def test_listener_file_goes_after_fork(net: Net) -> None:
    """A listener created before a fork (as in every pre-fork server), closed by its last
    holder while one of its accepted connections is still open: its file must go. (An
    accepted Unix socket shows the listener's path in /proc/net/unix too.)"""
    code = (
        "import os, socket\n"
        "ls = socket.socket(); ls.bind(('127.0.0.10', 80)); ls.listen()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "c = socket.socket(); c.connect(('127.0.0.10', 80)); a, _ = ls.accept()\n"
        "ls.close()\n"
        "print(sorted(os.listdir(os.environ['SOCKET_WRAPPER_DIR'])))\n"
    )
    res = net.run([sys.executable, "-c", code], net.env(10))
    assert res.returncode == 0, res.stderr
    names = res.stdout.strip()
    assert "T0A0050" not in names, f"the closed listener's file is still there: {names}"


def test_prefork_pcap_streams_continue_across_the_pass(prefork: PreforkRun) -> None:
    """One TCP stream per connection; within each direction every segment starts where the
    previous one ended (the worker continues the parent's sequence numbers)."""
    conns, problems = tcp_stream_problems(prefork.pcap)
    assert conns == TOTAL
    assert problems == [], f"{len(problems)} problems, first: {problems[:10]}"


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_prefork_pcap_tshark_clean(prefork: PreforkRun) -> None:
    assert len(tcp_conversations(prefork.pcap)) == TOTAL
    findings = expert_findings(prefork.pcap)
    assert findings == [], "\n".join(findings)


def test_prefork_pcap_swrap_check(prefork: PreforkRun) -> None:
    pcap_mod = pytest.importorskip("cwrap_py.pcap")
    result = pcap_mod.check(str(prefork.pcap))
    assert result.ok, result.line()


# --------------------------------------------------------------------------- limits


def _mixed_set(sender: LabProc) -> tuple[list[str], list[str]]:
    """253 fds: 160 wrapped sockets (UDP4, TCP4 listeners, UDP6, a TCP connection) and 93
    ordinary ones (pipes, a Unix socketpair), interleaved. Returns (all, wrapped)."""
    sender.do("make_many", prefix="u", count=100, kind="udp", host="127.0.0.10", port=6000)
    sender.do("make_many", prefix="t", count=38, kind="tcp", host="127.0.0.10", port=7000,
              listen=True)
    sender.do("make_many", prefix="v", count=20, family=6, kind="udp",
              host="fd00::5357:5f0a", port=8000)
    sender.do("socket", name="cc")
    sender.do("connect", name="cc", host="127.0.0.10", port=7000)
    sender.do("accept", name="ca", listener="t0")
    sender.do("pipes", prefix="p", count=45)
    sender.do("socketpair", a="sp0", b="sp1")
    sender.do("make_many", prefix="x", count=1, kind="udp", host="127.0.0.10", port=0)
    wrapped = ([f"u{i}" for i in range(100)] + [f"t{i}" for i in range(38)]
               + [f"v{i}" for i in range(20)] + ["cc", "ca"])
    ordinary = [f"p{i}.{e}" for i in range(45) for e in "rw"] + ["sp0", "sp1"]
    # interleave: two wrapped, one ordinary, ...; 160 + 92 = 252, one more wrapped below
    mixed: list[str] = []
    w, o = list(wrapped), list(ordinary)
    while w or o:
        mixed += [w.pop(0) for _ in range(2) if w]
        if o:
            mixed.append(o.pop(0))
    mixed.append("x0")  # and a wrapped one last: 253
    wrapped.append("x0")
    assert len(mixed) == SCM_MAX_FD, len(mixed)
    return mixed, wrapped


def _groups(names: list[str], sizes: list[int]) -> list[list[str]]:
    out, i = [], 0
    for n in sizes:
        out.append(names[i:i + n])
        i += n
    assert i == len(names)
    return out


def test_scm_max_fd_mixed_several_cmsgs(net: Net, rendezvous: Path) -> None:
    """253 fds in one sendmsg, in three SCM_RIGHTS control messages, wrapped and ordinary
    mixed: each arrives as what it was (same addresses, pipes stay pipes)."""
    sender = start_lab(net, net.env(10), "sender")
    receiver = start_lab(net, net.env(40), "receiver")
    _link(sender, receiver, rendezvous)
    mixed, wrapped = _mixed_set(sender)
    want = sender.do("kinds", names=mixed)["kinds"]
    base = receiver.fdcount()
    sender.do("sendfds", via="via", groups=_groups(mixed, [100, 100, 53]), data="253")
    assert len(records_in(net.dir)) == len(wrapped)
    names = [f"r{i}" for i in range(SCM_MAX_FD)]
    got = receiver.do("recvfds", via="via", names=names)
    assert not got["ctrunc"] and got["data"] == "253"
    assert len(got["fds"]) == SCM_MAX_FD
    assert receiver.fdcount() == base + SCM_MAX_FD
    have = receiver.do("kinds", names=names)["kinds"]
    for i, (w, h) in enumerate(zip(want, have)):
        assert h == w, f"fd {i} ({mixed[i]}): sent {w}, received {h}"
    assert records_in(net.dir) == [], "the receiver takes every record"
    # The pipes and the connection still work across processes.
    receiver.do("write", name=f"r{mixed.index('p1.w')}", data="through")
    assert sender.do("read", name="p1.r", size=7)["data"] == "through"
    receiver.do("send", name=f"r{mixed.index('ca')}", data="conn")
    assert sender.do("recv", name="cc", size=4)["data"] == "conn"
    receiver.do("close", names=names)
    assert receiver.fdcount() == base


def test_more_than_scm_max_fd_fails_without_leftovers(net: Net, rendezvous: Path) -> None:
    """254 fds: the kernel refuses (EINVAL, as without the wrapper); once the sender closes
    its sockets, no record is left."""
    sender = start_lab(net, net.env(10), "sender")
    receiver = start_lab(net, net.env(40), "receiver")
    _link(sender, receiver, rendezvous)
    mixed, wrapped = _mixed_set(sender)
    sender.do("make_many", prefix="y", count=1, kind="udp")
    reply = sender.do("sendfds", via="via", groups=[mixed[:200], mixed[200:] + ["y0"]],
                      check=False)
    assert not reply["ok"] and reply["errno"] == 22, reply
    sender.do("close", names=[*wrapped, "y0"])
    wait_until(lambda: records_in(net.dir) == [], timeout=10,
               what=f"no records (left: {len(records_in(net.dir))})")


@pytest.mark.parametrize("order", ["receiver-first", "sender-closes-first"])
@pytest.mark.parametrize("room", [10, 0], ids=["room-10", "no-control-buffer"])
def test_msg_ctrunc_leaks_nothing(net: Net, rendezvous: Path, order: str, room: int) -> None:
    """A receiver with room for `room` fds gets MSG_CTRUNC and those fds; the kernel closes
    the rest. Neither process keeps an fd it should not, and once the sender has closed its
    copies no .fdpass-* record is left in the directory."""
    sender = start_lab(net, net.env(10), "sender")
    receiver = start_lab(net, net.env(40), "receiver")
    _link(sender, receiver, rendezvous)
    s_base, r_base = sender.fdcount(), receiver.fdcount()
    assert fd_count(sender.pid) == s_base and fd_count(receiver.pid) == r_base
    mixed, wrapped = _mixed_set(sender)
    sender.do("sendfds", via="via", groups=_groups(mixed, [120, 133]))
    if order == "sender-closes-first":
        sender.do("close", names=mixed)
        assert sender.fdcount() == s_base
    names = [f"r{i}" for i in range(room)]
    ancbuf = socket.CMSG_SPACE(4 * room) if room else 0
    got = receiver.do("recvfds", via="via", names=names, ancbuf=ancbuf)
    assert got["ctrunc"], got
    assert len(got["fds"]) <= room
    assert receiver.fdcount() == r_base + len(got["fds"])
    if got["fds"]:
        kinds = receiver.do("kinds", names=names[:len(got["fds"])])["kinds"]
        want = sender.do("kinds", names=mixed[:len(got["fds"])])["kinds"] \
            if order == "receiver-first" else None
        if want is not None:
            assert kinds == want
    receiver.do("close", names=names[:len(got["fds"])])
    assert receiver.fdcount() == r_base
    if order == "receiver-first":
        sender.do("close", names=mixed)
        assert sender.fdcount() == s_base
    wait_until(lambda: records_in(net.dir) == [], timeout=10,
               what=f"no records after MSG_CTRUNC (left: {len(records_in(net.dir))})")
    assert fd_count(sender.pid) == s_base and fd_count(receiver.pid) == r_base


# --------------------------------------------------------------------------- unwrapped receiver


def test_unwrapped_receiver_gets_a_working_unix_socket(net: Net, rendezvous: Path) -> None:
    """What a process without the wrapper sees: exactly the fds sent, the message bytes
    unchanged, and AF_UNIX sockets named by their files in SOCKET_WRAPPER_DIR that carry
    the bytes of the emulated connection (and accept its clients)."""
    sender = start_lab(net, net.env(10), "sender")
    client = start_lab(net, net.env(20), "client")
    plain = start_lab(net, net.kernel_env(), "plain")
    sender.do("socket", name="L")
    sender.do("bind", name="L", host="127.0.0.10", port=7000)
    sender.do("listen", name="L")
    client.do("socket", name="c")
    csock = client.do("connect", name="c", host="127.0.0.10", port=7000)["sockname"]
    sender.do("accept", name="A", listener="L")
    _link(sender, plain, rendezvous)
    base = plain.fdcount()
    payload = "payload \x00\x01 with bytes \xff" * 10
    sender.do("sendfds", via="via", groups=[["A", "L"]], data=payload)
    got = plain.do("recvfds", via="via", names=["a", "l"], ancbuf=socket.CMSG_SPACE(4 * 16))
    assert got["data"] == payload, "the message bytes are not touched"
    assert len(got["fds"]) == 2 and got["cmsgs"] == [[socket.SOL_SOCKET, socket.SCM_RIGHTS, 8]]
    assert plain.fdcount() == base + 2, "no extra fds"
    a = plain.do("info", name="a")
    ln = plain.do("info", name="l")
    listener_file = str(net.dir / "T0A1B58")  # 127.0.0.10:7000
    client_file = str(net.dir / ("T14%04X" % csock[1]))
    assert a["family"] == socket.AF_UNIX and a["type"] == socket.SOCK_STREAM
    assert a["sockname"] == listener_file
    # The client's name: its file, or the same path in the abstract namespace ("\0" + path)
    # when the library bound the client implicitly.
    assert a["peername"] in (client_file, "\0" + client_file)
    assert ln["family"] == socket.AF_UNIX and ln["acceptconn"] == 1
    assert ln["sockname"] == listener_file
    # The bytes of the connection, both ways.
    client.do("send", name="c", data="ping")
    assert plain.do("recv", name="a", size=4)["data"] == "ping"
    plain.do("send", name="a", data="pong")
    assert client.do("recv", name="c", size=4)["data"] == "pong"
    # The passed listener accepts a wrapped client's connection (as a Unix connection).
    client.do("socket", name="c2")
    c2 = client.do("connect", name="c2", host="127.0.0.10", port=7000)["sockname"]
    plain.do("unix_accept", name="a2", listener="l")
    a2 = plain.do("info", name="a2")
    c2_file = str(net.dir / ("T14%04X" % c2[1]))
    assert a2["family"] == socket.AF_UNIX and a2["peername"] in (c2_file, "\0" + c2_file)
    client.do("send", name="c2", data="hello")
    assert plain.do("recv", name="a2", size=5)["data"] == "hello"
    # A UDP socket: datagrams arrive unchanged, from the sender's file.
    sender.do("socket", name="U", kind="udp")
    sender.do("bind", name="U", host="127.0.0.10", port=5353)
    sender.do("sendfds", via="via", groups=[["U"]], data="U")
    assert len(plain.do("recvfds", via="via", names=["u"])["fds"]) == 1
    u = plain.do("info", name="u")
    assert u["family"] == socket.AF_UNIX and u["type"] == socket.SOCK_DGRAM
    assert u["sockname"] == str(net.dir / "U0A14E9")  # 127.0.0.10:5353
    client.do("socket", name="cu", kind="udp")
    client.do("bind", name="cu", host="127.0.0.20", port=4000)
    client.do("sendto", name="cu", data="datagram\x00\x7f", host="127.0.0.10", port=5353)
    dgram = plain.do("recvfrom", name="u")
    assert dgram["data"] == "datagram\x00\x7f"
    assert dgram["src"] == str(net.dir / "U140FA0")  # 127.0.0.20:4000
    # Records: the unwrapped receiver never takes them; the sender, closing last, removes them.
    assert len(records_in(net.dir)) == 3
    plain.do("close", names=["a", "l", "a2", "u"])
    sender.do("close", names=["A", "L", "U"])
    wait_until(lambda: records_in(net.dir) == [], timeout=10,
               what=f"records removed (left: {records_in(net.dir)})")


def test_record_of_socket_outliving_sender_in_unwrapped_process(net: Net, rendezvous: Path) -> None:
    """The sender closes its copy first, then the unwrapped receiver closes the last one: no
    wrapped process sees the socket end, yet its record must not stay in the directory for
    good (the next wrapped process that passes or receives a socket may sweep it)."""
    sender = start_lab(net, net.env(10), "sender")
    plain = start_lab(net, net.kernel_env(), "plain")
    sender.do("socket", name="U", kind="udp")
    sender.do("bind", name="U", host="127.0.0.10", port=5353)
    _link(sender, plain, rendezvous)
    sender.do("sendfds", via="via", groups=[["U"]])
    plain.do("recvfds", via="via", names=["u"])
    sender.do("close", names=["U"])
    plain.do("close", names=["u"])
    # Another pass, by the same wrapped process, of another socket.
    sender.do("socket", name="V", kind="udp")
    sender.do("bind", name="V", host="127.0.0.10", port=5354)
    sender.do("sendfds", via="via", groups=[["V"]])
    plain.do("recvfds", via="via", names=["v"])
    plain.do("close", names=["v"])
    sender.do("close", names=["V"])
    wait_until(lambda: records_in(net.dir) == [], timeout=10,
               what=f"orphaned record swept (left: {records_in(net.dir)})")


# --------------------------------------------------------------------------- exec


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_supervisor_execs_http_server_on_inherited_fd(net: Net) -> None:
    """A supervisor binds 127.0.0.10:8080 and execs `python3 -c` code that serves HTTP on
    fd 3 (socket.socket(fileno=3)); curl on another interface reaches it."""
    assert CURL is not None
    requests = 3
    sup = net.start([*SCRIPT, "inherit-listen", "127.0.0.10", "8080", str(requests)],
                    net.env(10), "supervisor")
    sup_line = sup.expect("supervisor ")
    sup_pid = int(sup_line.split()[1])
    assert json.loads(sup_line.split(" ", 2)[2]) == ["127.0.0.10", 8080]
    child = sup.expect("child ").split(" ", 2)
    assert int(child[1]) == sup_pid, "exec keeps the pid"
    info = json.loads(child[2])
    assert info == {"sockname": ["127.0.0.10", 8080], "family": socket.AF_INET,
                    "type": socket.SOCK_STREAM, "acceptconn": 1}
    for i in range(requests):
        res = net.run(
            [CURL, "-sS", "--max-time", "20", "-w", "\n%{local_ip}:%{local_port} "
             "%{remote_ip}:%{remote_port}", f"http://127.0.0.10:8080/req{i}"],
            net.env(30 + i),
        )
        assert res.returncode == 0, res.stderr
        body, ends = res.stdout.rsplit("\n", 1)
        local, remote = ends.split()
        assert remote == "127.0.0.10:8080"
        lip, lport = local.split(":")
        assert lip == f"127.0.0.{30 + i}"
        seen = json.loads(body)
        assert seen["path"] == f"/req{i}"
        assert seen["local"] == ["127.0.0.10", 8080]
        assert seen["peer"] == seen["accept_peer"] == [lip, int(lport)]
    sup.expect("child done")
    assert sup.wait() == 0, sup.describe()
    assert net.listing() == [], "the listener's file is removed when its last holder exits"


def test_forked_child_execs_with_connected_socket(net: Net) -> None:
    """fork, then exec with the connected socket on fd 3: the new program sees the same
    local and peer address and talks to the same server."""
    server = start_lab(net, net.env(10), "server")
    server.do("socket", name="L")
    server.do("bind", name="L", host="127.0.0.10", port=9000)
    server.do("listen", name="L")
    proc = net.start([*SCRIPT, "inherit-connected", "127.0.0.10", "9000"], net.env(20),
                     "parent")
    parent = json.loads(proc.expect("parent ").split(" ", 1)[1])
    assert parent["peername"] == ["127.0.0.10", 9000]
    assert parent["sockname"][0] == "127.0.0.20"
    peer = server.do("accept", name="A", listener="L")["peer"]
    assert peer == parent["sockname"]
    child = json.loads(proc.expect("child ").split(" ", 1)[1])
    assert child == {**parent, "family": socket.AF_INET, "type": socket.SOCK_STREAM}
    assert server.do("recv", name="A", size=10)["data"] == "from-exec\n"
    server.do("send", name="A", data="echo\n")
    assert proc.expect("echo ").split() == ["echo", "echo"]
    assert proc.wait() == 0, proc.describe()
    assert server.do("recv", name="A", size=1)["data"] == "", "EOF once the child closed"
    server.do("close", names=["A", "L"])
    wait_until(lambda: net.listing() == [], timeout=10,
               what=f"socket files removed (left: {net.listing()})")


def test_inherited_socket_in_unwrapped_exec_is_plain_unix(net: Net) -> None:
    """The same supervisor, but the exec'd program runs without the wrapper: it sees the
    Unix socket (documented behaviour, no crash)."""
    code = ("import socket; s = socket.socket(fileno=3); "
            "print(int(s.family), s.getsockname(), flush=True)")
    env = net.env(10)
    sup_code = (
        "import os, socket, sys\n"
        "s = socket.socket(); s.bind(('127.0.0.10', 8081)); s.listen(4)\n"
        "os.dup2(s.fileno(), 3); os.set_inheritable(3, True)\n"
        "env = {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}\n"
        f"os.execve(sys.executable, [sys.executable, '-c', {code!r}], env)\n"
    )
    res = net.run([sys.executable, "-c", sup_code], env)
    assert res.returncode == 0, res.stderr
    fam, name = res.stdout.split(" ", 1)
    assert int(fam) == socket.AF_UNIX
    assert name.strip() == str(net.dir / "T0A1F91")  # 127.0.0.10:8081
