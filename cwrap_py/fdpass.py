"""The record of a socket passed with SCM_RIGHTS, read from the C header swrap_fdpass.h.

When a wrapped process sends an emulated socket over a Unix socket, the library writes
one record per socket to ``SOCKET_WRAPPER_DIR/.fdpass-<inode>`` (``<inode>`` is the
decimal ``st_ino`` of the Unix socket, the same in every process that holds it); a
wrapped receiver reads and removes it when the fd arrives. A record with another magic,
version or size is ignored by the library (the receiver rebuilds the identity from the
socket's file name).

cffi parses the header (``ffi.cdef``): the #defines are the constants of the format and
``struct swrap_fdpass_record`` the exact layout (native byte order, as the C library
writes it). :func:`decode` turns the bytes into a :class:`Record`, :func:`encode` does
the reverse; :func:`read_record`, :func:`write_record` and :func:`records` work on the
files of a directory.
"""

from __future__ import annotations

import enum
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cwrap_py.cheader import CHeader
from cwrap_py.native import fdpass_header_path

_HEADER: Final = CHeader(fdpass_header_path())
ffi: Final = _HEADER.ffi
lib: Final[Any] = _HEADER.lib
constant: Final = _HEADER.constant


MAGIC: Final[int] = constant("SWRAP_FDPASS_MAGIC")
VERSION: Final[int] = constant("SWRAP_FDPASS_VERSION")
OPT_SLOTS: Final[int] = constant("SWRAP_FDPASS_OPT_SLOTS")
ADDR_SIZE: Final[int] = constant("SWRAP_FDPASS_ADDR_SIZE")

RECORD_TYPE: Final[str] = "struct swrap_fdpass_record"
RECORD_SIZE: Final[int] = ffi.sizeof(RECORD_TYPE)
RECORD_PREFIX: Final[str] = ".fdpass-"

# An option slot with this name is free (not level 0: that is IPPROTO_IP, of IP_TOS and
# IP_TTL; no option the library keeps is named 0). As native/src/sockopt.c keeps them.
FREE_SLOT_NAME: Final[int] = 0

# The C library accepts only these (see decode() in native/src/fdpass.c).
FAMILIES: Final[frozenset[int]] = frozenset({socket.AF_INET, socket.AF_INET6})
TYPES: Final[frozenset[int]] = frozenset({socket.SOCK_STREAM, socket.SOCK_DGRAM})


class Flags(enum.IntFlag):
    """The socket state bits that travel with a passed socket."""

    BOUND = constant("SWRAP_FDPASS_BOUND")
    LISTENING = constant("SWRAP_FDPASS_LISTENING")
    CONNECTED = constant("SWRAP_FDPASS_CONNECTED")
    WILDCARD = constant("SWRAP_FDPASS_WILDCARD")
    DUAL = constant("SWRAP_FDPASS_DUAL")
    DETACHED = constant("SWRAP_FDPASS_DETACHED")
    BCAST_PEER = constant("SWRAP_FDPASS_BCAST_PEER")


class RecordError(ValueError):
    """The bytes are not a record of this format and version (one-line message)."""


def offset(name: str) -> int:
    """Byte offset of field ``name`` in the record (e.g. ``offset("version")``)."""
    return int(ffi.offsetof(RECORD_TYPE, name))


# --------------------------------------------------------------------------- addresses

_IN_ADDR = 4
_IN6_ADDR = 16


@dataclass(frozen=True)
class SockAddr:
    """An address as the record holds it (a ``struct sockaddr_in`` or ``sockaddr_in6``).

    ``host`` is the text form (``127.0.0.10``, ``fd00::5357:5f0a``), ``port``,
    ``flowinfo`` and ``scope_id`` are host-order integers, as Python's socket module
    reports them. A family other than AF_INET/AF_INET6 (AF_UNSPEC: no address) has
    ``host == ""`` and ``port == 0``.
    """

    family: int
    host: str = ""
    port: int = 0
    flowinfo: int = 0
    scope_id: int = 0

    @classmethod
    def from_tuple(cls, family: int, addr: tuple[Any, ...]) -> SockAddr:
        """From what ``socket.getsockname()`` returns for a socket of ``family``."""
        if family == socket.AF_INET6:
            host, port, flowinfo, scope_id = addr
            return cls(family, str(host), int(port), int(flowinfo), int(scope_id))
        host, port = addr
        return cls(family, str(host), int(port))

    def as_tuple(self) -> tuple[Any, ...]:
        """What ``socket.getsockname()`` would return for this address."""
        if self.family == socket.AF_INET6:
            return (self.host, self.port, self.flowinfo, self.scope_id)
        return (self.host, self.port)

    def to_bytes(self) -> bytes:
        """The ``ADDR_SIZE`` bytes of the record field."""
        head = struct.pack("=H", self.family)
        if self.family == socket.AF_INET:
            body = struct.pack("!H", self.port) + socket.inet_pton(socket.AF_INET, self.host)
        elif self.family == socket.AF_INET6:
            body = (
                struct.pack("!HI", self.port, self.flowinfo)
                + socket.inet_pton(socket.AF_INET6, self.host)
                + struct.pack("=I", self.scope_id)
            )
        else:
            if self.host or self.port or self.flowinfo or self.scope_id:
                raise RecordError(f"an address of family {self.family} carries no host or port")
            body = b""
        return (head + body).ljust(ADDR_SIZE, b"\0")

    @classmethod
    def from_bytes(cls, raw: bytes) -> SockAddr:
        if len(raw) != ADDR_SIZE:
            raise RecordError(f"an address field has {ADDR_SIZE} bytes, not {len(raw)}")
        (family,) = struct.unpack_from("=H", raw, 0)
        if family == socket.AF_INET:
            (port,) = struct.unpack_from("!H", raw, 2)
            host = socket.inet_ntop(socket.AF_INET, raw[4 : 4 + _IN_ADDR])
            return cls(family, host, port)
        if family == socket.AF_INET6:
            port, flowinfo = struct.unpack_from("!HI", raw, 2)
            host = socket.inet_ntop(socket.AF_INET6, raw[8 : 8 + _IN6_ADDR])
            (scope_id,) = struct.unpack_from("=I", raw, 24)
            return cls(family, host, port, flowinfo, scope_id)
        return cls(family)

    def __str__(self) -> str:
        if self.family == socket.AF_INET6:
            return f"[{self.host}]:{self.port}"
        if self.family == socket.AF_INET:
            return f"{self.host}:{self.port}"
        return f"(family {self.family})"


# --------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class SockOpt:
    """One emulated socket option (an option a Unix socket lacks, kept by the library)."""

    level: int
    name: int
    value: int


@dataclass(frozen=True)
class Record:
    """The identity of one passed socket (``struct swrap_fdpass_record`` minus the header).

    ``options`` holds the used option slots in slot order (the free ones are left out);
    ``magic``, ``version`` and ``size`` are those of this format.
    """

    inode: int
    family: int
    type: int
    protocol: int
    local: SockAddr
    peer: SockAddr
    name_family: int = 0
    flags: Flags = Flags(0)
    pending_error: int = 0
    port: int = 0
    iface: int = 0
    peer_iface: int = 0
    my_seq: int = 0
    peer_seq: int = 0
    trace_state: int = 0
    options: tuple[SockOpt, ...] = field(default=())

    def option(self, level: int, name: int) -> int | None:
        """The value of an emulated option, None when the socket never set it."""
        for opt in self.options:
            if opt.level == level and opt.name == name:
                return opt.value
        return None


_SCALARS: Final[tuple[str, ...]] = (
    "inode", "family", "name_family", "type", "protocol", "pending_error", "port", "iface",
    "peer_iface", "my_seq", "peer_seq", "trace_state",
)


def encode(record: Record) -> bytes:
    """The ``RECORD_SIZE`` bytes the C library writes for this record."""
    if len(record.options) > OPT_SLOTS:
        raise RecordError(f"{len(record.options)} options; a record holds at most {OPT_SLOTS}")
    r = ffi.new(RECORD_TYPE + " *")
    r.magic = MAGIC
    r.version = VERSION
    r.size = RECORD_SIZE
    try:
        for name in _SCALARS:
            setattr(r, name, getattr(record, name))
        r.flags = int(record.flags)
        for i, opt in enumerate(record.options):
            if opt.name == FREE_SLOT_NAME:
                raise RecordError(f"an option named {FREE_SLOT_NAME} would read as a free slot")
            r.opts[i].level = opt.level
            r.opts[i].name = opt.name
            r.opts[i].value = opt.value
    except OverflowError as err:
        raise RecordError(f"a field does not fit the record: {err}") from None
    ffi.memmove(r.local, record.local.to_bytes(), ADDR_SIZE)
    ffi.memmove(r.peer, record.peer.to_bytes(), ADDR_SIZE)
    return bytes(ffi.buffer(r))


def decode(data: bytes) -> Record:
    """The record in ``data``; RecordError if it is not one of this format and version.

    Accepts what the C library accepts: the right magic, version and size, family
    AF_INET or AF_INET6, type SOCK_STREAM or SOCK_DGRAM.
    """
    head = offset("inode")
    if len(data) < head:
        raise RecordError(f"{len(data)} bytes is too short for a record ({RECORD_SIZE} bytes)")
    magic, version, size = struct.unpack_from("=IHH", data, 0)
    if magic != MAGIC:
        raise RecordError(f"bad magic 0x{magic:08x}; expected 0x{MAGIC:08x}")
    if version != VERSION:
        raise RecordError(f"record version {version}; this reader knows version {VERSION}")
    if size != RECORD_SIZE:
        raise RecordError(f"record size field {size}; expected {RECORD_SIZE}")
    if len(data) != RECORD_SIZE:
        raise RecordError(f"{len(data)} bytes of data; a record has {RECORD_SIZE}")
    r = ffi.new(RECORD_TYPE + " *")
    ffi.memmove(r, data, RECORD_SIZE)
    if r.family not in FAMILIES:
        raise RecordError(f"family {r.family}; expected AF_INET or AF_INET6")
    if r.type not in TYPES:
        raise RecordError(f"socket type {r.type}; expected SOCK_STREAM or SOCK_DGRAM")
    values: dict[str, int] = {name: int(getattr(r, name)) for name in _SCALARS}
    options = tuple(
        SockOpt(int(o.level), int(o.name), int(o.value))
        for o in r.opts
        if o.name != FREE_SLOT_NAME
    )
    return Record(
        local=SockAddr.from_bytes(bytes(ffi.buffer(r.local))),
        peer=SockAddr.from_bytes(bytes(ffi.buffer(r.peer))),
        flags=Flags(int(r.flags)),
        options=options,
        **values,
    )


# --------------------------------------------------------------------------- files


def record_path(directory: str | os.PathLike[str], inode: int) -> Path:
    """``<directory>/.fdpass-<inode>``."""
    return Path(directory) / f"{RECORD_PREFIX}{inode}"


def socket_inode(fd: int | socket.socket) -> int:
    """The inode that names the record of a socket (the ``st_ino`` of its fd)."""
    return os.fstat(fd if isinstance(fd, int) else fd.fileno()).st_ino


def read_record(directory: str | os.PathLike[str], inode: int) -> Record:
    """The record for ``inode`` in ``directory``.

    FileNotFoundError if there is none; RecordError if it is not a record of this format,
    or a record for another inode (the C library ignores those too).
    """
    path = record_path(directory, inode)
    try:
        record = decode(path.read_bytes())
    except RecordError as err:
        raise RecordError(f"{path}: {err}") from None
    if record.inode != inode:
        raise RecordError(f"{path}: holds the record of inode {record.inode}")
    return record


def write_record(directory: str | os.PathLike[str], record: Record | bytes) -> Path:
    """Write a record (or raw bytes) for its inode, atomically as the C library does."""
    data = record if isinstance(record, bytes) else encode(record)
    if isinstance(record, bytes):
        if len(data) < offset("inode") + 8:
            raise RecordError(f"{len(data)} bytes hold no inode field")
        (inode,) = struct.unpack_from("=Q", data, offset("inode"))
    else:
        inode = record.inode
    path = record_path(directory, inode)
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def record_inodes(directory: str | os.PathLike[str]) -> list[int]:
    """The inodes that have a record file in ``directory``, sorted."""
    found = []
    for name in os.listdir(directory):
        if name.startswith(RECORD_PREFIX) and name[len(RECORD_PREFIX) :].isdigit():
            found.append(int(name[len(RECORD_PREFIX) :]))
    return sorted(found)


def records(directory: str | os.PathLike[str]) -> Iterator[tuple[int, Record | RecordError]]:
    """(inode, record) for each record file, the error in place of an unreadable record."""
    for inode in record_inodes(directory):
        try:
            yield inode, read_record(directory, inode)
        except FileNotFoundError:
            continue  # taken by a receiver meanwhile
        except RecordError as err:
            yield inode, err
