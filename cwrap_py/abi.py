"""The emulated network's numbers, read from the C header swrap_abi.h.

The header is the single source of truth: cffi parses it (``ffi.cdef``) and the
integer #defines are read back through the noop library, so no number is
written twice.
"""

from __future__ import annotations

from typing import Any, Final

from cwrap_py.cheader import CHeader
from cwrap_py.native import abi_header_path, noop_library_path

_HEADER: Final = CHeader(abi_header_path(), noop_library_path())
ffi: Final = _HEADER.ffi
lib: Final[Any] = _HEADER.lib
constant: Final = _HEADER.constant


SWRAP_IFACE_MIN: Final[int] = constant("SWRAP_IFACE_MIN")
SWRAP_IFACE_MAX: Final[int] = constant("SWRAP_IFACE_MAX")
SWRAP_IFACE_DEFAULT: Final[int] = constant("SWRAP_IFACE_DEFAULT")
SWRAP_NET_LOOPBACK: Final[int] = constant("SWRAP_NET_LOOPBACK")
SWRAP_NET_TEN: Final[int] = constant("SWRAP_NET_TEN")
SWRAP_BCAST_LOOPBACK: Final[int] = constant("SWRAP_BCAST_LOOPBACK")
SWRAP_BCAST_TEN: Final[int] = constant("SWRAP_BCAST_TEN")
SWRAP_IPV6_BYTE0: Final[int] = constant("SWRAP_IPV6_BYTE0")
SWRAP_IPV6_BYTE12: Final[int] = constant("SWRAP_IPV6_BYTE12")
SWRAP_IPV6_BYTE13: Final[int] = constant("SWRAP_IPV6_BYTE13")
SWRAP_IPV6_BYTE14: Final[int] = constant("SWRAP_IPV6_BYTE14")
SWRAP_TYPE_TCP4: Final[int] = constant("SWRAP_TYPE_TCP4")
SWRAP_TYPE_UDP4: Final[int] = constant("SWRAP_TYPE_UDP4")
SWRAP_TYPE_TCP6: Final[int] = constant("SWRAP_TYPE_TCP6")
SWRAP_TYPE_UDP6: Final[int] = constant("SWRAP_TYPE_UDP6")
SWRAP_NAME_LEN: Final[int] = constant("SWRAP_NAME_LEN")
SWRAP_SUN_PATH_SIZE: Final[int] = constant("SWRAP_SUN_PATH_SIZE")
SWRAP_DIR_MAX_LEN: Final[int] = constant("SWRAP_DIR_MAX_LEN")
SWRAP_EPHEMERAL_FIRST: Final[int] = constant("SWRAP_EPHEMERAL_FIRST")
SWRAP_EPHEMERAL_LAST: Final[int] = constant("SWRAP_EPHEMERAL_LAST")
SWRAP_MTU_MIN: Final[int] = constant("SWRAP_MTU_MIN")
SWRAP_MTU_MAX: Final[int] = constant("SWRAP_MTU_MAX")
SWRAP_MTU_DEFAULT: Final[int] = constant("SWRAP_MTU_DEFAULT")
SWRAP_MAX_SOCKETS_MIN: Final[int] = constant("SWRAP_MAX_SOCKETS_MIN")
SWRAP_MAX_SOCKETS_DEFAULT: Final[int] = constant("SWRAP_MAX_SOCKETS_DEFAULT")
SWRAP_MAX_SOCKETS_LIMIT: Final[int] = constant("SWRAP_MAX_SOCKETS_LIMIT")
SWRAP_DEBUGLEVEL_MAX: Final[int] = constant("SWRAP_DEBUGLEVEL_MAX")
