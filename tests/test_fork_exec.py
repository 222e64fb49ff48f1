"""Issue 3, items 7 and 9 (processes): fork from a multi-threaded program, posix_spawn, exec,
vfork, system(); children re-read their environment; exec closes CLOEXEC sockets.

tests/progs/forkstorm.c forks 1000 times while 8 threads hammer the socket table; every
child uses an inherited socket and new ones, under alarm(20) so that a deadlock shows up as
SIGALRM. tests/progs/procenv.c starts children every way a program can and checks that each
lands on the interface its environment names.
"""

from __future__ import annotations

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

HOSTS = {"ipv4": ("127.0.0.1", "127.0.0.10"), "ipv6": ("::1", "fd00::5357:5f0a")}


def forks(cw: CTools) -> int:
    if cw.sanitizer == "tsan":
        return 300
    return 1000


@pytest.mark.usefixtures("sanitize")
@pytest.mark.parametrize("where", ["kernel", "wrapped"])
@pytest.mark.parametrize("fam", list(HOSTS))
def test_fork_1000_times_while_8_threads_hammer_the_table(
    net: Net, cw: CTools, where: str, fam: str
) -> None:
    kernel_host, wrapped_host = HOSTS[fam]
    host = kernel_host if where == "kernel" else wrapped_host
    env = cw.kenv() if where == "kernel" else cw.wenv(net, 10)
    n = forks(cw)
    res = cw.run(cw.argv(cw.prog("forkstorm"), host, n, 8, 8), env, timeout=120.0)
    out = cw.check(res, f"forkstorm {host} ({where})")
    last = out[-1].split()
    assert last[:6] == ["forks", str(n), "ok", str(n), "failed", "0"], out[-5:]
    assert int(last[7]) > 0, "the hammer threads did nothing"


@pytest.fixture
def otherdir() -> Iterator[Path]:
    d = short_tmpdir("swo-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.usefixtures("sanitize")
@pytest.mark.parametrize("fam", list(HOSTS))
def test_children_reread_their_environment(
    net: Net, cw: CTools, fam: str, otherdir: Path
) -> None:
    """posix_spawn (envp), posix_spawnp (after setenv), fork+execve, fork+execv (after setenv),
    vfork+execve and system(): each child gets another SOCKET_WRAPPER_DEFAULT_IFACE and must
    connect from that interface; the parent's SOCK_CLOEXEC socket is gone in every child; a
    child given another SOCKET_WRAPPER_DIR finds nobody listening (ECONNREFUSED)."""
    _, host = HOSTS[fam]
    res = cw.run(
        cw.argv(cw.prog("procenv"), "parent", host, otherdir), cw.wenv(net, 10), timeout=60.0
    )
    out = cw.check(res, f"procenv parent {host}")
    for method in ("posix_spawn with envp", "vfork + execve", "system() after setenv",
                   "posix_spawn with another SOCKET_WRAPPER_DIR"):
        assert f"ok {method}" in out, out
    assert net.listing() == []
    assert sorted(p for p in otherdir.iterdir() if p.name != ".timewait") == []
