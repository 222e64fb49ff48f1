"""Issue 3, items 4, 7 and 8: which fd numbers name which emulated socket.

The C program tests/progs/fdlife.c checks itself (``ok ...`` / ``FAIL ...``). Each scenario
runs on kernel loopback first (127.0.0.1, ::1, no preload: the checks are right about Linux),
then under the wrapper, where it also looks at the socket files in SOCKET_WRAPPER_DIR.
"""

from __future__ import annotations

import resource
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Net
    from procsupport import CTools

pytest_plugins = ["procsupport"]

WRAPPED = ("127.0.0.10", "fd00::5357:5f0a")
KERNEL = ("127.0.0.1", "::1")
WHERE = ["kernel", "wrapped"]


def run_fdlife(
    net: Net, cw: CTools, where: str, *args: object, extra: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> list[str]:
    prog = cw.prog("fdlife")
    env = cw.kenv(extra) if where == "kernel" else cw.wenv(net, 10, extra=extra)
    res = cw.run(cw.argv(prog, *args), env, timeout=timeout)
    return cw.check(res, f"fdlife {' '.join(map(str, args))} ({where})")


def hosts(where: str) -> tuple[str, str]:
    return KERNEL if where == "kernel" else WRAPPED


# --------------------------------------------------------------------------- item 4: dup


@pytest.mark.usefixtures("sanitize")
@pytest.mark.parametrize("where", WHERE)
def test_dup_family_shares_identity_and_dup2_replaces_it(net: Net, cw: CTools, where: str) -> None:
    """dup/dup2/dup3/F_DUPFD/F_DUPFD_CLOEXEC (also into far table chunks) share the socket;
    closing copies keeps it (and its file) alive; dup2/dup3 onto a wrapped fd drop the old
    identity and its file; dup2 of a file onto a socket fd makes it a plain file."""
    out = run_fdlife(net, cw, where, "dup", *hosts(where))
    assert "ok dup2 onto a wrapped fd replaces its identity" in out
    assert "ok closing copies keeps the listener alive" in out
    if where == "wrapped":
        assert net.listing() == [], "socket files left behind"


# --------------------------------------------------------------------------- item 7: churn


@pytest.mark.usefixtures("sanitize")
@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("seed", [1, 20240607])
def test_100000_fds_of_mixed_kinds_never_inherit_a_socket_identity(
    net: Net, cw: CTools, where: str, seed: int
) -> None:
    """Sockets (TCP/UDP, v4/v6, bound or not, connected and accepted), files, FILEs, pipes,
    socketpairs, eventfd, timerfd, signalfd, epoll, memfd, inotify, accepted Unix sockets and
    dups, closed by close, close_range (one and a span), closefrom, dup2/dup3 over them, or
    behind the wrapper's back (fclose of an fdopen'ed fd). Every new fd and, periodically,
    every open one must answer as what it is: ENOTSOCK for non-sockets, AF_UNIX for Unix
    sockets, its own family/type/name for inet sockets. Afterwards no socket file is left and
    no SOCKET_WRAPPER_MAX_SOCKETS slot is leaked: exactly the limit can be created again."""
    limit = 400
    h4, h6 = hosts(where)
    out = run_fdlife(
        net, cw, where, "churn", 200000, seed, h4, h6, limit,
        extra={"SOCKET_WRAPPER_MAX_SOCKETS": str(limit)}, timeout=120.0,
    )
    opened = next(line for line in out if line.startswith("steps "))
    assert int(opened.split()[3]) >= 100000, opened
    assert f"filled {limit}" in out
    if where == "wrapped":
        assert net.listing() == [], "socket files of closed sockets left behind"


# Functions that hand out an fd number: the ones the issue lists, what glibc's fortified
# open calls, then glibc functions that open fds internally (not through the interposed
# symbols).
REUSE_LISTED = [
    "open", "open64", "openat", "openat64", "creat", "fopen", "fopen64", "pipe", "pipe2",
    "socketpair", "eventfd", "timerfd_create", "signalfd", "epoll_create", "epoll_create1",
    "memfd_create", "inotify_init", "inotify_init1", "accept", "accept4", "socket_inet",
    "socket_unix", "syscall_socket", "dup", "dup2", "dup3", "F_DUPFD", "F_DUPFD_CLOEXEC", "fcntl64",
]
REUSE_FORTIFY = ["__open_2"]
REUSE_GLIBC_INTERNAL = ["opendir", "mkstemp", "tmpfile", "popen"]


@pytest.mark.usefixtures("sanitize")
@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("kind", REUSE_LISTED + REUSE_FORTIFY + REUSE_GLIBC_INTERNAL)
def test_number_of_a_socket_closed_behind_our_back_is_reused(
    net: Net, cw: CTools, where: str, kind: str
) -> None:
    """A bound UDP socket is closed where the wrapper cannot see it (glibc's internal close);
    `kind` then hands out the same number. The new fd must be what it is (a file is not a
    socket: ENOTSOCK, and write() to it works instead of going the UDP path), and the stale
    socket's file in SOCKET_WRAPPER_DIR is removed."""
    out = run_fdlife(net, cw, where, "reuse", kind, *hosts(where))
    assert any(line.startswith(f"ok {kind} reusing") for line in out), out
    if where == "wrapped":
        assert net.listing() == []


# --------------------------------------------------------------------------- item 8: limit


@pytest.mark.usefixtures("sanitize")
@pytest.mark.parametrize("limit", [2, 5, 1000])
def test_max_sockets_enforced_with_enfile(net: Net, cw: CTools, limit: int) -> None:
    """Exactly SOCKET_WRAPPER_MAX_SOCKETS inet sockets; then socket() and accept() fail with
    ENFILE; AF_UNIX sockets are not counted; closing one makes room for one."""
    out = run_fdlife(
        net, cw, "wrapped", "max", limit, WRAPPED[0],
        extra={"SOCKET_WRAPPER_MAX_SOCKETS": str(limit)},
    )
    assert "ok socket beyond the limit fails with ENFILE" in out
    assert "ok closing one makes room for one" in out
    if limit > 2:
        assert "ok accept beyond the limit fails with ENFILE" in out


def _hard_nofile() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 30 if hard == resource.RLIM_INFINITY else hard


@pytest.mark.parametrize(
    ("value", "limit"), [(None, 65535), ("256000", 256000)], ids=["default-65535", "256000"]
)
def test_large_max_sockets_honoured(
    net: Net, cw: CTools, value: str | None, limit: int
) -> None:
    """The default (65535) and the largest value (256000): all of them can be created, the
    next fails with ENFILE. Needs RLIMIT_NOFILE above the limit (the program raises its soft
    limit, and its hard limit if it may). Where the hard limit is lower, as many sockets as
    it allows are created (none may fail) and the rest is skipped."""
    prog = cw.prog("fdlife")
    extra = {"SOCKET_WRAPPER_MAX_SOCKETS": value} if value else None
    env = cw.wenv(net, 10, extra=extra)
    res = cw.run(cw.argv(prog, "max", limit, WRAPPED[0]), env, timeout=180.0)
    if res.returncode == 77:
        hard = _hard_nofile()
        part = cw.run(cw.argv(prog, "many", limit), env, timeout=180.0)
        out = cw.check(part, "fdlife many")
        assert f"created {min(limit, hard - 64)}" in out, out
        assert net.listing() == []
        pytest.skip(
            f"RLIMIT_NOFILE hard limit is {hard} (and this process may not raise it: no "
            f"CAP_SYS_RESOURCE); {limit} sockets need more than {limit} fds. Checked that "
            f"{min(limit, hard - 64)} sockets are created under the {limit} limit."
        )
    out = cw.check(res, f"fdlife max {limit}")
    assert f"created {limit}" in out
    assert "ok socket beyond the limit fails with ENFILE" in out
