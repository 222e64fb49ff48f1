"""What is bound in a socket directory: socket files, live or stale."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from cwrap_py.addr import AddrError, SockAddr, is_file_name, parse_file_name

PROC_NET_UNIX = "/proc/net/unix"


@dataclass(frozen=True)
class Entry:
    name: str
    addr: SockAddr
    live: bool


def bound_paths(proc_net_unix: str = PROC_NET_UNIX) -> set[str]:
    """Paths of the Unix sockets bound in this network namespace."""
    paths = set()
    try:
        with open(proc_net_unix, encoding="utf-8", errors="surrogateescape") as lines:
            next(lines, None)
            for line in lines:
                fields = line.split(None, 7)
                if len(fields) == 8 and fields[7].startswith("/"):
                    paths.add(fields[7].rstrip("\n"))
    except OSError:
        pass
    return paths


def entries(directory: str) -> Iterator[Entry]:
    """The socket files of ``directory`` sorted by name; live = some socket is bound there."""
    bound = bound_paths()
    prefixes = {os.path.realpath(directory), os.path.abspath(directory), directory}
    for name in sorted(os.listdir(directory)):
        if not is_file_name(name):
            continue
        try:
            if not stat.S_ISSOCK(os.lstat(os.path.join(directory, name)).st_mode):
                continue
            sock = parse_file_name(name)
        except (OSError, AddrError):
            continue
        live = any(os.path.join(p, name) in bound for p in prefixes)
        if not live:
            live = _dual_stack_name(directory, name, bound, prefixes)
        yield Entry(name, sock, live)


# The IPv4 name of a dual-stack IPv6 socket is a hard link to its IPv6 file (T -> X, U -> Y),
# which is the name /proc/net/unix shows.
_IPV6_TWIN = {"T": "X", "U": "Y"}


def _dual_stack_name(directory: str, name: str, bound: set[str], prefixes: set[str]) -> bool:
    twin = _IPV6_TWIN.get(name[0], "") + name[1:]
    if len(twin) != len(name) or not any(os.path.join(p, twin) in bound for p in prefixes):
        return False
    try:
        return os.path.samefile(os.path.join(directory, name), os.path.join(directory, twin))
    except OSError:
        return False
