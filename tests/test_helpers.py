"""cwrap_py.helpers: enabled() is true only under the real, active preload."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cwrap_py
from cwrap_py import helpers, native

PKG_ROOT = str(Path(cwrap_py.__file__).resolve().parent.parent)
PROBE = (
    "import os; from cwrap_py import helpers; "
    "helpers.indicate_no_inet_fd(0); helpers.indicate_no_inet_fd(12345); "
    "print(helpers.enabled())"
)


def _probe(preload: bool, swdir: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCKET_WRAPPER_")}
    env.pop("LD_PRELOAD", None)
    env["PYTHONPATH"] = PKG_ROOT
    if preload:
        env["LD_PRELOAD"] = str(native.library_path())
    if swdir is not None:
        env["SOCKET_WRAPPER_DIR"] = swdir
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_in_this_process_without_preload() -> None:
    if "libsocket_wrapper.so" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("the test run itself is preloaded")
    helpers.indicate_no_inet_fd(12345)
    assert helpers.enabled() is False


@pytest.mark.parametrize(
    ("preload", "with_dir", "expected"),
    [(True, True, "True"), (False, True, "False"), (True, False, "False")],
)
def test_enabled(tmp_path: Path, preload: bool, with_dir: bool, expected: str) -> None:
    assert _probe(preload, str(tmp_path) if with_dir else None) == expected


def test_enabled_false_for_a_bad_dir(tmp_path: Path) -> None:
    assert _probe(True, str(tmp_path / "missing")) == "False"


def test_enabled_under_swrap_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCKET_WRAPPER_")}
    env.pop("LD_PRELOAD", None)
    env["PYTHONPATH"] = PKG_ROOT
    proc = subprocess.run(
        [sys.executable, "-m", "cwrap_py", "run", "--dir", str(tmp_path), "--",
         sys.executable, "-c", PROBE],
        env=env, capture_output=True, text=True, timeout=30,
    )
    assert (proc.returncode, proc.stdout) == (0, "True\n"), proc.stderr
