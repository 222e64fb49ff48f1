"""Paths of the native files shipped with the package.

An installed package has them in ``cwrap_py/_native/`` (put there by setup.py
after ``make``). A source checkout that was not installed falls back to what
``make`` left in ``build/`` and ``native/include/``.
"""

from __future__ import annotations

from pathlib import Path

LIBRARY = "libsocket_wrapper.so"
NOOP_LIBRARY = "libsocket_wrapper_noop.so"
ABI_HEADER = "swrap_abi.h"
PCAP_HEADER = "swrap_pcap.h"
FDPASS_HEADER = "swrap_fdpass.h"
HEADERS = (ABI_HEADER, PCAP_HEADER, FDPASS_HEADER)

_PACKAGE_DIR = Path(__file__).resolve().parent
_NATIVE_DIR = _PACKAGE_DIR / "_native"
_SOURCE_ROOT = _PACKAGE_DIR.parent


class NativeLibraryError(FileNotFoundError):
    """A shipped native file is missing (package not built or installed)."""


def _candidates(name: str) -> list[Path]:
    found = [_NATIVE_DIR / name]
    if (_SOURCE_ROOT / "native" / "include" / ABI_HEADER).is_file():
        sub = "native/include" if name in HEADERS else "build"
        found.append(_SOURCE_ROOT / sub / name)
    return found


def _find(name: str) -> Path:
    candidates = _candidates(name)
    for path in candidates:
        if path.is_file():
            return path
    where = " nor ".join(str(p.parent) for p in candidates)
    raise NativeLibraryError(
        f"{name} not found in {where}; install cwrap-py with `pip install .` "
        f"or run `make` in the source tree"
    )


def library_path() -> Path:
    """Absolute path of libsocket_wrapper.so (the LD_PRELOAD library)."""
    return _find(LIBRARY)


def noop_library_path() -> Path:
    """Absolute path of libsocket_wrapper_noop.so (the helper API stubs)."""
    return _find(NOOP_LIBRARY)


def abi_header_path() -> Path:
    """Absolute path of swrap_abi.h (the numbers shared by C and Python)."""
    return _find(ABI_HEADER)


def pcap_header_path() -> Path:
    """Absolute path of swrap_pcap.h (the trace format shared by C and Python)."""
    return _find(PCAP_HEADER)


def fdpass_header_path() -> Path:
    """Absolute path of swrap_fdpass.h (the record of a socket passed with SCM_RIGHTS)."""
    return _find(FDPASS_HEADER)
