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
        yield Entry(name, sock, live)
