"""The helper API (socket_wrapper.h) in a Python process, through cffi.

``socket_wrapper_enabled`` is looked up in the process's global namespace,
which has it only when the real libsocket_wrapper.so is preloaded; otherwise
the shipped noop library answers. So ``enabled()`` is true only when the
wrapper is really active.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from cffi import FFI

from cwrap_py.native import noop_library_path

ffi: Final = FFI()
ffi.cdef(
    """
    bool socket_wrapper_enabled(void);
    void socket_wrapper_indicate_no_inet_fd(int fd);
    """
)


@functools.cache
def _lib() -> Any:
    process = ffi.dlopen(None)
    try:
        process.socket_wrapper_enabled  # noqa: B018 - raises if the symbol is missing
        process.socket_wrapper_indicate_no_inet_fd  # noqa: B018
    except AttributeError:
        return ffi.dlopen(str(noop_library_path()), ffi.RTLD_NOW | ffi.RTLD_LOCAL)
    return process


def enabled() -> bool:
    """True when the preloaded wrapper is active (SOCKET_WRAPPER_DIR set and valid)."""
    return bool(_lib().socket_wrapper_enabled())


def indicate_no_inet_fd(fd: int) -> None:
    """Tell the wrapper that ``fd`` is no longer an emulated inet socket."""
    _lib().socket_wrapper_indicate_no_inet_fd(fd)
