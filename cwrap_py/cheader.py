"""The project's C headers, read with cffi: the one way their numbers enter Python.

Each header (swrap_abi.h, swrap_pcap.h, swrap_fdpass.h) keeps to what ``ffi.cdef``
parses; its integer #defines are read back through a loaded library (no symbol is looked
up, so any library will do) and its structs give exact layouts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cffi import FFI


class CHeader:
    """One header: ``ffi`` knows its structs, :meth:`constant` its integer #defines."""

    def __init__(self, path: Path, library: Path | None = None) -> None:
        self.name = path.name
        self.ffi = FFI()
        self.ffi.cdef(path.read_text(encoding="utf-8"))
        if library is None:
            self.lib: Any = self.ffi.dlopen(None)
        else:
            self.lib = self.ffi.dlopen(str(library), self.ffi.RTLD_NOW | self.ffi.RTLD_LOCAL)

    def constant(self, name: str) -> int:
        """The value of the integer #define ``name``."""
        value = getattr(self.lib, name)
        if not isinstance(value, int):
            raise TypeError(f"{name} in {self.name} is not an integer constant")
        return value
