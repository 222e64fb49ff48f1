"""Issue 3, item 11 (and DESIGN.md §4, "variables are read when they matter"):
SOCKET_WRAPPER_DEBUGLEVEL, SOCKET_WRAPPER_DISABLE_DEEPBIND, SOCKET_WRAPPER_DIR_ALLOW_ORIG, and
variables changed with setenv() while the program runs.

tests/progs/procenv.c: `scenario` does a little of everything (a raw socket, a bind to a
foreign address, TCP and UDP on HOST:7); `setenv` starts with SOCKET_WRAPPER_DIR unset and
changes the variables one by one.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import short_tmpdir

if TYPE_CHECKING:
    from conftest import Net
    from procsupport import CTools

pytest_plugins = ["procsupport"]

LINE = re.compile(r"^socket_wrapper\[(\d+)\]: ([A-Za-z_][A-Za-z0-9_]*): (\S.*)$")


def normalize(line: str) -> str:
    """`function: message` with the pid, fd numbers, ports and socket names blurred."""
    return re.sub(r"[0-9A-F]{4,}|\d+", "#", LINE.sub(r"\2: \3", line))


def scenario(net: Net, cw: CTools, extra: dict[str, str | None]) -> tuple[int, list[str], str]:
    """Run procenv scenario wrapped; returns (pid, stdout lines, stderr)."""
    res = cw.run(cw.argv(cw.prog("procenv"), "scenario", "127.0.0.10"), cw.wenv(net, 10, extra))
    out = res.stdout.splitlines()
    pid = int(next(line for line in out if line.startswith("pid "))[4:])
    return pid, out, res.stderr


# --------------------------------------------------------------------------- DEBUGLEVEL


def test_debuglevel_0_to_3(net: Net, cw: CTools) -> None:
    """Nothing on stderr at 0; at 1, 2, 3 only lines `socket_wrapper[<pid>]: <function>:
    <message>` with the program's pid, each level printing what the level below prints and
    more (2: debug, 3: trace)."""
    lines: dict[int, list[str]] = {}
    for level in range(4):
        pid, out, err = scenario(net, cw, {"SOCKET_WRAPPER_DEBUGLEVEL": str(level)})
        assert "ok scenario" in out, (level, out, err)
        got = err.splitlines()
        for line in got:
            m = LINE.match(line)
            assert m, f"level {level}: not `socket_wrapper[pid]: function: message`: {line!r}"
            assert int(m.group(1)) == pid, f"level {level}: pid {m.group(1)}, expected {pid}"
        lines[level] = got
    assert lines[0] == [], f"level 0 printed: {lines[0]}"
    assert len(lines[1]) <= len(lines[2]) < len(lines[3]), lines
    assert lines[2], "level 2 (debug) printed nothing for bind/connect/accept"
    # Each level prints what the level below prints (numbers, ports and names aside).
    for low in (1, 2):
        body_low = [normalize(line) for line in lines[low]]
        body_high = [normalize(line) for line in lines[low + 1]]
        for entry in body_low:
            assert entry in body_high, f"level {low} line missing at {low + 1}: {entry}"


def test_debuglevel_unset_prints_nothing(net: Net, cw: CTools) -> None:
    _, out, err = scenario(net, cw, {"SOCKET_WRAPPER_DEBUGLEVEL": None})
    assert "ok scenario" in out
    assert err == ""


# --------------------------------------------------------------------------- DISABLE_DEEPBIND


@pytest.mark.parametrize("value", ["1", "0", ""])
def test_disable_deepbind_keeps_everything_working(net: Net, cw: CTools, value: str) -> None:
    """SOCKET_WRAPPER_DISABLE_DEEPBIND (set, "0", empty) changes nothing the program sees and
    prints nothing; a server and a client in two processes still talk."""
    extra: dict[str, str | None] = {"SOCKET_WRAPPER_DISABLE_DEEPBIND": value}
    _, out, err = scenario(net, cw, extra)
    assert "ok scenario" in out, (out, err)
    assert err == ""
    prog = cw.prog("threadecho")
    server = net.start(cw.argv(prog, "server", "127.0.0.10", 7, 2), cw.wenv(net, 10, extra))
    server.expect("ready 7", timeout=cw.timeout(20))
    res = cw.run(cw.argv(prog, "client", "127.0.0.10", 7, 2, 2, 4096), cw.wenv(net, 20, extra))
    cw.check(res, "threadecho client with SOCKET_WRAPPER_DISABLE_DEEPBIND")
    server.close_stdin()
    cw.check_proc(server)


# --------------------------------------------------------------------------- DIR_ALLOW_ORIG


@pytest.fixture
def long_dir() -> Iterator[tuple[Path, Path]]:
    """(short symlink, long real directory): realpath of the link is > 99 bytes."""
    base = short_tmpdir("swl-")
    real = base / "r"
    while len(str(real)) <= 120:
        real = real / "a-rather-long-directory-name"
    real.mkdir(parents=True)
    link = base / "d"
    link.symlink_to(real)
    assert len(str(link)) < 60 and len(os.path.realpath(link)) > 99
    try:
        yield link, real
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_dir_whose_realpath_is_too_long_fails_loudly(
    net: Net, cw: CTools, long_dir: tuple[Path, Path]
) -> None:
    link, _ = long_dir
    _, out, err = scenario(net, cw, {"SOCKET_WRAPPER_DIR": str(link)})
    assert "socket: ENAMETOOLONG" in out, out
    expected = (
        f'SOCKET_WRAPPER_DIR="{link}": socket paths would not fit in sun_path; expected a '
        "directory path of at most 99 bytes (or set SOCKET_WRAPPER_DIR_ALLOW_ORIG)"
    )
    assert any(line.endswith(expected) for line in err.splitlines()), err


def test_dir_allow_orig_uses_the_short_path(
    net: Net, cw: CTools, long_dir: tuple[Path, Path], sockops: str
) -> None:
    """With SOCKET_WRAPPER_DIR_ALLOW_ORIG the value as given is used: the socket files appear
    in the long directory (through the link), and two processes meet there."""
    link, real = long_dir
    extra: dict[str, str | None] = {
        "SOCKET_WRAPPER_DIR": str(link), "SOCKET_WRAPPER_DIR_ALLOW_ORIG": "1",
    }
    _, out, err = scenario(net, cw, extra)
    assert "ok scenario" in out, (out, err)
    assert err == ""
    server = net.start(
        [sockops, "tcp4", "bind", "127.0.0.10", "7", "listen", "ready", "accept", "peer",
         "recvall"],
        cw.wenv(net, 10, extra),
    )
    server.expect("ready", timeout=cw.timeout(20))
    assert (real / "T0A0007").exists(), sorted(p.name for p in real.iterdir())
    client = net.run(
        [sockops, "tcp4", "connect", "127.0.0.10", "7", "send", "hi", "close"],
        cw.wenv(net, 20, extra),
    )
    assert "connect: OK" in client.stdout, client.stdout + client.stderr
    assert server.wait(cw.timeout(20)) == 0, server.describe()
    assert "peer: 127.0.0.20" in "\n".join(server.stdout), server.describe()
    assert "data: hi" in server.stdout, server.describe()


def test_dir_allow_orig_with_a_long_value_still_fails(
    net: Net, cw: CTools, long_dir: tuple[Path, Path]
) -> None:
    """The fallback is the value as given: if that is too long as well, it is an error."""
    _, real = long_dir
    _, out, err = scenario(
        net, cw, {"SOCKET_WRAPPER_DIR": str(real), "SOCKET_WRAPPER_DIR_ALLOW_ORIG": "1"}
    )
    assert "socket: ENAMETOOLONG" in out, out
    assert "socket paths would not fit in sun_path" in err


# --------------------------------------------------------------------------- setenv at run time


def test_variables_changed_with_setenv_take_effect(net: Net, cw: CTools) -> None:
    """Start with SOCKET_WRAPPER_DIR unset (inert, socket_wrapper_enabled() false), then
    setenv: DIR (wrapped from the next socket on), another DIR (the same address is free
    there), DEFAULT_IFACE, IPV4_NETWORK, MAX_SOCKETS, DEBUGLEVEL (lines only while set), a
    missing DIR (fails closed with one line) and back, and unsetenv DIR (inert again)."""
    dir2 = short_tmpdir("swt2-")
    try:
        bad = f"{net.dir}-does-not-exist"
        res = cw.run(
            cw.argv(cw.prog("procenv"), "setenv", net.dir, dir2, bad),
            cw.wenv(net, None, {"SOCKET_WRAPPER_DIR": None}),
        )
        out = cw.check(res, "procenv setenv")
        assert "ok unsetenv SOCKET_WRAPPER_DIR" in out, out
        err = res.stderr.splitlines()
        marks = {line: i for i, line in enumerate(err) if line.startswith("MARK ")}
        on, off = marks["MARK debuglevel 3"], marks["MARK debuglevel unset"]
        bad_start, bad_end = marks["MARK bad dir"], marks["MARK bad dir done"]
        assert err[:on] == [], f"output before DEBUGLEVEL was set: {err[:on]}"
        assert any(LINE.match(line) for line in err[on + 1:off]), err
        assert err[off + 1:bad_start] == [], "debug output after unsetenv(DEBUGLEVEL)"
        between = err[bad_start + 1:bad_end]
        assert len(between) == 1 and between[0].endswith(
            f'SOCKET_WRAPPER_DIR="{bad}": no such directory; expected an existing directory'
        ), between
        assert err[bad_end + 1:] == [], err[bad_end + 1:]
    finally:
        shutil.rmtree(dir2, ignore_errors=True)
