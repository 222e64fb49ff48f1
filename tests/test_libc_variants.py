"""Issue 3, item 10: the libc variants programs really call.

tests/progs/libcvar.c, built with -O2 -D_FORTIFY_SOURCE=2 (so recvfrom/recv/read on buffers of
known size become __recvfrom_chk/__recv_chk/__read_chk), checks fcntl64, accept4 (flags, a
short address buffer, NULL), bindresvport (ports 600..1023, the wildcard and a given address,
TCP and UDP), the fortified receive calls on UDP and TCP (recvfrom must return the emulated
sender, never a Unix path), and socket calls made through syscall(SYS_...). Each check runs on
kernel loopback (the reference) and wrapped. open64/openat64/fopen64/fcntl64 handing out a
stale number are in test_fdlife.py (test_number_of_a_socket_closed_behind_our_back_is_reused).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Net
    from procsupport import CTools

pytest_plugins = ["procsupport"]

CHECKS = ["fcntl64", "accept4", "bindresvport", "fortify_udp", "fortify_tcp", "syscall_tcp",
          "syscall_udp"]


@pytest.mark.usefixtures("sanitize")
@pytest.mark.parametrize("where", ["kernel", "wrapped"])
@pytest.mark.parametrize("check", CHECKS)
def test_libc_variant(net: Net, cw: CTools, where: str, check: str) -> None:
    if where == "kernel":
        env, h4, h6 = cw.kenv(), "127.0.0.1", "::1"
    else:
        env, h4, h6 = cw.wenv(net, 10), "127.0.0.10", "fd00::5357:5f0a"
    res = cw.run(cw.argv(cw.prog("libcvar"), check, h4, h6), env)
    if where == "kernel" and check == "bindresvport" and "EACCES" in res.stdout:
        pytest.skip("bindresvport on the kernel needs CAP_NET_BIND_SERVICE")
    out = cw.check(res, f"libcvar {check} ({where})")
    assert [line for line in out if line.startswith("ok ")], out
    if where == "wrapped":
        assert net.listing() == [], "socket files left behind"


def test_fortified_build_calls_the_chk_entry_points(cw: CTools) -> None:
    """Guard for the fortify checks above: the program really calls the _chk variants."""
    if cw.checked:
        pytest.skip("checked only on the plain build")
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed")
    syms = subprocess.run(
        [nm, "-D", cw.prog("libcvar")], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    for sym in ("__recvfrom_chk", "__recv_chk", "__read_chk", "fcntl64", "accept4",
                "bindresvport", "syscall"):
        assert f" {sym}@" in syms, f"libcvar does not import {sym}:\n{syms}"
