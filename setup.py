"""Build hook: `pip install .` runs `make all` and ships the native files.

build_py runs ``make -C <srcdir> all`` and copies build/libsocket_wrapper.so,
build/libsocket_wrapper_noop.so, native/include/swrap_abi.h, swrap_pcap.h and swrap_fdpass.h into
``cwrap_py/_native/``. The wheel is platform-specific (py3-none-<platform>):
it carries shared libraries but no CPython extension.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

SRCDIR = os.path.dirname(os.path.abspath(__file__))
NATIVE_FILES = (
    "build/libsocket_wrapper.so",
    "build/libsocket_wrapper_noop.so",
    "native/include/swrap_abi.h",
    "native/include/swrap_pcap.h",
    "native/include/swrap_fdpass.h",
)


class BuildPyWithNative(build_py):
    def run(self) -> None:
        super().run()
        make = os.environ.get("MAKE", "make")
        subprocess.run([make, "-C", SRCDIR, "all"], check=True)
        if getattr(self, "editable_mode", False):
            target = os.path.join(SRCDIR, "cwrap_py", "_native")
        else:
            target = os.path.join(self.build_lib, "cwrap_py", "_native")
        os.makedirs(target, exist_ok=True)
        for rel in NATIVE_FILES:
            shutil.copy2(os.path.join(SRCDIR, rel), target)


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


cmdclass: dict[str, type] = {"build_py": BuildPyWithNative}

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1: the `wheel` package has it
    from wheel.bdist_wheel import bdist_wheel


class BdistWheelPlatform(bdist_wheel):
    def get_tag(self) -> tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


cmdclass["bdist_wheel"] = BdistWheelPlatform

setup(
    distclass=BinaryDistribution,
    cmdclass=cmdclass,
    options={"build": {"build_base": "build/python"}},
)
