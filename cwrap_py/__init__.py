"""cwrap-py: run unmodified programs on an emulated IPv4/IPv6 network.

The network lives in a directory of Unix sockets (SOCKET_WRAPPER_DIR); the
preloaded C library ``libsocket_wrapper.so`` carries each inet socket over one.
This package ships that library and the tooling around it:

- :mod:`cwrap_py.native`: where the shipped libraries and ABI header are;
- :mod:`cwrap_py.abi`: the numbers shared with the C code (read from swrap_abi.h);
- :mod:`cwrap_py.addr`: socket file names <-> emulated addresses;
- :mod:`cwrap_py.config`: validation of the SOCKET_WRAPPER_* variables;
- :mod:`cwrap_py.helpers`: ``enabled()`` and ``indicate_no_inet_fd()``;
- :mod:`cwrap_py.cli`: the ``swrap`` command.
"""

__version__ = "0.1.0"
