"""Helpers shared by the issue-3 network tests (UDP, IPv6, message I/O, options, programs).

A *scenario* is a small Python program (the PRELUDE below plus a body) that one process runs,
under the wrapper or on kernel loopback without it, printing one line per step. The same
body runs on both sides; ``differential`` runs it twice and the test compares the normalized
outputs: the kernel is the reference.

Scenario bodies get ``A``, a dict decoded from argv[1]: ``port`` (a block of PORT..PORT+15
free on the kernel side), ``srv4``/``cli4``/``oth4`` (three IPv4 addresses: 127.0.0.10,
127.0.0.20 and 127.0.0.30 on both sides), ``srv6``/``cli6``/``oth6`` (IPv6 addresses: the
emulated fd00::5357:5fXX under the wrapper, ::1 on the kernel side), ``def4``/``def6`` (the
default interface 1: 127.0.0.1, and fd00::5357:5f01 or ::1) and ``wrapped``.
"""

from __future__ import annotations

import json
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Net, Proc

PY = sys.executable

# Emulated IPv6 address of an interface.
def addr6(iface: int) -> str:
    return "fd00::5357:5f%02x" % iface


def addr4(iface: int) -> str:
    return f"127.0.0.{iface}"


def sock_name(kind: str, iface: int, port: int) -> str:
    """Socket file name: kind is T (TCP/IPv4), U (UDP/IPv4), X (TCP/IPv6) or Y (UDP/IPv6)."""
    return "%s%02X%04X" % (kind, iface, port)


PRELUDE = r'''
import errno, fcntl, json, os, select, socket, struct, sys, time
A = json.loads(sys.argv[1])
PORT = A["port"]
IP_PKTINFO = 8
IP_RECVERR = 11
SIOCINQ = 0x541B
SIOCOUTQ = 0x5411
FIONBIO = 0x5421
def out(*a):
    print(*a, flush=True)
def en(e):
    if isinstance(e, OSError) and e.errno is not None:
        return errno.errorcode.get(e.errno, "E%d" % e.errno)
    return type(e).__name__
def P(p):
    if PORT and p == PORT:
        return "PORT"
    if PORT and 0 < p - PORT < 16:
        return "PORT+%d" % (p - PORT)
    if 32768 <= p <= 60999:
        return "EPH"
    return str(p)
def fa(sa):
    if isinstance(sa, tuple) and len(sa) >= 2:
        return "%s %s" % (sa[0], P(sa[1]))
    return repr(sa)
def is_addr(x):
    return isinstance(x, tuple) and len(x) >= 2 and isinstance(x[0], str) and isinstance(x[1], int)
def fmt(r):
    if r is None:
        return "OK"
    if is_addr(r):
        return fa(r)
    if isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], bytes):
        return "%r from %s" % (r[0], fa(r[1]))
    if isinstance(r, tuple):
        return " ".join(fa(x) if is_addr(x) else repr(x) for x in r)
    return repr(r)
def step(label, fn, *args, **kw):
    try:
        r = fn(*args, **kw)
    except OSError as e:
        out("%s: %s" % (label, en(e)))
        return None
    out("%s: %s" % (label, fmt(r)))
    return r
def readable(s, ms=2000):
    p = select.poll()
    p.register(s, select.POLLIN)
    return bool(p.poll(ms))
def udp(fam=socket.AF_INET):
    return socket.socket(fam, socket.SOCK_DGRAM)
def tcp(fam=socket.AF_INET):
    return socket.socket(fam, socket.SOCK_STREAM)
def fam_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET
import ctypes
LIBC = ctypes.CDLL(None, use_errno=True)
def _check(rc):
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return rc
def disconnect(s):
    """connect(fd, {AF_UNSPEC}): dissolve a UDP association."""
    sa = struct.pack("=H14x", socket.AF_UNSPEC)
    _check(LIBC.connect(s.fileno(), sa, len(sa)))
def ioctl_int(s, req, arg=0):
    v = ctypes.c_int(arg)
    _check(LIBC.ioctl(s.fileno(), ctypes.c_ulong(req), ctypes.byref(v)))
    return v.value
def tcp_pair(host, port, fam=None):
    """(listener, client, accepted) connected over host:port."""
    fam = fam or fam_of(host)
    ls = tcp(fam)
    ls.bind((host, port))
    ls.listen(8)
    c = tcp(fam)
    c.connect((host, port))
    a, _ = ls.accept()
    return ls, c, a
'''


def script(body: str) -> str:
    return PRELUDE + "\n" + body


@dataclass
class Side:
    """Where a scenario runs: on kernel loopback, or under the wrapper in net.dir."""

    net: Net
    wrapped: bool
    port: int
    prefix: Sequence[str] = ()

    @property
    def name(self) -> str:
        return "wrapped" if self.wrapped else "kernel"

    def args(self) -> dict[str, object]:
        if self.wrapped:
            v6 = {"srv6": addr6(10), "cli6": addr6(20), "oth6": addr6(30), "def6": addr6(1)}
        else:
            v6 = {"srv6": "::1", "cli6": "::1", "oth6": "::1", "def6": "::1"}
        return {"port": self.port, "srv4": "127.0.0.10", "cli4": "127.0.0.20",
                "oth4": "127.0.0.30", "def4": "127.0.0.1", "wrapped": self.wrapped, **v6}

    def env(self, iface: int | None = 1,
            extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
        if self.wrapped:
            return self.net.env(iface, extra=extra)
        return self.net.kernel_env(extra)

    def argv(self, body: str, **more: object) -> list[str]:
        args = {**self.args(), **more}
        return [*self.prefix, PY, "-c", script(body), json.dumps(args)]

    def run(self, body: str, iface: int | None = 1, timeout: float = 30.0,
            **more: object) -> list[str]:
        """Run a scenario to completion; its stdout lines (stderr must be empty)."""
        res = self.net.run(self.argv(body, **more), self.env(iface), timeout=timeout)
        assert res.returncode == 0 and res.stderr == "", (
            f"{self.name} scenario failed rc={res.returncode}\n--- stdout\n{res.stdout}"
            f"\n--- stderr\n{res.stderr}")
        return res.stdout.splitlines()

    def start(self, body: str, iface: int | None = 1, name: str = "",
              **more: object) -> Proc:
        return self.net.start(self.argv(body, **more), self.env(iface), name=name or self.name)


def _port_free(port: int) -> bool:
    for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(fam, typ) as s:
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    s.bind((host, port))
                except OSError:
                    return False
    return True


def free_port_block(n: int = 16) -> int:
    """First port of n consecutive ports free for TCP and UDP, v4 and v6, on the kernel.

    Chosen below the ephemeral range so that implicit binds never collide with it.
    """
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - n)
        if all(_port_free(base + k) for k in range(n)):
            return base
    raise AssertionError("no free block of kernel ports")


_V6_EMULATED = re.compile(r"fd00::5357:5f[0-9a-f]{2}")


def normalize(lines: Sequence[str], wrapped: bool) -> list[str]:
    """Make kernel and wrapped outputs comparable: both sides' IPv6 loopback become LO6."""
    if wrapped:
        return [_V6_EMULATED.sub("LO6", ln) for ln in lines]
    return [re.sub(r"(?<![0-9a-f:])::1(?![0-9a-f:])", "LO6", ln) for ln in lines]


def differential(net: Net, body: str, iface: int | None = 1, prefix: Sequence[str] = (),
                 **more: object) -> tuple[list[str], list[str]]:
    """Run body on kernel loopback, then wrapped; return (kernel, wrapped) outputs, raw.

    prefix (e.g. the netns command) applies to the wrapped run only."""
    port = free_port_block()
    kernel = Side(net, False, port).run(body, iface, **more)
    wrapped = Side(net, True, port, prefix).run(body, iface, **more)
    return kernel, wrapped


def assert_same(kernel: Sequence[str], wrapped: Sequence[str]) -> None:
    """Normalized outputs equal; on failure, show the lines that differ."""
    k = normalize(kernel, False)
    w = normalize(wrapped, True)
    if k != w:
        diff = []
        for i in range(max(len(k), len(w))):
            a = k[i] if i < len(k) else "<none>"
            b = w[i] if i < len(w) else "<none>"
            mark = "  " if a == b else "!!"
            diff.append(f"{mark} kernel : {a}\n{mark} wrapped: {b}")
        raise AssertionError("wrapper differs from kernel loopback:\n" + "\n".join(diff))


def run_checked(argv: Sequence[str], env: Mapping[str, str], timeout: float = 30.0,
                input: str = "") -> subprocess.CompletedProcess[str]:  # noqa: A002
    return subprocess.run(list(argv), env=dict(env), input=input, capture_output=True,
                          text=True, errors="replace", timeout=timeout, check=False)


def wait_line(proc: Proc, needle: str, stream: str = "stderr",
              timeout: float = 20.0) -> list[str]:
    """All lines of proc's stdout or stderr containing needle, once there is one (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = proc.stderr if stream == "stderr" else proc.stdout
        got = [ln for ln in lines if needle in ln]
        if got:
            return got
        if time.monotonic() > deadline or not proc.alive():
            raise AssertionError(f"no {needle!r} on {stream} of {proc.describe()}")
        time.sleep(0.02)
