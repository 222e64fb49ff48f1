"""The swrap command: options, environment, exit statuses, one-line errors."""

from __future__ import annotations

import os
import select
import shlex
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

import cwrap_py
from cwrap_py import native
from cwrap_py.cli import swrap as swrap_group

TIMEOUT = 30
PKG_ROOT = str(Path(cwrap_py.__file__).resolve().parent.parent)


def _env(extra: Mapping[str, str] | None = None, tmpdir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCKET_WRAPPER_")}
    env.pop("LD_PRELOAD", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PKG_ROOT, env.get("PYTHONPATH")]))
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    env.update(extra or {})
    return env


def swrap(
    *args: str, extra: Mapping[str, str] | None = None, tmpdir: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m cwrap_py ARGS` (the swrap command) with a bounded wait."""
    return subprocess.run(
        [sys.executable, "-m", "cwrap_py", *args], env=_env(extra, tmpdir), cwd=cwd,
        capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], status: int, line: str) -> None:
    assert proc.returncode == status, proc.stderr
    assert proc.stderr == line + "\n"
    assert "Traceback" not in proc.stderr


def test_preload_prints_the_library() -> None:
    proc = swrap("preload")
    assert proc.returncode == 0, proc.stderr
    path = proc.stdout.strip()
    assert os.path.isabs(path) and os.path.isfile(path)
    assert path == str(native.library_path())
    assert os.path.basename(path) == "libsocket_wrapper.so"


@pytest.mark.parametrize(
    ("args", "out"),
    [
        (["127.0.0.10:7", "--tcp"], "T0A0007"),
        (["127.0.0.10:7"], "T0A0007"),
        (["127.0.0.10:53", "--udp"], "U0A0035"),
        (["[fd00::5357:5f0a]:7", "--tcp"], "X0A0007"),
        (["[fd00::5357:5f0a]:53", "--udp"], "Y0A0035"),
        (["--network", "10.53.57.0", "10.53.57.100:80"], "T640050"),
        (["T0A0007"], "tcp 127.0.0.10:7"),
        (["Y0A0035"], "udp [fd00::5357:5f0a]:53"),
        (["U0A0035", "X640050"], "udp 127.0.0.10:53\ntcp [fd00::5357:5f64]:80"),
        (["--network", "10.53.57.0", "T0A0007"], "tcp 10.53.57.10:7"),
    ],
)
def test_addr(args: list[str], out: str) -> None:
    env = {"SOCKET_WRAPPER_IPV4_NETWORK": ""}
    result = CliRunner().invoke(swrap_group, ["addr", *args], env=env)
    assert result.exit_code == 0, result.output
    assert result.output == out + "\n"


def test_addr_network_from_environment() -> None:
    env = {"SOCKET_WRAPPER_IPV4_NETWORK": "10.53.57.0"}
    assert swrap("addr", "T0A0007", extra=env).stdout == "tcp 10.53.57.10:7\n"
    proc = swrap("addr", "T0A0007", extra={"SOCKET_WRAPPER_IPV4_NETWORK": "1.2.3.0"})
    assert_one_line_error(
        proc, 2, 'swrap: SOCKET_WRAPPER_IPV4_NETWORK="1.2.3.0": expected 127.0.0.0 or 10.53.57.0'
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["192.0.2.1:7"], "192.0.2.1 is not an emulated address"),
        (["127.0.0.10"], "expected ADDRESS:PORT"),
        (["T000007"], "interface 0 out of range"),
        (["--network", "10.0.0.0", "T0A0007"], 'SOCKET_WRAPPER_IPV4_NETWORK="10.0.0.0"'),
    ],
)
def test_addr_bad_input(args: list[str], fragment: str) -> None:
    proc = swrap("addr", *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("swrap: ") and proc.stderr.count("\n") == 1
    assert fragment in proc.stderr and proc.stdout == ""


def test_usage_errors_are_one_line() -> None:
    for args in (["nosuchcommand"], ["addr"], ["run", "--mtu"], ["ls", "--bogus"]):
        proc = swrap(*args)
        assert proc.returncode == 2, args
        assert proc.stderr.startswith("swrap: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_run_creates_a_private_dir(tmp_path: Path) -> None:
    proc = swrap("run", "--", "sh", "-c", 'echo "$SOCKET_WRAPPER_DIR"', tmpdir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    path = proc.stdout.strip()
    assert proc.stderr == f"swrap: SOCKET_WRAPPER_DIR={path}\n"
    assert Path(path).parent == tmp_path and Path(path).name.startswith("swrap-")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700  # kept for others to join


def test_run_joins_a_dir_and_sets_the_variables(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    script = 'echo "$SOCKET_WRAPPER_DIR|$SOCKET_WRAPPER_DEFAULT_IFACE|$SOCKET_WRAPPER_IPV4_NETWORK"'
    script += '; echo "$SOCKET_WRAPPER_MTU|$SOCKET_WRAPPER_PCAP_FILE|$LD_PRELOAD"'
    proc = swrap(
        "run", "--dir", "net", "--iface", "10", "--network", "10.53.57.0", "--mtu", "9000",
        "--pcap", "t.pcap", "--", "sh", "-c", script, cwd=tmp_path, tmpdir=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lib = str(native.library_path())
    assert proc.stdout.splitlines() == [
        f"{tmp_path / 'net'}|10|10.53.57.0", f"9000|{tmp_path / 't.pcap'}|{lib}"
    ]
    assert sorted(os.listdir(tmp_path)) == ["net"]


def test_run_prepends_to_ld_preload(tmp_path: Path) -> None:
    other = str(native.noop_library_path())
    proc = swrap("run", "--dir", str(tmp_path), "--", "sh", "-c", 'echo "$LD_PRELOAD"',
                 extra={"LD_PRELOAD": other})
    assert proc.stdout.strip() == f"{native.library_path()} {other}"


def test_run_without_double_dash(tmp_path: Path) -> None:
    proc = swrap("run", "--dir", str(tmp_path), "sh", "-c", "echo $0 $1", "x", "-n")
    assert (proc.returncode, proc.stdout) == (0, "x -n\n")


@pytest.mark.parametrize(("script", "status"), [("exit 3", 3), ("kill -TERM $$", 128 + 15)])
def test_run_exit_status(tmp_path: Path, script: str, status: int) -> None:
    assert swrap("run", "--dir", str(tmp_path), "--", "sh", "-c", script).returncode == status


def test_run_command_not_found(tmp_path: Path) -> None:
    proc = swrap("run", "--", "no-such-command-swrap", tmpdir=tmp_path)
    assert proc.returncode == 127
    assert proc.stderr.splitlines()[-1] == "swrap: no-such-command-swrap: command not found"
    assert "Traceback" not in proc.stderr
    assert os.listdir(tmp_path) == []


def test_run_missing_command() -> None:
    proc = swrap("run", "--iface", "3")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_run_forwards_sigterm(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "cwrap_py", "run", "--dir", str(tmp_path), "--",
         "sh", "-c", "echo $$; exec sleep 30"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    pid = 0
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], TIMEOUT)
        assert ready, "the command did not start"
        pid = int(child.stdout.readline())
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=TIMEOUT) == 128 + signal.SIGTERM
    finally:
        for p in (pid, child.pid):
            if p:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        child.wait(timeout=TIMEOUT)
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]


IFACE = "expected an integer from 1 to 254"
BAD_OPTIONS = [
    (["--iface", "0"], {}, f'SOCKET_WRAPPER_DEFAULT_IFACE="0": {IFACE}'),
    (["--iface", "255"], {}, f'SOCKET_WRAPPER_DEFAULT_IFACE="255": {IFACE}'),
    (["--iface", "abc"], {}, f'SOCKET_WRAPPER_DEFAULT_IFACE="abc": {IFACE}'),
    (["--mtu", "511"], {}, 'SOCKET_WRAPPER_MTU="511": expected an integer from 512 to 32768'),
    (["--network", "10.0.0.0"], {},
     'SOCKET_WRAPPER_IPV4_NETWORK="10.0.0.0": expected 127.0.0.0 or 10.53.57.0'),
    ([], {"SOCKET_WRAPPER_MAX_SOCKETS": "0"},
     'SOCKET_WRAPPER_MAX_SOCKETS="0": expected an integer from 1 to 256000'),
    ([], {"SOCKET_WRAPPER_DEBUGLEVEL": "9"},
     'SOCKET_WRAPPER_DEBUGLEVEL="9": expected an integer from 0 to 3'),
    ([], {"SOCKET_WRAPPER_MTU": "40000"},
     'SOCKET_WRAPPER_MTU="40000": expected an integer from 512 to 32768'),
]


@pytest.mark.parametrize("command", ["run", "env"])
@pytest.mark.parametrize(("args", "extra", "message"), BAD_OPTIONS)
def test_bad_values_are_refused(
    tmp_path: Path, command: str, args: list[str], extra: dict[str, str], message: str
) -> None:
    tail = ["--", "touch", str(tmp_path / "ran")] if command == "run" else []
    proc = swrap(command, *args, *tail, extra=extra, tmpdir=tmp_path)
    assert_one_line_error(proc, 2, f"swrap: {message}")
    assert proc.stdout == "" and os.listdir(tmp_path) == []


def test_bad_dir_is_refused(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    proc = swrap("run", "--dir", missing, "--", "true")
    assert_one_line_error(
        proc, 2,
        f'swrap: SOCKET_WRAPPER_DIR="{missing}": no such directory; expected an existing directory',
    )
    (tmp_path / "file").write_text("")
    proc = swrap("env", "--dir", str(tmp_path / "file"))
    assert proc.returncode == 2 and "not a directory; expected an existing directory" in proc.stderr


def test_env_prints_export_lines(tmp_path: Path) -> None:
    odd = tmp_path / "it's a dir"
    odd.mkdir()
    proc = swrap("env", "--dir", str(odd), "--iface", "20")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split("=")[0] for line in lines] == [
        "export SOCKET_WRAPPER_DIR", "export SOCKET_WRAPPER_DEFAULT_IFACE", "export LD_PRELOAD"
    ]
    assert all(line.split("=", 1)[1].startswith("'") for line in lines)
    shell = subprocess.run(
        ["sh", "-c", proc.stdout + 'printf "%s|%s|%s" "$SOCKET_WRAPPER_DIR" '
         '"$SOCKET_WRAPPER_DEFAULT_IFACE" "$LD_PRELOAD"'],
        env=_env(), capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert shell.stdout == f"{odd}|20|{native.library_path()}"
    assert shlex.split(lines[0]) == ["export", f"SOCKET_WRAPPER_DIR={odd}"]


def test_env_creates_a_dir(tmp_path: Path) -> None:
    proc = swrap("env", tmpdir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (made,) = os.listdir(tmp_path)
    assert proc.stderr == f"swrap: SOCKET_WRAPPER_DIR={tmp_path / made}\n"
    assert f"export SOCKET_WRAPPER_DIR='{tmp_path / made}'\n" in proc.stdout
    assert stat.S_IMODE(os.stat(tmp_path / made).st_mode) == 0o700


def test_ls(tmp_path: Path) -> None:
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    live6 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        live.bind(str(tmp_path / "T0A0007"))
        live.listen()
        live6.bind(str(tmp_path / "X640050"))
        stale.bind(str(tmp_path / "U0A0035"))
        stale.close()
        for junk in ("Y0A0035", "notes.txt", "t0a0007"):  # a regular file, not socket-shaped
            (tmp_path / junk).write_text("")
        assert swrap("ls", str(tmp_path)).stdout == (
            "tcp 127.0.0.10:7  T0A0007\ntcp [fd00::5357:5f64]:80  X640050\n"
        )
        proc = swrap("ls", "--all", "--network", "10.53.57.0",
                     extra={"SOCKET_WRAPPER_DIR": str(tmp_path)})
        assert proc.stdout == (
            "tcp 10.53.57.10:7  T0A0007\nudp 10.53.57.10:53  U0A0035 (stale)\n"
            "tcp [fd00::5357:5f64]:80  X640050\n"
        )
    finally:
        live.close()
        live6.close()
    assert swrap("ls", str(tmp_path)).stdout == ""


def test_ls_errors(tmp_path: Path) -> None:
    assert_one_line_error(swrap("ls"), 2, "swrap: no DIR given and SOCKET_WRAPPER_DIR is not set")
    missing = tmp_path / "missing"
    assert_one_line_error(swrap("ls", str(missing)), 2, f'swrap: "{missing}": no such directory')
