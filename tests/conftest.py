"""Shared fixtures for the integration tests of the interposer.

Every test that starts processes gets a ``Net``: a fresh, short SOCKET_WRAPPER_DIR, the
library to preload, and a register of the processes it started. Every wait is bounded, and
teardown kills each process it started by PID, then removes the directory.
"""

from __future__ import annotations

import glob
import os
import queue
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
PROGS_SRC = TESTS / "progs"

# Default bound for any single wait in the integration tests (seconds).
TIMEOUT = 20.0

# Ports the wrapper hands out for implicit binds and port 0 (swrap_abi.h).
EPHEMERAL = range(32768, 61000)


# --------------------------------------------------------------------------- libraries


def _our_library() -> Path | None:
    override = os.environ.get("CWRAP_TEST_LIBRARY")
    if override:
        return Path(override)
    try:
        from cwrap_py import native

        path = Path(native.library_path())
        if path.is_file():
            return path
    except Exception:  # noqa: BLE001 - package not installed or libraries not built into it
        pass
    path = REPO / "build" / "libsocket_wrapper.so"
    return path if path.is_file() else None


def _is_debian_cwrap(path: str) -> bool:
    name = os.path.basename(path)
    return (
        name.startswith("libsocket_wrapper.so")
        and "/usr/local/" not in path
        and not path.startswith(str(REPO))
        and os.path.isfile(path)
    )


def _debian_library() -> Path | None:
    """Debian's libsocket-wrapper (cwrap 1.3.5), found via dpkg, a glob or ldconfig."""
    candidates: list[str] = []
    try:
        out = subprocess.run(
            ["dpkg-query", "-L", "libsocket-wrapper"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
        candidates += out.split()
    except (OSError, subprocess.TimeoutExpired):
        pass
    candidates += sorted(glob.glob("/usr/lib/*/libsocket_wrapper.so*"))
    candidates += sorted(glob.glob("/usr/lib/libsocket_wrapper.so*"))
    try:
        out = subprocess.run(
            ["ldconfig", "-p"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        candidates += [line.split("=>")[-1].strip() for line in out.splitlines() if "=>" in line]
    except (OSError, subprocess.TimeoutExpired):
        pass
    for cand in candidates:
        if _is_debian_cwrap(cand):
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def libswrap() -> Path:
    """Our libsocket_wrapper.so: the installed package's, else build/ of this tree."""
    path = _our_library()
    if path is None or not path.is_file():
        pytest.fail(
            "libsocket_wrapper.so not found: neither cwrap_py.native.library_path() nor "
            f"{REPO / 'build' / 'libsocket_wrapper.so'} exists; run `make` first"
        )
    return path


@pytest.fixture(scope="session")
def libcwrap() -> Path:
    """Debian's libsocket-wrapper (the reference cwrap implementation)."""
    path = _debian_library()
    if path is None:
        pytest.skip(
            "Debian's libsocket-wrapper is not installed (apt-get install libsocket-wrapper); "
            "interop with cwrap cannot be tested"
        )
    return path


# --------------------------------------------------------------------------- helper programs


def compile_c(src: Path, exe: Path, flags: Sequence[str], timeout: float = 120) -> Path:
    """src compiled with $CC (default cc) and flags into exe; the test fails if it cannot be."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        pytest.fail(f"no C compiler ({cc}) to build {src.name}")
    res = subprocess.run(
        [cc, *flags, "-o", str(exe), str(src)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if res.returncode != 0:
        pytest.fail(f"compiling {src.name} with {' '.join(flags)} failed:\n{res.stderr}")
    return exe


@pytest.fixture(scope="session")
def progs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """tests/progs/*.c compiled once per session; name (file stem) -> executable."""
    out = tmp_path_factory.mktemp("progs")
    flags = ["-O2", "-D_FORTIFY_SOURCE=2", "-Wall", "-Wextra", "-Werror"]
    return {
        src.stem: compile_c(src, out / src.stem, flags)
        for src in sorted(PROGS_SRC.glob("*.c"))
    }


@pytest.fixture(scope="session")
def sockops(progs: dict[str, Path]) -> str:
    return str(progs["sockops"])


# --------------------------------------------------------------------------- processes


class Proc:
    """A started process whose stdout/stderr are read by threads into line queues."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], name: str = "") -> None:
        self.argv = list(argv)
        self.name = name or os.path.basename(self.argv[0])
        self.popen = subprocess.Popen(
            self.argv,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.pid = self.popen.pid
        self.out_lines: list[str] = []
        self.err_lines: list[str] = []
        self._out_q: queue.Queue[str | None] = queue.Queue()
        self._err_q: queue.Queue[str | None] = queue.Queue()
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self._threads = [
            threading.Thread(
                target=self._pump, args=(self.popen.stdout, self.out_lines, self._out_q),
                daemon=True,
            ),
            threading.Thread(
                target=self._pump, args=(self.popen.stderr, self.err_lines, self._err_q),
                daemon=True,
            ),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream: IO[bytes], lines: list[str], q: queue.Queue[str | None]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            q.put(line)
        q.put(None)

    def describe(self) -> str:
        self._join(0.5)
        out = "\n".join(self.out_lines)
        err = "\n".join(self.err_lines)
        return (
            f"[{self.name} pid {self.pid} rc {self.popen.poll()}]\n"
            f"--- stdout\n{out}\n--- stderr\n{err}"
        )

    def _expect(self, q: queue.Queue[str | None], what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timeout waiting for {what!r} from {self.describe()}")
            try:
                line = q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                q.put(None)
                raise AssertionError(f"EOF before {what!r} from {self.describe()}")
            if line.startswith(what):
                return line

    def expect(self, prefix: str, timeout: float = TIMEOUT) -> str:
        """Next stdout line starting with prefix (earlier lines are skipped)."""
        return self._expect(self._out_q, prefix, timeout)

    def expect_err(self, prefix: str, timeout: float = TIMEOUT) -> str:
        return self._expect(self._err_q, prefix, timeout)

    def send(self, text: str = "\n") -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(text.encode())
        self.popen.stdin.flush()

    def close_stdin(self) -> None:
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            self.popen.stdin.close()

    def _join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Wait for exit (bounded); returns the exit status, output fully collected."""
        self.close_stdin()
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"did not exit within {timeout}s: {self.describe()}") from None
        self._join(5.0)
        return rc

    @property
    def stdout(self) -> list[str]:
        return list(self.out_lines)

    @property
    def stderr(self) -> list[str]:
        return list(self.err_lines)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def clean_env(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """os.environ without any SOCKET_WRAPPER_* or LD_PRELOAD, plus extra (None = remove)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SOCKET_WRAPPER_") and k != "LD_PRELOAD"
    }
    return with_extra(env, extra)


def with_extra(env: dict[str, str], extra: Mapping[str, str | None] | None) -> dict[str, str]:
    """env with each variable of extra set, or removed where its value is None."""
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


class Net:
    """One emulated network: a fresh directory, a library, and the processes in it.

    Processes on kernel loopback (differential runs) are started through it too, with
    kernel_env(), so that teardown kills them as well.
    """

    TIMEOUT = TIMEOUT
    EPHEMERAL = EPHEMERAL

    @staticmethod
    def kernel_env(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """Environment of an unwrapped program: no preload, no SOCKET_WRAPPER_*."""
        return clean_env(extra)

    @staticmethod
    def free_port(host: str = "127.0.0.1") -> int:
        return free_kernel_port(host)

    @staticmethod
    def parse_addr(line: str) -> tuple[str, int]:
        return parse_addr(line)

    def __init__(self, directory: Path, lib: Path) -> None:
        self.dir = directory
        self.lib = lib
        self.procs: list[Proc] = []

    def env(
        self,
        iface: int | None = None,
        *,
        lib: Path | None = None,
        network: str | None = None,
        extra: Mapping[str, str | None] | None = None,
    ) -> dict[str, str]:
        """Environment of a wrapped program (iface None: SOCKET_WRAPPER_DEFAULT_IFACE unset)."""
        env = clean_env()
        env["LD_PRELOAD"] = str(lib or self.lib)
        env["SOCKET_WRAPPER_DIR"] = str(self.dir)
        if iface is not None:
            env["SOCKET_WRAPPER_DEFAULT_IFACE"] = str(iface)
        if network is not None:
            env["SOCKET_WRAPPER_IPV4_NETWORK"] = network
        return with_extra(env, extra)

    def start(self, argv: Sequence[str], env: Mapping[str, str], name: str = "") -> Proc:
        proc = Proc(argv, env, name)
        self.procs.append(proc)
        return proc

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        input: str | None = None,  # noqa: A002
        timeout: float = TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run to completion with a bounded wait (the child is killed on timeout)."""
        return subprocess.run(
            list(argv),
            env=dict(env),
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )

    def path(self, name: str) -> Path:
        return self.dir / name

    def wait_file(self, name: str, timeout: float = TIMEOUT, proc: Proc | None = None) -> Path:
        """Poll until the socket file `name` exists in the directory (bounded).

        With proc given, fail early if that process exits before the file appears.
        """
        path = self.dir / name
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists():
                return path
            if proc is not None and not proc.alive():
                raise AssertionError(f"{name} never appeared; {proc.describe()}")
            time.sleep(0.01)
        listing = sorted(os.listdir(self.dir))
        procs = "\n".join(p.describe() for p in self.procs)
        raise AssertionError(f"{name} did not appear in {self.dir} (has {listing})\n{procs}")

    def wait_gone(self, name: str, timeout: float = TIMEOUT) -> None:
        path = self.dir / name
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not path.exists():
                return
            time.sleep(0.01)
        raise AssertionError(f"{name} still exists in {self.dir}")

    def is_socket(self, name: str) -> bool:
        try:
            return stat.S_ISSOCK((self.dir / name).stat().st_mode)
        except FileNotFoundError:
            return False

    def listing(self) -> list[str]:
        """What is in the directory, but the library's shared TIME_WAIT marks (.timewait)."""
        return sorted(n for n in os.listdir(self.dir) if n != ".timewait")

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
        self.procs.clear()


def short_tmpdir(prefix: str = "swt-") -> Path:
    """A short directory under /tmp: socket paths must fit in sun_path (99 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture
def rendezvous() -> Iterator[Path]:
    """A short directory (outside SOCKET_WRAPPER_DIR) for the Unix sockets fds travel over."""
    d = short_tmpdir("swfd-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def net(libswrap: Path) -> Iterator[Net]:
    directory = short_tmpdir()
    n = Net(directory, libswrap)
    try:
        yield n
    finally:
        n.close()
        shutil.rmtree(directory, ignore_errors=True)


def free_kernel_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on kernel loopback right now (nothing listens on it)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def netns() -> list[str]:
    """Command prefix that runs a program in a new, empty network namespace.

    Used for every test that names a non-loopback address (192.0.2.1, 2001:db8::1, the
    10.53.57.0 network): if the interposer were broken, the traffic must still not leave the
    machine. Socket files in the directory stay reachable across namespaces.
    """
    prefix = ["unshare", "--net", "--"]
    try:
        ok = subprocess.run(
            [*prefix, "true"], capture_output=True, timeout=10, check=False
        ).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        pytest.skip(
            "cannot create a network namespace (unshare --net); refusing to send to "
            "non-loopback addresses without one"
        )
    return prefix


def parse_addr(line: str) -> tuple[str, int]:
    """'peer: 127.0.0.10 7' -> ('127.0.0.10', 7)."""
    _, rest = line.split(": ", 1)
    host, port = rest.split()
    return host, int(port)
