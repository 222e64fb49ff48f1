"""Errno is part of the API, and a bad configuration fails closed and loudly (issue 2).

Where the kernel has the same situation (a closed port, a port in use, a non-blocking
connect), the same program runs on kernel loopback without the preload and must observe the
same results. Scenarios that name a non-loopback address run in an empty network namespace.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Net

# --------------------------------------------------------------------------- ECONNREFUSED


def test_econnrefused_same_as_kernel(net: Net, sockops: str) -> None:
    port = net.free_port()
    kernel = net.run([sockops, "tcp4", "connect", "127.0.0.1", str(port)], net.kernel_env())
    wrapped = net.run([sockops, "tcp4", "connect", "127.0.0.10", "7"], net.env(20))
    assert kernel.stdout.splitlines() == ["tcp4: OK", "connect: ECONNREFUSED"]
    assert wrapped.stdout.splitlines() == kernel.stdout.splitlines(), wrapped.stderr


def test_econnrefused_from_stale_file(net: Net, sockops: str) -> None:
    """A socket file left by a killed listener: nobody listens, so ECONNREFUSED."""
    holder = net.start([sockops, "tcp4", "bind", "127.0.0.10", "7", "listen", "wait"],
                       net.env(10))
    holder.expect("wait")
    holder.kill()
    assert net.path("T0A0007").exists()
    res = net.run([sockops, "tcp4", "connect", "127.0.0.10", "7"], net.env(20))
    assert res.stdout.splitlines() == ["tcp4: OK", "connect: ECONNREFUSED"]


# --------------------------------------------------------------------------- EADDRINUSE


@pytest.mark.parametrize("listening", [True, False], ids=["listening", "bound"])
def test_eaddrinuse_other_process_same_as_kernel(
    net: Net, sockops: str, listening: bool
) -> None:
    hold = ["listen"] if listening else []
    results = []
    for host, port, env in (
        ("127.0.0.1", net.free_port(), net.kernel_env()),
        ("127.0.0.10", 80, net.env(10)),
    ):
        holder = net.start([sockops, "tcp4", "bind", host, str(port), *hold, "wait"], env)
        holder.expect("wait")
        res = net.run([sockops, "tcp4", "bind", host, str(port)], env)
        results.append(res.stdout.splitlines())
        holder.kill()
    kernel, wrapped = results
    assert kernel == ["tcp4: OK", "bind: EADDRINUSE"]
    assert wrapped == kernel


def test_eaddrinuse_same_process(net: Net, sockops: str) -> None:
    res = net.run(
        [sockops, "tcp4", "bind", "127.0.0.10", "80", "listen",
         "tcp4", "bind", "127.0.0.10", "80", "tcp4", "bind", "127.0.0.10", "81"],
        net.env(10),
    )
    assert res.stdout.splitlines() == [
        "tcp4: OK", "bind: OK", "listen: OK",
        "tcp4: OK", "bind: EADDRINUSE",
        "tcp4: OK", "bind: OK",
    ], res.stderr


@pytest.mark.parametrize("how", ["sigkill", "exit-without-close"])
def test_port_frees_when_owner_dies(net: Net, sockops: str, how: str) -> None:
    """A socket file left behind by a dead process does not block a new bind."""
    holder = net.start([sockops, "tcp4", "bind", "127.0.0.10", "7", "listen", "wait"],
                       net.env(10))
    holder.expect("wait")
    if how == "sigkill":
        os.kill(holder.pid, signal.SIGKILL)
        holder.popen.wait(timeout=10)
    else:
        holder.send()
        assert holder.wait() == 0
    # The process did not close the socket through the wrapper: the file may be left.
    server = net.start(
        [sockops, "tcp4", "bind", "127.0.0.10", "7", "listen", "ready", "accept", "recvall"],
        net.env(10),
    )
    server.expect("tcp4: OK")
    assert server.expect("bind: ") == "bind: OK", server.describe()
    server.expect("ready")
    client = net.run([sockops, "tcp4", "connect", "127.0.0.10", "7", "send", "again", "close"],
                     net.env(20))
    assert "connect: OK" in client.stdout.splitlines(), client.stdout
    assert server.wait() == 0
    assert "data: again" in server.stdout


# --------------------------------------------------------------------------- ENETUNREACH


@pytest.mark.parametrize(
    ("sock", "host"),
    [
        ("tcp4", "192.0.2.1"),
        ("tcp4", "10.53.57.10"),  # the other network is not emulated on 127.0.0.0
        ("tcp4", "127.0.1.10"),
        ("tcp6", "2001:db8::1"),
        ("tcp6", "fd00::5357:6001"),  # just outside fd00::5357:5f00/120
        ("tcp6", "fd00::5357:5e0a"),
    ],
)
def test_enetunreach(net: Net, sockops: str, netns: list[str], sock: str, host: str) -> None:
    res = net.run([*netns, sockops, sock, "backing", "connect", host, "80"], net.env(10))
    assert res.stdout.splitlines() == [f"{sock}: OK", "backing: unix", "connect: ENETUNREACH"], (
        res.stdout, res.stderr
    )


@pytest.mark.parametrize(("sock", "host"), [("tcp4", "192.0.2.1"), ("tcp6", "2001:db8::1")])
def test_bind_non_emulated_is_eaddrnotavail(
    net: Net, sockops: str, netns: list[str], sock: str, host: str
) -> None:
    res = net.run([*netns, sockops, sock, "bind", host, "80"], net.env(10))
    assert res.stdout.splitlines() == [f"{sock}: OK", "bind: EADDRNOTAVAIL"], res.stdout
    assert net.listing() == []


def test_reachability_on_ten_network(net: Net, sockops: str, netns: list[str]) -> None:
    """On 10.53.57.0, 10.53.57.N is emulated (nobody listens) and 127.0.0.N is not."""
    res = net.run([*netns, sockops, "tcp4", "connect", "192.0.2.1", "80",
                   "tcp4", "connect", "10.53.57.10", "80",
                   "tcp4", "connect", "127.0.0.10", "80"],
                  net.env(10, network="10.53.57.0"))
    assert res.stdout.splitlines() == [
        "tcp4: OK", "connect: ENETUNREACH",
        "tcp4: OK", "connect: ECONNREFUSED",
        "tcp4: OK", "connect: ENETUNREACH",
    ], res.stderr


# --------------------------------------------------------------------------- non-blocking connect

NB_CONNECT = ["nonblock", "connect", "{host}", "{port}", "pollout", "5000", "soerror", "soerror"]


def nb_script(host: str, port: int, *more: str) -> list[str]:
    return [a.format(host=host, port=port) for a in [*NB_CONNECT, *more]]


def nb_with_listener(net: Net, sockops: str, *more: str) -> tuple[list[str], list[str]]:
    """The non-blocking connect script against a listener: kernel output, wrapped output."""
    out = []
    for host, env, cenv in (
        ("127.0.0.1", net.kernel_env(), net.kernel_env()),
        ("127.0.0.10", net.env(10), net.env(20)),
    ):
        server = net.start([sockops, "tcp4", "bind", host, "0", "listen", "name", "wait"], env)
        _, port = net.parse_addr(server.expect("name: "))
        res = net.run([sockops, "tcp4", *nb_script(host, port, *more)], cenv)
        out.append(res.stdout.splitlines())
        server.kill()
    return out[0], out[1]


def test_nonblocking_connect_with_listener_same_as_kernel(net: Net, sockops: str) -> None:
    kernel, wrapped = nb_with_listener(net, sockops, "peer")
    assert kernel[:6] == [
        "tcp4: OK", "nonblock: OK", "connect: EINPROGRESS", "pollout: ready",
        "soerror: OK", "soerror: OK",
    ]
    assert wrapped[:-1] == kernel[:-1]
    assert wrapped[-1].startswith("peer: 127.0.0.10 "), wrapped


def test_nonblocking_connect_nobody_listens_same_as_kernel(net: Net, sockops: str) -> None:
    kernel = net.run([sockops, "tcp4", *nb_script("127.0.0.1", net.free_port())],
                     net.kernel_env()).stdout.splitlines()
    wrapped = net.run([sockops, "tcp4", *nb_script("127.0.0.10", 7)],
                      net.env(20)).stdout.splitlines()
    # Linux loopback: EINPROGRESS, then the refusal in SO_ERROR (read once: then cleared).
    assert kernel == [
        "tcp4: OK", "nonblock: OK", "connect: EINPROGRESS", "pollout: ready",
        "soerror: ECONNREFUSED", "soerror: OK",
    ]
    assert wrapped == kernel


def test_connect_again_after_nonblocking_connect(net: Net, sockops: str) -> None:
    """Event loops that call connect() again to learn the outcome."""
    kernel, wrapped = nb_with_listener(net, sockops, "connect", "{host}", "{port}",
                                       "connect", "{host}", "{port}")
    # Connected: Linux says 0 once, then EISCONN; POSIX only says EISCONN. Either is fine.
    assert kernel[-1] == wrapped[-1] == "connect: EISCONN", (kernel, wrapped)
    assert wrapped[-2] in ("connect: OK", "connect: EISCONN"), wrapped
    # Refused and the error already collected: Linux says ECONNABORTED (it does not start
    # another attempt, which would make such a loop spin).
    script = ["connect", "{host}", "{port}"]
    kernel = net.run([sockops, "tcp4", *nb_script("127.0.0.1", net.free_port(), *script)],
                     net.kernel_env()).stdout.splitlines()
    wrapped = net.run([sockops, "tcp4", *nb_script("127.0.0.10", 7, *script)],
                      net.env(20)).stdout.splitlines()
    assert kernel[-1] == "connect: ECONNABORTED"
    assert wrapped == kernel


def test_unconnected_names_same_as_kernel(net: Net, sockops: str) -> None:
    script = ["tcp4", "name", "peer", "connect", "{h}", "{p}", "peer"]
    port = net.free_port()
    kernel = net.run([a.format(h="127.0.0.1", p=port) for a in [sockops, *script]],
                     net.kernel_env()).stdout.splitlines()
    wrapped = net.run([a.format(h="127.0.0.10", p=7) for a in [sockops, *script]],
                      net.env(20)).stdout.splitlines()
    assert kernel == ["tcp4: OK", "name: 0.0.0.0 0", "peer: ENOTCONN",
                      "connect: ECONNREFUSED", "peer: ENOTCONN"]
    assert wrapped == kernel


# --------------------------------------------------------------------------- bad configuration

ONE_TO_254 = "expected an integer from 1 to 254"
MTU_RANGE = "expected an integer from 512 to 32768"
MAXSOCK_RANGE = "expected an integer from 1 to 256000"
EXISTING = "expected an existing directory"

BAD_VALUES = [
    ("SOCKET_WRAPPER_DEFAULT_IFACE", "0", ONE_TO_254, "EINVAL"),
    ("SOCKET_WRAPPER_DEFAULT_IFACE", "255", ONE_TO_254, "EINVAL"),
    ("SOCKET_WRAPPER_DEFAULT_IFACE", "abc", ONE_TO_254, "EINVAL"),
    ("SOCKET_WRAPPER_DEFAULT_IFACE", "+10", ONE_TO_254, "EINVAL"),
    ("SOCKET_WRAPPER_DEFAULT_IFACE", " 10", ONE_TO_254, "EINVAL"),
    ("SOCKET_WRAPPER_MTU", "511", MTU_RANGE, "EINVAL"),
    ("SOCKET_WRAPPER_MTU", "32769", MTU_RANGE, "EINVAL"),
    ("SOCKET_WRAPPER_MTU", "abc", MTU_RANGE, "EINVAL"),
    ("SOCKET_WRAPPER_MTU", "1500x", MTU_RANGE, "EINVAL"),
    ("SOCKET_WRAPPER_MAX_SOCKETS", "0", MAXSOCK_RANGE, "EINVAL"),
    ("SOCKET_WRAPPER_MAX_SOCKETS", "256001", MAXSOCK_RANGE, "EINVAL"),
    ("SOCKET_WRAPPER_IPV4_NETWORK", "192.168.0.0", "expected 127.0.0.0 or 10.53.57.0", "EINVAL"),
    ("SOCKET_WRAPPER_DEBUGLEVEL", "4", "expected an integer from 0 to 3", "EINVAL"),
]

LINE = re.compile(r"^socket_wrapper\[(\d+)\]: (.*)$")


def check_failure(net: Net, sockops: str, env: dict[str, str], var: str, value: str,
                  reason: str, err: str) -> None:
    proc = net.start([sockops, "tcp4", "tcp6", "tcp4", "unix"], env)
    assert proc.wait() == 0, proc.describe()
    # Every inet socket() fails with the errno; AF_UNIX is untouched.
    assert proc.stdout == [f"tcp4: {err}", f"tcp6: {err}", f"tcp4: {err}", "unix: OK"], (
        proc.describe()
    )
    # Exactly one line on stderr, naming the variable, the value and what is allowed.
    assert len(proc.stderr) == 1, proc.describe()
    m = LINE.match(proc.stderr[0])
    assert m is not None, proc.stderr
    assert int(m.group(1)) == proc.pid
    assert m.group(2) == f'{var}="{value}": {reason}'
    # The CLI's validator says the same thing.
    from cwrap_py import config

    found = config.errors(env)
    assert [str(e) for e in found] == [m.group(2)]
    assert found[0].errno == getattr(errno, err)
    assert net.listing() == []


@pytest.mark.parametrize(("var", "value", "reason", "err"), BAD_VALUES,
                         ids=[f"{v[15:]}={x!r}" for v, x, _, _ in BAD_VALUES])
def test_bad_value_fails_closed(net: Net, sockops: str, var: str, value: str, reason: str,
                                err: str) -> None:
    check_failure(net, sockops, net.env(10, extra={var: value}), var, value, reason, err)


def test_dir_missing(net: Net, sockops: str) -> None:
    missing = str(net.dir / "missing")
    env = net.env(10, extra={"SOCKET_WRAPPER_DIR": missing})
    check_failure(net, sockops, env, "SOCKET_WRAPPER_DIR", missing,
                  f"no such directory; {EXISTING}", "ENOENT")


def test_dir_is_a_file(net: Net, sockops: str) -> None:
    afile = net.dir / "plainfile"
    afile.write_text("")
    env = net.env(10, extra={"SOCKET_WRAPPER_DIR": str(afile)})
    proc = net.start([sockops, "tcp4", "unix"], env)
    assert proc.wait() == 0
    assert proc.stdout == ["tcp4: ENOTDIR", "unix: OK"]
    assert len(proc.stderr) == 1, proc.describe()
    m = LINE.match(proc.stderr[0])
    assert m is not None
    assert m.group(2) == f'SOCKET_WRAPPER_DIR="{afile}": not a directory; {EXISTING}'


def _long_dir(base: Path) -> tuple[Path, Path]:
    """A directory whose real path is over 99 bytes, and a short symlink to it."""
    deep = base
    while len(str(deep)) <= 110:
        deep = deep / ("d" * 20)
    deep.mkdir(parents=True)
    link = base / "ln"
    link.symlink_to(deep)
    return deep, link


def test_dir_too_long(net: Net, sockops: str) -> None:
    deep, link = _long_dir(net.dir)
    reason = ("socket paths would not fit in sun_path; expected a directory path of at most "
              "99 bytes (or set SOCKET_WRAPPER_DIR_ALLOW_ORIG)")
    for value in (deep, link):
        env = net.env(10, extra={"SOCKET_WRAPPER_DIR": str(value)})
        proc = net.start([sockops, "tcp4"], env)
        assert proc.wait() == 0
        assert proc.stdout == ["tcp4: ENAMETOOLONG"], proc.describe()
        assert len(proc.stderr) == 1, proc.describe()
        m = LINE.match(proc.stderr[0])
        assert m is not None
        assert m.group(2) == f'SOCKET_WRAPPER_DIR="{value}": {reason}'


def test_dir_allow_orig_uses_value_as_given(net: Net, sockops: str) -> None:
    deep, link = _long_dir(net.dir)
    env = net.env(10, extra={"SOCKET_WRAPPER_DIR": str(link),
                             "SOCKET_WRAPPER_DIR_ALLOW_ORIG": "1"})
    server = net.start([sockops, "tcp4", "bind", "127.0.0.10", "7", "listen", "ready",
                        "accept", "recvall"], env)
    server.expect("ready")
    assert (deep / "T0A0007").exists()
    env20 = dict(env, SOCKET_WRAPPER_DEFAULT_IFACE="20")
    res = net.run([sockops, "tcp4", "connect", "127.0.0.10", "7", "send", "x", "close"], env20)
    assert "connect: OK" in res.stdout.splitlines(), (res.stdout, res.stderr)
    assert server.wait() == 0
    assert "data: x" in server.stdout
    assert server.stderr == []


def test_empty_values_mean_unset(net: Net, sockops: str) -> None:
    extra: dict[str, str | None] = {
        v: "" for v in ("SOCKET_WRAPPER_DEFAULT_IFACE", "SOCKET_WRAPPER_MTU",
                        "SOCKET_WRAPPER_MAX_SOCKETS", "SOCKET_WRAPPER_IPV4_NETWORK",
                        "SOCKET_WRAPPER_DEBUGLEVEL")
    }
    proc = net.start([sockops, "tcp4", "bind", "0.0.0.0", "80", "listen", "wait"],
                     net.env(None, extra=extra))
    proc.expect("wait")
    assert proc.stdout[:3] == ["tcp4: OK", "bind: OK", "listen: OK"]
    assert net.listing() == ["T010050"]
    assert proc.stderr == []


CHANGE_AT_RUN_TIME = textwrap.dedent(
    """
    import errno, os, socket, sys

    def attempt(what, fn):
        try:
            fn()
            print(what, "OK", flush=True)
        except OSError as e:
            print(what, errno.errorcode[e.errno], flush=True)

    held = socket.socket()
    attempt("bind-good", lambda: held.bind(("127.0.0.10", 7)))
    late = socket.socket()
    os.environ["SOCKET_WRAPPER_MTU"] = "abc"
    attempt("bind-bad", lambda: late.bind(("127.0.0.10", 8)))
    attempt("connect-bad", lambda: late.connect(("127.0.0.10", 7)))
    attempt("socket-bad", lambda: socket.socket().close())
    attempt("socket-bad-again", lambda: socket.socket().close())
    os.environ["SOCKET_WRAPPER_MTU"] = "1"
    attempt("socket-other-bad", lambda: socket.socket().close())
    os.environ["SOCKET_WRAPPER_MTU"] = "9000"
    attempt("bind-good-again", lambda: late.bind(("127.0.0.10", 8)))
    os.environ["SOCKET_WRAPPER_DIR"] = sys.argv[1]
    other = socket.socket()
    attempt("bind-other-dir", lambda: other.bind(("127.0.0.10", 9)))
    print("wait", flush=True)
    sys.stdin.readline()
    """
)


def test_variables_reread_at_run_time(net: Net, tmp_path: Path) -> None:
    other = Path(tmp_path / "other")
    other.mkdir()
    if len(str(other)) > 90:
        pytest.skip("tmp_path too long for a socket directory")
    proc = net.start([sys.executable, "-c", CHANGE_AT_RUN_TIME, str(other)], net.env(10))
    proc.expect("wait")
    assert proc.stdout[:-1] == [
        "bind-good OK", "bind-bad EINVAL", "connect-bad EINVAL", "socket-bad EINVAL",
        "socket-bad-again EINVAL", "socket-other-bad EINVAL", "bind-good-again OK",
        "bind-other-dir OK",
    ], proc.describe()
    # One line per distinct bad value (stderr is read by another thread: give it a moment).
    deadline = time.monotonic() + 5
    while len(proc.stderr) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [LINE.sub(r"\2", ln) for ln in proc.stderr] == [
        f'SOCKET_WRAPPER_MTU="abc": {MTU_RANGE}',
        f'SOCKET_WRAPPER_MTU="1": {MTU_RANGE}',
    ], proc.describe()
    assert sorted(os.listdir(net.dir)) == ["T0A0007", "T0A0008"]
    assert os.listdir(other) == ["T0A0009"]
