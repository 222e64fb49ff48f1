"""Helpers of the fd-passing tests, and the programs they start (run as a script).

As a script, ``python fdpasssupport.py lab`` is a socket laboratory driven over stdin:
one JSON command per line (``{"op": "listen", ...}``), one reply line
``R<n> {json}`` per command on stdout. The tests run it wrapped or not, and use it as
sender, receiver, client or server. ``python fdpasssupport.py prefork|client|inherit-*|http-child``
are the programs of the pre-fork-server and inheritance tests. Only the standard library
is imported at module level: the script runs inside wrapped processes.
"""

from __future__ import annotations

import array
import itertools
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
TSHARK = shutil.which("tshark")
CURL = shutil.which("curl")

# The kernel's limit of fds in one message (include/net/scm.h).
SCM_MAX_FD = 253
RECORD_PREFIX = ".fdpass-"

LEVELS = {"SOL_SOCKET": socket.SOL_SOCKET, "IPPROTO_TCP": socket.IPPROTO_TCP,
          "IPPROTO_IP": socket.IPPROTO_IP, "IPPROTO_IPV6": socket.IPPROTO_IPV6}


def say(line: str) -> None:
    """One line on stdout in one write(2): processes that share the pipe (forked workers,
    exec'd children) never interleave mid-line, even with PYTHONUNBUFFERED set."""
    os.write(1, (line + "\n").encode())


def optname(name: str) -> int:
    return int(getattr(socket, name))


# --------------------------------------------------------------------------- the lab


def _addr(value: Any) -> Any:
    """A socket address as JSON: [host, port, ...] for inet, the path for AF_UNIX."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _err(exc: OSError) -> dict[str, Any]:
    return {"ok": False, "errno": exc.errno, "error": str(exc)}


class Lab:
    """The state of one lab process: named sockets and named raw fds."""

    def __init__(self) -> None:
        self.socks: dict[str, socket.socket] = {}
        self.fds: dict[str, int] = {}

    # helpers
    def sock(self, name: str) -> socket.socket:
        if name in self.socks:
            return self.socks[name]
        fd = self.fds[name]
        # Let the socket module ask the fd what it is (getsockname, SO_TYPE...).
        s = socket.socket(fileno=fd)
        self.socks[name] = s
        del self.fds[name]
        return s

    def fd(self, name: str) -> int:
        if name in self.socks:
            return self.socks[name].fileno()
        return self.fds[name]

    def info(self, name: str) -> dict[str, Any]:
        s = self.sock(name)
        out: dict[str, Any] = {"fd": s.fileno(), "inode": os.fstat(s.fileno()).st_ino,
                               "family": int(s.family), "type": int(s.type),
                               "proto": s.proto}
        out["sockname"] = _addr(s.getsockname())
        try:
            out["peername"] = _addr(s.getpeername())
        except OSError as exc:
            out["peername"] = None
            out["peer_errno"] = exc.errno
        out["so_domain"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
        out["so_type"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
        out["acceptconn"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        return out

    # operations; each returns the reply (without "ok")
    def op_socket(self, name: str, family: int = 4, kind: str = "tcp") -> dict[str, Any]:
        fam = socket.AF_INET6 if family == 6 else socket.AF_INET
        typ = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
        self.socks[name] = socket.socket(fam, typ)
        return {"fd": self.socks[name].fileno()}

    def op_bind(self, name: str, host: str, port: int) -> dict[str, Any]:
        self.sock(name).bind((host, port))
        return {"sockname": _addr(self.sock(name).getsockname())}

    def op_listen(self, name: str, backlog: int = 64) -> dict[str, Any]:
        self.sock(name).listen(backlog)
        return {}

    def op_connect(self, name: str, host: str, port: int) -> dict[str, Any]:
        self.sock(name).connect((host, port))
        return {"sockname": _addr(self.sock(name).getsockname())}

    def op_accept(self, name: str, listener: str, timeout: float = 20) -> dict[str, Any]:
        ls = self.sock(listener)
        ls.settimeout(timeout)
        try:
            conn, peer = ls.accept()
        finally:
            ls.settimeout(None)
        conn.setblocking(True)
        self.socks[name] = conn
        return {"peer": _addr(peer)}

    def op_setopt(self, name: str, level: str, opt: str, value: int) -> dict[str, Any]:
        self.sock(name).setsockopt(LEVELS[level], optname(opt), value)
        return {}

    def op_getopt(self, name: str, level: str, opt: str) -> dict[str, Any]:
        return {"value": self.sock(name).getsockopt(LEVELS[level], optname(opt))}

    def op_info(self, name: str) -> dict[str, Any]:
        return self.info(name)

    def op_send(self, name: str, data: str) -> dict[str, Any]:
        self.sock(name).sendall(data.encode("latin-1"))
        return {}

    def op_sendto(self, name: str, data: str, host: str, port: int) -> dict[str, Any]:
        self.sock(name).sendto(data.encode("latin-1"), (host, port))
        return {}

    def op_recv(self, name: str, size: int, timeout: float = 20) -> dict[str, Any]:
        """Exactly size bytes, or fewer at EOF."""
        s = self.sock(name)
        s.settimeout(timeout)
        got = b""
        try:
            while len(got) < size:
                chunk = s.recv(size - len(got))
                if not chunk:
                    break
                got += chunk
        finally:
            s.settimeout(None)
        return {"data": got.decode("latin-1")}

    def op_recvfrom(self, name: str, size: int = 65536, timeout: float = 20) -> dict[str, Any]:
        s = self.sock(name)
        s.settimeout(timeout)
        try:
            data, src = s.recvfrom(size)
        finally:
            s.settimeout(None)
        return {"data": data.decode("latin-1"), "src": _addr(src)}

    def op_shutdown(self, name: str) -> dict[str, Any]:
        self.sock(name).shutdown(socket.SHUT_WR)
        return {}

    def op_close(self, names: list[str]) -> dict[str, Any]:
        for name in names:
            if name in self.socks:
                self.socks.pop(name).close()
            else:
                os.close(self.fds.pop(name))
        return {}

    def op_unix_listen(self, name: str, path: str) -> dict[str, Any]:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(8)
        self.socks[name] = s
        return {}

    def op_unix_connect(self, name: str, path: str) -> dict[str, Any]:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        self.socks[name] = s
        return {}

    def op_unix_accept(self, name: str, listener: str) -> dict[str, Any]:
        ls = self.sock(listener)
        ls.settimeout(20)
        conn, _ = ls.accept()
        conn.setblocking(True)
        self.socks[name] = conn
        return {}

    def op_pipe(self, name: str) -> dict[str, Any]:
        r, w = os.pipe()
        self.fds[name + ".r"] = r
        self.fds[name + ".w"] = w
        return {"r": r, "w": w}

    def op_write(self, name: str, data: str) -> dict[str, Any]:
        os.write(self.fd(name), data.encode("latin-1"))
        return {}

    def op_read(self, name: str, size: int) -> dict[str, Any]:
        return {"data": os.read(self.fd(name), size).decode("latin-1")}

    def op_make_many(self, prefix: str, count: int, family: int = 4, kind: str = "udp",
                     host: str = "127.0.0.10", port: int = 0,
                     listen: bool = False) -> dict[str, Any]:
        """prefix0..prefix<count-1>: sockets bound to host:port+i (port 0: ephemeral)."""
        names = []
        for i in range(count):
            name = f"{prefix}{i}"
            self.op_socket(name, family, kind)
            self.sock(name).bind((host, port + i if port else 0))
            if listen:
                self.sock(name).listen(4)
            names.append(name)
        return {"names": names}

    def op_pipes(self, prefix: str, count: int) -> dict[str, Any]:
        """prefix<i>.r / prefix<i>.w for i < count."""
        for i in range(count):
            self.op_pipe(f"{prefix}{i}")
        return {}

    def op_socketpair(self, a: str, b: str) -> dict[str, Any]:
        self.socks[a], self.socks[b] = socket.socketpair()
        return {}

    def op_sendfds(self, via: str, groups: list[list[str]], data: str = "F") -> dict[str, Any]:
        """One sendmsg: one SCM_RIGHTS control message per group of named fds."""
        anc = [
            (socket.SOL_SOCKET, socket.SCM_RIGHTS,
             array.array("i", [self.fd(n) for n in group]).tobytes())
            for group in groups
        ]
        sent = self.sock(via).sendmsg([data.encode("latin-1")], anc)
        return {"sent": sent}

    def op_recvfds(self, via: str, names: list[str], ancbuf: int | None = None,
                   size: int = 65536, timeout: float = 20) -> dict[str, Any]:
        """One recvmsg; the fds that arrive are named names[0], names[1]... in order.

        ancbuf: the control buffer size (default: room for len(names) fds).
        """
        if ancbuf is None:
            ancbuf = socket.CMSG_SPACE(len(names) * 4)
        s = self.sock(via)
        s.settimeout(timeout)
        try:
            data, anc, flags, _ = s.recvmsg(size, ancbuf)
        finally:
            s.settimeout(None)
        fds: list[int] = []
        cmsgs = []
        for level, kind, payload in anc:
            cmsgs.append([level, kind, len(payload)])
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                arr = array.array("i")
                arr.frombytes(payload[: len(payload) - len(payload) % 4])
                fds.extend(arr)
        for name, fd in zip(names, fds):
            self.fds[name] = fd
        extra = fds[len(names):]
        for fd in extra:  # more than asked for: keep them reachable by number
            self.fds[f"extra{fd}"] = fd
        return {"data": data.decode("latin-1"), "fds": fds, "cmsgs": cmsgs, "flags": flags,
                "ctrunc": bool(flags & socket.MSG_CTRUNC)}

    def op_kinds(self, names: list[str]) -> dict[str, Any]:
        """For each named fd: 'sock' + its addresses, or the file type."""
        out = []
        for name in names:
            st = os.fstat(self.fd(name))
            if stat.S_ISSOCK(st.st_mode):
                i = self.info(name)
                out.append({"kind": "sock", "family": i["family"], "sockname": i["sockname"],
                            "peername": i["peername"], "type": i["type"]})
            elif stat.S_ISFIFO(st.st_mode):
                out.append({"kind": "fifo"})
            else:
                out.append({"kind": "file", "mode": st.st_mode})
        return {"kinds": out}

    def op_fdcount(self) -> dict[str, Any]:
        # listdir's own fd on /proc/self/fd is in the list: not counted
        return {"count": len(os.listdir("/proc/self/fd")) - 1, "pid": os.getpid()}

    def op_ls(self, path: str) -> dict[str, Any]:
        return {"names": sorted(os.listdir(path))}

    def op_exit(self) -> dict[str, Any]:
        return {}


def lab_main() -> int:
    lab = Lab()
    for n in itertools.count():
        line = sys.stdin.readline()
        if not line:
            return 0
        cmd = json.loads(line)
        op = cmd.pop("op")
        try:
            reply = {"ok": True, **getattr(lab, "op_" + op)(**cmd)}
        except OSError as exc:
            reply = _err(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            reply = {"ok": False, "errno": None, "error": f"{type(exc).__name__}: {exc}"}
        say(f"R{n} {json.dumps(reply)}")
        if op == "exit":
            return 0
    return 0


def lab_argv() -> list[str]:
    return [sys.executable, str(HERE), "lab"]


class LabProc:
    """A lab process seen from the test: do(op, ...) -> reply (bounded wait)."""

    def __init__(self, proc: Any) -> None:
        self.proc = proc
        self.n = 0
        self.pid: int = proc.pid

    def do(self, op: str, timeout: float = 30, check: bool = True, **args: Any) -> dict[str, Any]:
        self.proc.send(json.dumps({"op": op, **args}) + "\n")
        line = self.proc.expect(f"R{self.n} ", timeout=timeout)
        self.n += 1
        reply: dict[str, Any] = json.loads(line.split(" ", 1)[1])
        if check and not reply["ok"]:
            raise AssertionError(f"{op} {args} failed: {reply}\n{self.proc.describe()}")
        return reply

    def fdcount(self) -> int:
        return int(self.do("fdcount")["count"])


def start_lab(net: Any, env: dict[str, str], name: str) -> LabProc:
    return LabProc(net.start(lab_argv(), env, name))


# --------------------------------------------------------------------------- pre-fork server


def prefork_main(argv: Sequence[str]) -> int:
    """Parent listens on host:port, accepts `total` connections, passes each to a worker.

    Workers are forked and get the connections over socketpairs (round robin); each
    reads one request line, answers with what it sees, closes. Prints `worker <pid>`
    per worker, `ready`, then `done` after the last pass; exits when all workers exit.
    """
    host, port, nworkers, total = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind((host, port))
    ls.listen(128)
    pairs: list[tuple[socket.socket, int]] = []
    pids: list[int] = []
    for w in range(nworkers):
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            ls.close()
            parent_end.close()
            for p, _ in pairs:
                p.close()
            os._exit(worker_loop(w, child_end))
        child_end.close()
        pairs.append((parent_end, pid))
        pids.append(pid)
        say(f"worker {pid}")
    say("ready")
    for i in range(total):
        conn, peer = ls.accept()
        via = pairs[i % nworkers][0]
        via.sendmsg([b"C"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                              array.array("i", [conn.fileno()]).tobytes())])
        conn.close()  # the worker serves it
    say("done")
    ls.close()
    for via, _ in pairs:
        via.close()
    status = 0
    for pid in pids:
        _, st = os.waitpid(pid, 0)
        status |= os.waitstatus_to_exitcode(st)
    return status


def worker_loop(w: int, via: socket.socket) -> int:
    while True:
        msg, fds, _flags, _ = socket.recv_fds(via, 1, 1)
        if not msg:
            break
        conn = socket.socket(fileno=fds[0])
        peer = conn.getpeername()
        local = conn.getsockname()
        path = read_request_path(conn)
        reply = {"worker": w, "pid": os.getpid(), "peer": list(peer), "local": list(local),
                 "family": int(conn.family), "path": path}
        conn.sendall(http_response(json.dumps(reply).encode()))
        conn.close()
        say(f"served {json.dumps(reply)}")
    return 0


def read_request_path(conn: socket.socket) -> str:
    """Reads the head of an HTTP request from conn: the path it asks for ("" if none)."""
    req = b""
    while b"\r\n\r\n" not in req:
        chunk = conn.recv(4096)
        if not chunk:
            break
        req += chunk
    return req.split(b" ")[1].decode() if req.count(b" ") >= 2 else ""


def http_response(body: bytes) -> bytes:
    return (b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def http_body(data: bytes) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200 "):
        raise ValueError(f"not an HTTP answer: {data[:200]!r}")
    return body


def client_main(argv: Sequence[str]) -> int:
    """`count` sequential HTTP requests to host:port; one JSON line per answer."""
    host, port, count, tag = argv[0], int(argv[1]), int(argv[2]), argv[3]
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect((host, port))
        mine = s.getsockname()
        theirs = s.getpeername()
        s.sendall(f"GET /{tag}-{i} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        got = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        s.close()
        answer = json.loads(http_body(got).decode())
        say(json.dumps({"id": f"/{tag}-{i}", "mine": list(mine), "theirs": list(theirs),
                        "answer": answer}))
    return 0


# --------------------------------------------------------------------------- inheritance


def http_child_main(argv: Sequence[str]) -> int:
    """What a supervisor execs: serves `count` HTTP requests on the inherited listening fd 3."""
    s = socket.socket(fileno=3)
    info = {"sockname": list(s.getsockname()), "family": int(s.family), "type": int(s.type),
            "acceptconn": s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)}
    say(f"child {os.getpid()} {json.dumps(info)}")
    for _ in range(int(argv[0])):
        conn, peer = s.accept()
        path = read_request_path(conn)
        body = json.dumps({"peer": list(conn.getpeername()), "accept_peer": list(peer),
                           "local": list(conn.getsockname()), "path": path}).encode()
        conn.sendall(http_response(body))
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)
        conn.close()
    s.close()
    say("child done")
    return 0


# The program a forked child execs with a connected socket on fd 3.
CONNECTED_CHILD = r"""
import json, os, socket
def say(line): os.write(1, (line + "\n").encode())
s = socket.socket(fileno=3)
say("child " + json.dumps({"sockname": list(s.getsockname()), "peername": list(s.getpeername()),
    "family": int(s.family), "type": int(s.type)}))
s.sendall(b"from-exec\n")
got = b""
while not got.endswith(b"\n"):
    chunk = s.recv(100)
    if not chunk:
        break
    got += chunk
say("echo " + got.decode().strip())
s.close()
"""


def inherit_listen_main(argv: Sequence[str]) -> int:
    """Supervisor: bind host:port (wrapped), put it on fd 3, exec http_child_main."""
    host, port, count = argv[0], int(argv[1]), argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(16)
    say(f"supervisor {os.getpid()} {json.dumps(list(s.getsockname()))}")
    if s.fileno() != 3:
        os.dup2(s.fileno(), 3)
        s.close()
    os.set_inheritable(3, True)
    os.execv(sys.executable, [sys.executable, str(HERE), "http-child", count])
    return 1


def inherit_connected_main(argv: Sequence[str]) -> int:
    """Connect to host:port, fork; the child execs CONNECTED_CHILD on the socket (fd 3)."""
    host, port = argv[0], int(argv[1])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect((host, port))
    say("parent " + json.dumps({"sockname": list(s.getsockname()),
                                "peername": list(s.getpeername())}))
    pid = os.fork()
    if pid == 0:
        os.dup2(s.fileno(), 3)
        os.set_inheritable(3, True)
        os.execv(sys.executable, [sys.executable, "-c", CONNECTED_CHILD])
    say(f"forked {pid}")
    s.close()  # the child keeps it
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st)


# --------------------------------------------------------------------------- test helpers


def records_in(directory: str | os.PathLike[str]) -> list[str]:
    """The .fdpass-* files of a directory (records and half-written temporaries)."""
    return sorted(n for n in os.listdir(directory) if n.startswith(RECORD_PREFIX))


def wait_until(pred: Any, timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timeout ({timeout}s) waiting for {what or pred}")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def kill_pids(pids: Iterator[int] | Sequence[int]) -> None:
    """SIGKILL each still-running pid (children a test process forked)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def tshark(*args: str, timeout: float = 180) -> str:
    assert TSHARK is not None
    res = subprocess.run([TSHARK, *args], capture_output=True, text=True, timeout=timeout,
                         check=False)
    assert res.returncode == 0, f"tshark {' '.join(args)}: {res.returncode}\n{res.stderr}"
    return res.stdout


def tcp_conversations(path: str | os.PathLike[str]) -> list[str]:
    """The rows of `tshark -z conv,tcp` (one per TCP conversation)."""
    out = tshark("-r", str(path), "-q", "-z", "conv,tcp")
    return [line for line in out.splitlines() if re.match(r"^\s*\S+:\d+\s+<->\s+\S+:\d+", line)]


def expert_findings(path: str | os.PathLike[str]) -> list[str]:
    """`tshark -z expert` lines above Chat/Note severity (errors and warnings)."""
    out = tshark("-r", str(path), "-q", "-z", "expert")
    findings = []
    section = ""
    for line in out.splitlines():
        head = re.match(r"^(Errors|Warns|Notes|Chats|Comments) \(\d+\)", line.strip())
        if head:
            section = head.group(1)
            continue
        if section in ("Errors", "Warns") and line.strip() and not line.startswith("="):
            if not re.match(r"^\s*Frequency\s+Group", line) and not line.startswith("-"):
                findings.append(f"{section}: {line.strip()}")
    return findings


def tcp_segments(path: str | os.PathLike[str]) -> Iterator[tuple[int, tuple[Any, ...], Any]]:
    """(frame number, (src, sport, dst, dport), dpkt TCP) for each TCP segment of a trace
    (LINKTYPE_RAW: IPv4 or IPv6 packets)."""
    import dpkt  # only the test process needs it

    with open(path, "rb") as f:
        for n, (_, buf) in enumerate(dpkt.pcap.Reader(f), 1):
            if buf[0] >> 4 == 6:
                ip: Any = dpkt.ip6.IP6(buf)
                fam = socket.AF_INET6
            else:
                ip = dpkt.ip.IP(buf)
                fam = socket.AF_INET
            if not isinstance(ip.data, dpkt.tcp.TCP):
                continue
            t = ip.data
            yield n, (socket.inet_ntop(fam, ip.src), t.sport, socket.inet_ntop(fam, ip.dst),
                      t.dport), t


def tcp_stream_problems(path: str | os.PathLike[str]) -> tuple[int, list[str]]:
    """(number of connections, problems) of the TCP streams in a trace, per direction.

    Per connection and direction, taken in sequence order (not in the order the records
    were written, which several processes share): the SYN comes first, the segments that
    carry sequence space (SYN, data, FIN) follow each other without gap or overlap, the FIN
    is last, no pure ACK claims a sequence number beyond them, and no ACK acknowledges
    more than the other side ever sent. A socket handed from process to process must keep
    its numbers so; a worker that started from fresh ones would show a gap.
    """
    import dpkt  # only the test process needs it

    syn_flag, fin_flag = dpkt.tcp.TH_SYN, dpkt.tcp.TH_FIN
    flows: dict[tuple[Any, ...], list[Any]] = {}
    for n, key, t in tcp_segments(path):
        flows.setdefault(key, []).append((n, t))
    problems: list[str] = []
    conns = {tuple(sorted([k[:2], k[2:]])) for k in flows}
    ends: dict[tuple[Any, ...], int] = {}
    for key, segs in flows.items():
        where = f"{key[0]}:{key[1]} > {key[2]}:{key[3]}"
        syns = [(n, t) for n, t in segs if t.flags & syn_flag]
        if len(syns) != 1:
            problems.append(f"{where}: {len(syns)} SYNs")
            continue
        isn = int(syns[0][1].seq)

        def rel(t: Any, isn: int = isn) -> int:
            return (int(t.seq) - isn) & 0xFFFFFFFF

        def span(t: Any) -> int:
            return len(t.data) + bool(t.flags & syn_flag) + bool(t.flags & fin_flag)

        nxt = 0
        fin = False
        for n, t in sorted((x for x in segs if span(x[1])), key=lambda x: rel(x[1])):
            if t.flags & dpkt.tcp.TH_RST:
                problems.append(f"{where}: frame {n} is a RST")
            if fin:
                problems.append(f"{where}: frame {n} is after the FIN")
            if rel(t) != nxt:
                problems.append(f"{where}: frame {n} at relative seq {rel(t)}, expected {nxt}")
            nxt = rel(t) + span(t)
            fin = fin or bool(t.flags & fin_flag)
        if not fin:
            problems.append(f"{where}: no FIN")
        for n, t in segs:
            if not span(t) and rel(t) > nxt:
                problems.append(f"{where}: frame {n} (ACK) at relative seq {rel(t)} > {nxt}")
        ends[key] = (isn + nxt) & 0xFFFFFFFF
    for key, segs in flows.items():
        back = (key[2], key[3], key[0], key[1])
        if back not in ends:
            problems.append(f"{key}: one direction only")
            continue
        for n, t in segs:
            if t.flags & dpkt.tcp.TH_ACK and (ends[back] - t.ack) & 0x80000000:
                problems.append(f"{key}: frame {n} acks {t.ack}, beyond {ends[back]}")
    return len(conns), problems


def main(argv: Sequence[str]) -> int:
    cmd, rest = argv[0], argv[1:]
    if cmd == "lab":
        return lab_main()
    if cmd == "prefork":
        return prefork_main(rest)
    if cmd == "client":
        return client_main(rest)
    if cmd == "inherit-listen":
        return inherit_listen_main(rest)
    if cmd == "inherit-connected":
        return inherit_connected_main(rest)
    if cmd == "http-child":
        return http_child_main(rest)
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

