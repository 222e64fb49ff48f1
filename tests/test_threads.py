"""Issue 3, item 9 (threads): many threads creating, connecting, sending, receiving and closing
sockets at once, with a checksum on every byte.

tests/progs/threadecho.c is a threaded TCP+UDP echo server and threaded clients. Each run is
done on kernel loopback first (the program's checks are right about Linux), then wrapped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Net
    from procsupport import CTools

pytest_plugins = ["procsupport"]

FAMILIES = {
    "ipv4": (("127.0.0.1", "127.0.0.10"), 10),
    "ipv6": (("::1", "fd00::5357:5f0a"), 10),
}


def sizes(cw: CTools) -> dict[str, int]:
    """Workload: full normally, smaller under ASan/TSan, small under helgrind."""
    if cw.sanitizer == "helgrind" or cw.tool:
        return {"workers": 6, "threads": 8, "conns": 10, "bytes": 131072, "churn": 1000}
    if cw.checked:
        return {"workers": 6, "threads": 8, "conns": 6, "bytes": 65536, "churn": 300}
    return {"workers": 8, "threads": 16, "conns": 20, "bytes": 262144, "churn": 2000}


def summary(out: list[str]) -> dict[str, int]:
    line = next(line for line in out if line.startswith("tcp_conns "))
    words = line.split()
    return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}


@pytest.mark.usefixtures("sanitize", "helgrind")
@pytest.mark.parametrize("where", ["kernel", "wrapped"])
@pytest.mark.parametrize("fam", list(FAMILIES))
def test_threaded_echo_server_and_clients_in_one_process(
    net: Net, cw: CTools, where: str, fam: str
) -> None:
    """Server workers accepting and echoing, client threads connecting, streaming random
    chunks and checking FNV-1a of both directions, one UDP echo per connection (the reply
    must come from the server's address), connections continued on dup()s, and two threads
    churning socket/bind/dup/getsockname/close; then an orderly stop of every thread."""
    (kernel_host, wrapped_host), iface = FAMILIES[fam]
    sz = sizes(cw)
    host = kernel_host if where == "kernel" else wrapped_host
    env = cw.kenv() if where == "kernel" else cw.wenv(net, iface)
    prog = cw.prog("threadecho")
    res = cw.run(
        cw.argv(prog, "all", host, sz["workers"], sz["threads"], sz["conns"], sz["bytes"],
                sz["churn"]),
        env, timeout=120.0,
    )
    stats = summary(cw.check(res, f"threadecho all {host} ({where})"))
    conns = sz["threads"] * sz["conns"]
    assert stats["tcp_conns"] == conns
    assert stats["tcp_bytes"] == conns * sz["bytes"]
    assert stats["udp"] == conns
    if where == "wrapped":
        assert net.listing() == [], "socket files left behind"


# Not in the helgrind run: there the client's threads make the process's first socket() calls
# concurrently, and helgrind (which does not model C11 acquire/release) reports the lock-free
# publication of the configuration snapshot as a race. TSan, which does, is clean.
@pytest.mark.usefixtures("sanitize")
@pytest.mark.parametrize("fam", list(FAMILIES))
def test_threaded_echo_server_and_client_processes_on_two_interfaces(
    net: Net, cw: CTools, fam: str
) -> None:
    """The server process on interface 10, a threaded client process on interface 20; the
    server checks that accept() reports each client's real emulated address (the client sends
    its getsockname in a header)."""
    (_, server_host), _ = FAMILIES[fam]
    sz = sizes(cw)
    prog = cw.prog("threadecho")
    server = net.start(cw.argv(prog, "server", server_host, 7, sz["workers"]), cw.wenv(net, 10))
    server.expect("ready 7", timeout=cw.timeout(20))
    res = cw.run(
        cw.argv(prog, "client", server_host, 7, sz["threads"], sz["conns"], sz["bytes"]),
        cw.wenv(net, 20), timeout=120.0,
    )
    stats = summary(cw.check(res, "threadecho client"))
    assert stats["tcp_conns"] == sz["threads"] * sz["conns"]
    server.close_stdin()
    cw.check_proc(server)


@pytest.mark.parametrize("fam", list(FAMILIES))
def test_threaded_echo_processes_on_kernel_loopback(net: Net, cw: CTools, fam: str) -> None:
    """The same two programs without the wrapper (reference run)."""
    (host, _), _ = FAMILIES[fam]
    port = net.free_port(host)
    sz = sizes(cw)
    prog = cw.prog("threadecho")
    server = net.start(cw.argv(prog, "server", host, port, sz["workers"]), cw.kenv())
    server.expect(f"ready {port}", timeout=cw.timeout(20))
    res = cw.run(
        cw.argv(prog, "client", host, port, sz["threads"], sz["conns"], sz["bytes"]),
        cw.kenv(), timeout=120.0,
    )
    cw.check(res, "threadecho client (kernel)")
    server.close_stdin()
    cw.check_proc(server)
