"""Scale (issue 6, item 3): many emulated connections in one process, many sockets per process.

Both tests start real processes under our library (bench/scale_epoll.c, bench/scale_maxsock.c)
with bounded waits. They check correctness only; their timings are written to the JSON file
named by BENCH_SCALE_JSON (set by `make bench`, which reports them) and never asserted.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, Net, Proc, compile_c

BENCH_SRC = REPO / "bench"
CONNECTIONS = 10000
CLIENTS = 4
SERVER_IFACE = 10
CLIENT_IFACE = 11
WAIT = 60.0  # bound of any single wait in these tests (seconds)
# Keys of the timings in $BENCH_SCALE_JSON (read by bench/run.py).
TIMING_KEYS = {
    "test_epoll_10000_connections": "epoll_10000",
    "test_max_sockets_256000": "max_sockets",
}


@pytest.fixture(scope="module")
def scale_progs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("scale")
    flags = ["-O2", "-Wall", "-Wextra", "-Werror"]
    return {
        name: str(compile_c(BENCH_SRC / f"{name}.c", out / name, flags))
        for name in ("scale_epoll", "scale_maxsock")
    }


@pytest.fixture
def timings(request: pytest.FixtureRequest) -> Iterator[dict[str, float | int]]:
    """A dict the test fills; saved under its key in $BENCH_SCALE_JSON, even on failure."""
    data: dict[str, float | int] = {}
    yield data
    path = os.environ.get("BENCH_SCALE_JSON")
    if not path or not data:
        return
    name = TIMING_KEYS.get(request.node.name, request.node.name)
    p = Path(path)
    try:
        old = json.loads(p.read_text()) if p.exists() else {}
    except ValueError:
        old = {}
    old[name] = data
    p.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")


def skip_if_asked(proc: Proc, line: str) -> None:
    if line.startswith("SKIP"):
        proc.kill()
        pytest.skip(line[5:])


def next_line(proc: Proc, what: str) -> str:
    line = proc.expect("", timeout=WAIT)
    skip_if_asked(proc, line)
    assert line.startswith(what), f"expected {what!r}, got {line!r}\n{proc.describe()}"
    return line


def test_epoll_10000_connections(
    net: Net, scale_progs: dict[str, str], timings: dict[str, float | int]
) -> None:
    """One epoll server holds 10000 connections of 4 client processes; every one is answered
    with the client's own emulated address, seen from the server's accept()."""
    prog = scale_progs["scale_epoll"]
    host = f"127.0.0.{SERVER_IFACE}"
    t0 = time.monotonic()
    server = net.start([prog, "server", host, str(CONNECTIONS)], net.env(SERVER_IFACE), "server")
    _, ip, port = next_line(server, "listening ").split()
    assert ip == host
    per = CONNECTIONS // CLIENTS
    clients = [
        net.start([prog, "client", host, port, str(per), str(i)], net.env(CLIENT_IFACE),
                  f"client{i}")
        for i in range(CLIENTS)
    ]
    for c in clients:
        assert next_line(c, "connected") == f"connected {per}"
    t1 = time.monotonic()
    timings["connect_s"] = t1 - t0

    server.send("report\n")
    assert next_line(server, "open") == f"open {CONNECTIONS} peak {CONNECTIONS} answered 0"

    for c in clients:
        c.send("go\n")
    for c in clients:
        assert next_line(c, "answered") == f"answered {per}"
    t2 = time.monotonic()
    timings["answer_s"] = t2 - t1

    server.send("report\n")
    assert next_line(server, "open") == (
        f"open {CONNECTIONS} peak {CONNECTIONS} answered {CONNECTIONS}"
    )
    for c in clients:
        c.send("close\n")
    for c in clients:
        assert c.wait(WAIT) == 0, c.describe()
    assert next_line(server, "done") == (
        f"done closed {CONNECTIONS} peak {CONNECTIONS} answered {CONNECTIONS}"
    )
    assert server.wait(WAIT) == 0, server.describe()
    timings["close_s"] = time.monotonic() - t2
    timings["connections"] = CONNECTIONS


def open_sockets(
    net: Net, prog: str, attempts: int, max_sockets: str | None
) -> tuple[list[str], float]:
    """Runs scale_maxsock; returns its output lines (or skips on SKIP) and its seconds."""
    env = net.env(extra={"SOCKET_WRAPPER_MAX_SOCKETS": max_sockets})
    res = net.run([prog, str(attempts)], env, timeout=WAIT)
    lines = res.stdout.splitlines()
    if res.returncode == 77:
        pytest.skip(lines[0][5:] if lines else "scale_maxsock cannot raise RLIMIT_NOFILE")
    assert res.returncode == 0, f"rc {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert lines and lines[0].startswith("opened "), res.stdout + res.stderr
    return lines, float(lines[0].split()[-1])


def opened(lines: list[str]) -> tuple[int, str]:
    parts = lines[0].split()  # opened N errno E secs S
    return int(parts[1]), parts[3]


def test_max_sockets_256000(
    net: Net, scale_progs: dict[str, str], timings: dict[str, float | int]
) -> None:
    """SOCKET_WRAPPER_MAX_SOCKETS: ENFILE exactly past the limit, a freed slot reusable, and
    256000 honoured: more sockets than the default 65535, up to 256000 and not one more."""
    prog = scale_progs["scale_maxsock"]

    lines, secs = open_sockets(net, prog, 1001, "1000")
    assert opened(lines) == (1000, "ENFILE"), lines
    assert lines[1:] == ["reopen ok"], lines
    timings["limit_1000_s"] = secs

    # Below the process's file limit, 256000 must not stop anything: the kernel's EMFILE
    # comes first (this part runs wherever the full test cannot).
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 256000 + 64:
        n = min(hard - 64, 65535 + 1000)
        if n > 1000:
            lines, secs = open_sockets(net, prog, n, "256000")
            assert opened(lines) == (n, "none"), lines
            timings["within_rlimit_s"] = secs
            timings["within_rlimit_n"] = n

    lines, secs = open_sockets(net, prog, 256001, "256000")
    assert opened(lines) == (256000, "ENFILE"), lines
    assert lines[1:] == ["reopen ok"], lines
    timings["limit_256000_s"] = secs

    lines, secs = open_sockets(net, prog, 65536, None)
    assert opened(lines) == (65535, "ENFILE"), lines
    timings["default_65535_s"] = secs
