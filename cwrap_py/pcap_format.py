"""The trace file format, read from the C header swrap_pcap.h.

cffi parses the header (``ffi.cdef``): the integer #defines are the constants of
the format and the two structs give the exact layout (native byte order, as the
C library writes them) of the file header and of each record header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Final

from cwrap_py.cheader import CHeader
from cwrap_py.native import pcap_header_path

_HEADER: Final = CHeader(pcap_header_path())
ffi: Final = _HEADER.ffi
lib: Final[Any] = _HEADER.lib
constant: Final = _HEADER.constant


MAGIC: Final[int] = constant("SWRAP_PCAP_MAGIC")
VERSION_MAJOR: Final[int] = constant("SWRAP_PCAP_VERSION_MAJOR")
VERSION_MINOR: Final[int] = constant("SWRAP_PCAP_VERSION_MINOR")
SNAPLEN: Final[int] = constant("SWRAP_PCAP_SNAPLEN")
LINKTYPE_RAW: Final[int] = constant("SWRAP_PCAP_LINKTYPE_RAW")
TTL: Final[int] = constant("SWRAP_PCAP_TTL")
TCP_WINDOW: Final[int] = constant("SWRAP_PCAP_TCP_WINDOW")
IPV4_OVERHEAD: Final[int] = constant("SWRAP_PCAP_IPV4_OVERHEAD")
IPV6_OVERHEAD: Final[int] = constant("SWRAP_PCAP_IPV6_OVERHEAD")
ICMP6_MAX: Final[int] = constant("SWRAP_PCAP_ICMP6_MAX")
FNV_OFFSET: Final[int] = constant("SWRAP_PCAP_FNV_OFFSET")
FNV_PRIME: Final[int] = constant("SWRAP_PCAP_FNV_PRIME")
TCP_FIN: Final[int] = constant("SWRAP_TCP_FIN")
TCP_SYN: Final[int] = constant("SWRAP_TCP_SYN")
TCP_RST: Final[int] = constant("SWRAP_TCP_RST")
TCP_PSH: Final[int] = constant("SWRAP_TCP_PSH")
TCP_ACK: Final[int] = constant("SWRAP_TCP_ACK")

FILE_HEADER_SIZE: Final[int] = ffi.sizeof("struct swrap_pcap_file_header")
RECORD_HEADER_SIZE: Final[int] = ffi.sizeof("struct swrap_pcap_record_header")

_FILE_FIELDS = ("magic", "version_major", "version_minor", "thiszone", "sigfigs", "snaplen",
                "linktype")
_RECORD_FIELDS = ("ts_sec", "ts_usec", "incl_len", "orig_len")


class PcapFormatError(ValueError):
    """The bytes are not a trace file of this format (one-line message)."""


def fnv1a32(data: bytes) -> int:
    """FNV-1a, 32 bit, with the header's offset basis and prime."""
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return h


@dataclass(frozen=True)
class FileHeader:
    magic: int
    version_major: int
    version_minor: int
    thiszone: int
    sigfigs: int
    snaplen: int
    linktype: int
    byte_order: str = "="  # struct byte order the file was written in ("<" or ">")


def pack_file_header(linktype: int = LINKTYPE_RAW, snaplen: int = SNAPLEN) -> bytes:
    """The global header, in native byte order, laid out by the C struct."""
    hdr = ffi.new("struct swrap_pcap_file_header *")
    hdr.magic = MAGIC
    hdr.version_major = VERSION_MAJOR
    hdr.version_minor = VERSION_MINOR
    hdr.thiszone = 0
    hdr.sigfigs = 0
    hdr.snaplen = snaplen
    hdr.linktype = linktype
    return bytes(ffi.buffer(hdr))


def pack_record_header(ts_sec: int, ts_usec: int, length: int) -> bytes:
    """A record header with incl_len = orig_len = length."""
    hdr = ffi.new("struct swrap_pcap_record_header *")
    hdr.ts_sec = ts_sec
    hdr.ts_usec = ts_usec
    hdr.incl_len = length
    hdr.orig_len = length
    return bytes(ffi.buffer(hdr))


def _struct_format(ctype: str) -> tuple[tuple[str, ...], str]:
    """Field names and a struct module format matching the cdef'd struct."""
    codes = {(1, False): "B", (2, False): "H", (4, False): "I", (8, False): "Q",
             (1, True): "b", (2, True): "h", (4, True): "i", (8, True): "q"}
    fields = ffi.typeof(ctype).fields
    names = tuple(name for name, _ in fields)
    fmt = "".join(
        codes[(ffi.sizeof(f.type), f.type.cname.startswith("int"))] for _, f in fields
    )
    return names, fmt


_FILE_NAMES, _FILE_FMT = _struct_format("struct swrap_pcap_file_header")
_RECORD_NAMES, _RECORD_FMT = _struct_format("struct swrap_pcap_record_header")
if _FILE_NAMES != _FILE_FIELDS or _RECORD_NAMES != _RECORD_FIELDS:
    raise ImportError("swrap_pcap.h: the pcap structs changed; update cwrap_py.pcap_format")


def parse_file_header(data: bytes) -> FileHeader:
    """Parse the global header (either byte order); raises PcapFormatError."""
    if len(data) < FILE_HEADER_SIZE:
        raise PcapFormatError(
            f"file header truncated: {len(data)} of {FILE_HEADER_SIZE} bytes"
        )
    for order in ("<", ">"):
        values = struct.unpack(order + _FILE_FMT, data[:FILE_HEADER_SIZE])
        if values[0] == MAGIC:
            fields = dict(zip(_FILE_NAMES, values, strict=True))
            return FileHeader(**fields, byte_order=order)
    raise PcapFormatError(
        f"bad magic {data[:4].hex()}: not a classic pcap file with microsecond timestamps "
        f"(expected {MAGIC:08x})"
    )


def record_struct(byte_order: str) -> struct.Struct:
    """Unpacker of record headers (ts_sec, ts_usec, incl_len, orig_len)."""
    return struct.Struct(byte_order + _RECORD_FMT)
