"""`make install` and the helper API as a C program sees it (issue 2, items 1 and 4)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = r"""
#include <stdio.h>
#include <sys/socket.h>
#include <socket_wrapper.h>

int main(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	printf("enabled=%d\n", socket_wrapper_enabled() ? 1 : 0);
	socket_wrapper_indicate_no_inet_fd(fd);
	return fd < 0;
}
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("destdir")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        ["make", "-s", "-C", str(ROOT), f"BUILD={build}", "PREFIX=/opt/sw", f"DESTDIR={dest}",
         "install"],
        check=True, capture_output=True, timeout=300,
    )
    return dest / "opt/sw"


def test_install_lays_out_libraries_header_pkgconfig_and_man_pages(installed: Path) -> None:
    for rel in ("lib/libsocket_wrapper.so", "lib/libsocket_wrapper_noop.so",
                "include/socket_wrapper.h", "lib/pkgconfig/socket_wrapper.pc",
                "lib/pkgconfig/socket_wrapper_noop.pc", "share/man/man1/socket_wrapper.1",
                "share/man/man1/swrap.1"):
        assert (installed / rel).exists(), rel
    pc = (installed / "lib/pkgconfig/socket_wrapper_noop.pc").read_text()
    assert "prefix=/opt/sw" in pc and "-lsocket_wrapper_noop" in pc


@pytest.mark.skipif(shutil.which("pkg-config") is None, reason="pkg-config is not installed")
def test_pkg_config_names_resolve(installed: Path) -> None:
    env = {**os.environ, "PKG_CONFIG_PATH": str(installed / "lib/pkgconfig")}
    for name, lib in (("socket_wrapper", "-lsocket_wrapper"),
                      ("socket_wrapper_noop", "-lsocket_wrapper_noop")):
        out = subprocess.run(["pkg-config", "--libs", name], env=env, capture_output=True,
                             text=True, timeout=30, check=True).stdout
        assert lib in out.split(), out


def test_program_linked_with_noop_answers_false_alone_and_true_under_preload(
        installed: Path, tmp_path: Path) -> None:
    src = tmp_path / "helper.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "helper"
    lib = installed / "lib"
    subprocess.run(
        ["cc", "-Wall", "-Werror", f"-I{installed / 'include'}", str(src), "-o", str(exe),
         f"-L{lib}", "-lsocket_wrapper_noop", f"-Wl,-rpath,{lib}"],
        check=True, capture_output=True, timeout=60,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCKET_WRAPPER_")}
    env.pop("LD_PRELOAD", None)
    alone = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=30)
    assert alone.stdout == "enabled=0\n", alone
    wrapped_env = {**env, "LD_PRELOAD": str(lib / "libsocket_wrapper.so"),
                   "SOCKET_WRAPPER_DIR": str(tmp_path)}
    wrapped = subprocess.run([str(exe)], env=wrapped_env, capture_output=True, text=True,
                             timeout=30)
    assert wrapped.stdout == "enabled=1\n", wrapped
