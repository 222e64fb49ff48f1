"""No data lost: 16 concurrent TCP streams of 64 MiB each, both directions at once
(tests/progs/bulk.c), every byte compared and a checksum per stream and direction.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from netsupport import addr6, free_port_block

if TYPE_CHECKING:
    from conftest import Net, Proc

STREAMS = 16
MIB = 1 << 20


def parse(proc: Proc) -> dict[int, tuple[int, str, int, str]]:
    """stream -> (sent, sent sum, received, received sum); every stream must be ok."""
    streams = {}
    for ln in proc.stdout:
        m = re.fullmatch(r"stream (\d+) sent (\d+) sum=(\w+) recv (\d+) sum=(\w+) (.*)", ln)
        if m is None:
            continue
        assert m.group(6) == "ok", proc.describe()
        streams[int(m.group(1))] = (int(m.group(2)), m.group(3), int(m.group(4)), m.group(5))
    return streams


def run_bulk(net: Net, bulk: str, server_env: dict[str, str], client_env: dict[str, str],
             host: str, port: int, size: int, prefix: list[str] | None = None,
             timeout: float = 120.0) -> None:
    pre = prefix or []
    server = net.start([*pre, bulk, "server", host, str(port), str(STREAMS), str(size)],
                       server_env, name="bulk server")
    server.expect("ready")
    client = net.start([*pre, bulk, "client", host, str(port), str(STREAMS), str(size)],
                       client_env, name="bulk client")
    assert client.wait(timeout) == 0, client.describe()
    assert server.wait(timeout) == 0, server.describe()
    srv, cli = parse(server), parse(client)
    assert sorted(srv) == sorted(cli) == list(range(STREAMS)), (server.describe(),
                                                                client.describe())
    for i in range(STREAMS):
        c_sent, c_sum, c_recv, c_rsum = cli[i]
        s_sent, s_sum, s_recv, s_rsum = srv[i]
        assert c_sent == c_recv == s_sent == s_recv == size, (cli[i], srv[i])
        assert c_sum == s_rsum, f"stream {i} client->server checksum differs"
        assert s_sum == c_rsum, f"stream {i} server->client checksum differs"


def test_bulk_program_on_kernel_loopback(net: Net, progs: dict[str, Path]) -> None:
    """The checker itself, on kernel loopback with smaller streams."""
    run_bulk(net, str(progs["bulk"]), net.kernel_env(), net.kernel_env(), "127.0.0.1",
             free_port_block(), 4 * MIB)


def test_16_streams_of_64mib_both_directions(net: Net, progs: dict[str, Path]) -> None:
    run_bulk(net, str(progs["bulk"]), net.env(10), net.env(20), "127.0.0.10", 7, 64 * MIB)


@pytest.mark.parametrize("mtu", ["512", "32768"])
def test_16_streams_ipv6_with_mtu(net: Net, progs: dict[str, Path], netns: list[str],
                                  mtu: str) -> None:
    """IPv6 and the MTU extremes, 8 MiB a stream."""
    extra = {"SOCKET_WRAPPER_MTU": mtu}
    run_bulk(net, str(progs["bulk"]), net.env(10, extra=extra), net.env(20, extra=extra),
             addr6(10), 7, 8 * MIB, prefix=netns)
