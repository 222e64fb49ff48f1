"""Shared helpers for the fd-lifetime, thread, process, libc-variant and variable tests.

Loaded by those test modules with ``pytest_plugins = ["procsupport"]`` (conftest.py stays as it
is). It provides:

- the ``cw`` fixture: compiles the C programs of tests/progs with the flags of a sanitizer run,
  builds the environment of wrapped and unwrapped runs, runs programs with bounded waits and
  fails on any sanitizer or valgrind report;
- the markers ``sanitize`` (C-level and threaded stress tests, run by ``make check-asan`` and
  ``make check-tsan``) and ``helgrind`` (threaded tests, run by ``make check-helgrind``). A test
  opts in by using the fixture of the same name, e.g.
  ``@pytest.mark.usefixtures("sanitize")``; the marker is then added at collection time, so
  ``pytest -m sanitize`` selects it and no unregistered marker is ever evaluated.

Variables read (set by mk/sanitize.mk; all optional):

  CWRAP_TEST_LIBRARY    the library to preload (read by conftest.py)
  CWRAP_TEST_SANITIZER  asan | tsan | helgrind: a checked run (smaller workloads, longer waits)
  CWRAP_TEST_PRELOAD    libraries preloaded before ours (the sanitizer runtime), ':'-separated
  CWRAP_TEST_CFLAGS     extra flags for the test programs (e.g. -fsanitize=address)
  CWRAP_TEST_TOOL       command prefix for the test programs (e.g. valgrind --tool=helgrind)
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import PROGS_SRC, TIMEOUT, Proc, clean_env, compile_c

if TYPE_CHECKING:
    from conftest import Net

MARKERS = {
    "sanitize": "C-level and threaded stress tests run under ASan/TSan (make check-asan/-tsan)",
    "helgrind": "threaded C tests run under valgrind --tool=helgrind (make check-helgrind)",
}

# What a sanitizer or valgrind prints when it found something.
REPORT = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer)"
    r"|WARNING: (ThreadSanitizer|AddressSanitizer)"
    r"|SUMMARY: (Address|Thread|Leak|UndefinedBehavior)Sanitizer"
    r"|runtime error: "
    r"|==\d+== (Possible data race|Lock order|Thread #\d+ unlocked|Thread #\d+: |"
    r"Invalid (read|write)|Conditional jump|ERROR SUMMARY: [1-9])"
)


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        for marker in MARKERS:
            if marker in names and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


@pytest.fixture
def sanitize() -> None:
    """Opt-in fixture: the test belongs to the sanitizer runs (adds the marker)."""


@pytest.fixture
def helgrind() -> None:
    """Opt-in fixture: the test belongs to the helgrind run (adds the marker)."""


class CTools:
    """Compile, start and check the C test programs, sanitizer-aware."""

    BASE_CFLAGS = ["-O2", "-D_FORTIFY_SOURCE=2", "-Wall", "-Wextra", "-Werror", "-pthread"]

    def __init__(self, outdir: Path, lib: Path) -> None:
        self.outdir = outdir
        self.lib = lib
        self.sanitizer = os.environ.get("CWRAP_TEST_SANITIZER", "")
        self.cflags = shlex.split(os.environ.get("CWRAP_TEST_CFLAGS", ""))
        self.preload_first = [
            p for p in os.environ.get("CWRAP_TEST_PRELOAD", "").split(":") if p
        ]
        self.tool = shlex.split(os.environ.get("CWRAP_TEST_TOOL", ""))
        self._built: dict[str, Path] = {}

    # ----------------------------------------------------------------- build

    @property
    def checked(self) -> bool:
        """A sanitizer or valgrind run: programs are slower, workloads are scaled down."""
        return bool(self.sanitizer or self.tool)

    def prog(self, name: str, extra: Sequence[str] = ()) -> str:
        """tests/progs/<name>.c compiled (once per flag set) with the run's flags."""
        flags = [*self.BASE_CFLAGS, *self.cflags, *extra]
        key = name + " " + " ".join(flags)
        if key in self._built:
            return str(self._built[key])
        tag = hashlib.sha1(key.encode()).hexdigest()[:8]
        exe = compile_c(PROGS_SRC / f"{name}.c", self.outdir / f"{name}-{tag}", flags, 180)
        self._built[key] = exe
        return str(exe)

    # ----------------------------------------------------------------- environments

    def _sanitizer_env(self, env: dict[str, str]) -> dict[str, str]:
        if self.checked:
            # DESIGN.md §5: sanitizer and valgrind runs set SOCKET_WRAPPER_DISABLE_DEEPBIND.
            env.setdefault("SOCKET_WRAPPER_DISABLE_DEEPBIND", "1")
        return env

    def wenv(
        self,
        net: Net,
        iface: int | None = None,
        extra: Mapping[str, str | None] | None = None,
    ) -> dict[str, str]:
        """Environment of a wrapped program (sanitizer runtime preloaded first if needed)."""
        env = net.env(iface, extra=extra)
        env["LD_PRELOAD"] = ":".join([*self.preload_first, env["LD_PRELOAD"]])
        if extra is None or "SOCKET_WRAPPER_DISABLE_DEEPBIND" not in extra:
            self._sanitizer_env(env)
        return env

    def kenv(self, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """Environment of the same program on kernel loopback (no preload of ours)."""
        env = clean_env(extra)
        if self.preload_first:
            env["LD_PRELOAD"] = ":".join(self.preload_first)
        return env

    # ----------------------------------------------------------------- running

    def timeout(self, seconds: float) -> float:
        """A bound scaled for checked runs (ASan ~2x, TSan ~10x, helgrind ~50x slower)."""
        factor = {"": 1.0, "asan": 3.0, "tsan": 8.0, "helgrind": 30.0}.get(self.sanitizer, 10.0)
        if self.tool and self.sanitizer == "":
            factor = 30.0
        return seconds * factor

    def scale(self, normal: int, checked: int) -> int:
        return checked if self.checked else normal

    def argv(self, prog: str, *args: object) -> list[str]:
        return [*self.tool, prog, *(str(a) for a in args)]

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        timeout: float = TIMEOUT,
        input: str = "",  # noqa: A002
    ) -> subprocess.CompletedProcess[str]:
        """Run to completion; the wait is bounded (scaled) and the child killed on timeout."""
        try:
            return subprocess.run(
                list(argv), env=dict(env), input=input, capture_output=True, text=True,
                errors="replace", timeout=self.timeout(timeout), check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
            raise AssertionError(
                f"{' '.join(argv)} did not finish within {self.timeout(timeout)}s\n"
                f"--- stdout\n{out[-4000:]}\n--- stderr\n{err[-4000:]}"
            ) from None

    @staticmethod
    def reports(text: str) -> list[str]:
        return [line for line in text.splitlines() if REPORT.search(line)]

    def check(self, res: subprocess.CompletedProcess[str], what: str = "") -> list[str]:
        """Exit status 0, no FAIL line and no sanitizer report; returns stdout lines."""
        label = what or " ".join(str(a) for a in res.args)
        detail = f"{label}: rc {res.returncode}\n--- stdout\n{res.stdout[-6000:]}\n" \
                 f"--- stderr\n{res.stderr[-6000:]}"
        found = self.reports(res.stderr)
        assert not found, f"sanitizer/valgrind report in {detail}"
        fails = [line for line in res.stdout.splitlines() if line.startswith("FAIL")]
        assert not fails, f"{len(fails)} failed check(s): {fails[:20]}\n{detail}"
        assert res.returncode == 0, detail
        return res.stdout.splitlines()

    def check_proc(self, proc: Proc, timeout: float = TIMEOUT) -> list[str]:
        """Like check() for a process started with Net.start (waits, bounded)."""
        rc = proc.wait(self.timeout(timeout))
        text = "\n".join(proc.stderr)
        found = self.reports(text)
        assert not found, f"sanitizer/valgrind report: {proc.describe()}"
        fails = [line for line in proc.stdout if line.startswith("FAIL")]
        assert not fails, f"failed check(s): {fails[:20]}\n{proc.describe()}"
        assert rc == 0, proc.describe()
        return proc.stdout


@pytest.fixture(scope="session")
def cw(libswrap: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CTools]:
    yield CTools(tmp_path_factory.mktemp("cprogs"), libswrap)


def swrap_name(kind: str, iface: int, port: int) -> str:
    """Socket file name: kind is T U X Y."""
    return "%c%02X%04X" % (kind, iface, port)


def long_real_dir(base: Path, min_len: int = 120) -> Path:
    """A directory under base whose path is longer than min_len bytes."""
    path = base
    i = 0
    while len(str(path)) <= min_len:
        path = path / f"long-component-{i:02d}-xxxxxxxxxxxxxxxx"
        i += 1
    path.mkdir(parents=True)
    return path
