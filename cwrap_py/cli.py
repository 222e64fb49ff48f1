"""``swrap``: run programs on the emulated network, and inspect it.

Errors are one line ``swrap: ...`` on stderr: exit 2 for usage errors and bad
values, 1 for other failures, 127 when the command to run is not found.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import NoReturn

import click

from cwrap_py import __version__, native

USAGE_EXIT = 2


class Fail(click.ClickException):
    """A one-line error with an exit status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _bad_value(err: ValueError) -> NoReturn:
    raise Fail(str(err), USAGE_EXIT)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, message="%(prog)s %(version)s")
def swrap() -> None:
    """Run unmodified programs on an emulated IPv4/IPv6 network made of Unix sockets."""


@swrap.command()
def preload() -> None:
    """Print the absolute path of libsocket_wrapper.so (for LD_PRELOAD)."""
    click.echo(str(native.library_path()))


def _network_options(func: click.decorators.FC) -> click.decorators.FC:
    options = [
        click.option("--dir", "dir_", metavar="DIR",
                     help="Socket directory to use or join (default: a new private one)."),
        click.option("--iface", metavar="N", help="Default interface id, 1..254."),
        click.option("--network", metavar="NET", help="IPv4 network: 127.0.0.0 or 10.53.57.0."),
        click.option("--pcap", metavar="FILE", help="Write a packet trace to FILE."),
        click.option("--mtu", metavar="N", help="MTU for the trace, 512..32768."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _wrapped_env(
    dir_: str | None, iface: str | None, network: str | None, pcap: str | None, mtu: str | None
) -> tuple[dict[str, str], list[str]]:
    """os.environ plus the wrapper's variables; also the names that were set."""
    from cwrap_py import config

    lib = str(native.library_path())
    env = dict(os.environ)
    given = {
        config.DIR: dir_,
        config.DEFAULT_IFACE: iface,
        config.IPV4_NETWORK: network,
        config.PCAP_FILE: os.path.abspath(pcap) if pcap else pcap,
        config.MTU: mtu,
    }
    env.update({k: v for k, v in given.items() if v is not None})
    bad = config.errors(env, check_dir=dir_ is not None)
    if bad:
        raise Fail(str(bad[0]), USAGE_EXIT)
    if dir_ is None:
        env[config.DIR] = tempfile.mkdtemp(prefix="swrap-")
        click.echo(f"swrap: {config.DIR}={env[config.DIR]}", err=True)
    elif not env.get(config.DIR_ALLOW_ORIG):
        env[config.DIR] = os.path.abspath(dir_)
    try:
        config.Config.from_env(env)
    except config.ConfigError as err:
        _bad_value(err)
    preloads = env.get("LD_PRELOAD", "").replace(":", " ").split()
    env["LD_PRELOAD"] = " ".join([lib] + [p for p in preloads if p != lib])
    names = [config.DIR] + [k for k, v in given.items() if v is not None and k != config.DIR]
    return env, names + ["LD_PRELOAD"]


def _run(argv: Sequence[str], env: dict[str, str]) -> int:
    child: subprocess.Popen[bytes] | None = None
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if child is None:
            pending.append(signum)
        else:
            child.send_signal(signum)

    # SIGTERM/SIGHUP go on to the command (handlers are reset by exec).
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        child = subprocess.Popen(list(argv), env=env)
    except FileNotFoundError:
        raise Fail(f"{argv[0]}: command not found", 127) from None
    except PermissionError:
        raise Fail(f"{argv[0]}: permission denied", 126) from None
    # As system(3): the terminal's SIGINT/SIGQUIT reach the command by themselves.
    for signum in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_IGN)
    for early in pending:
        child.send_signal(early)
    status = child.wait()
    return 128 - status if status < 0 else status


@swrap.command(context_settings={"ignore_unknown_options": True,
                                 "allow_interspersed_args": False})
@_network_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(command: tuple[str, ...], **options: str | None) -> None:
    """Run COMMAND inside the emulated network (swrap run [OPTIONS] -- COMMAND...)."""
    if not command:
        raise Fail("missing COMMAND; usage: swrap run [OPTIONS] -- COMMAND [ARGS]...", USAGE_EXIT)
    env, _ = _wrapped_env(**options)
    try:
        status = _run(command, env)
    except Fail:
        if options["dir_"] is None:  # nothing ran in the new directory: remove it
            os.rmdir(env["SOCKET_WRAPPER_DIR"])
        raise
    sys.exit(status)


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


@swrap.command("env")
@_network_options
def env_(**options: str | None) -> None:
    """Print `export` lines that put a shell inside the emulated network."""
    env, names = _wrapped_env(**options)
    for name in names:
        click.echo(f"export {name}={_sh_quote(env[name])}")


def _network(network: str | None) -> str:
    from cwrap_py import addr, config

    value = network if network is not None else os.environ.get(config.IPV4_NETWORK, "")
    try:
        return config.parse_network(value) if value else addr.DEFAULT_NETWORK
    except config.ConfigError as err:
        _bad_value(err)


@swrap.command()
@click.argument("items", nargs=-1, required=True, metavar="ADDRESS|NAME...")
@click.option("--tcp", "proto", flag_value="tcp", default=True, help="TCP address (default).")
@click.option("--udp", "proto", flag_value="udp", help="UDP address.")
@click.option("--network", metavar="NET", help="IPv4 network: 127.0.0.0 or 10.53.57.0.")
def addr(items: tuple[str, ...], proto: str, network: str | None) -> None:
    """Convert 127.0.0.10:7 to T0A0007 and back (IPv6: [fd00::5357:5f0a]:7)."""
    from cwrap_py import addr as scheme

    net = _network(network)
    for item in items:
        try:
            if scheme.is_file_name(item):
                sa = scheme.parse_file_name(item)
                click.echo(f"{sa.proto} {sa.address(net)}")
            else:
                click.echo(scheme.parse_address(item, "udp" if proto == "udp" else "tcp", net)
                           .file_name)
        except scheme.AddrError as err:
            _bad_value(err)


@swrap.command("ls")
@click.argument("directory", required=False, metavar="[DIR]")
@click.option("--all", "show_all", is_flag=True, help="Also list stale files, marked (stale).")
@click.option("--network", metavar="NET", help="IPv4 network: 127.0.0.0 or 10.53.57.0.")
def ls_(directory: str | None, show_all: bool, network: str | None) -> None:
    """List the sockets bound in DIR (default $SOCKET_WRAPPER_DIR), as addresses."""
    from cwrap_py import config, listing

    directory = directory or os.environ.get(config.DIR)
    if not directory:
        raise Fail(f"no DIR given and {config.DIR} is not set", USAGE_EXIT)
    net = _network(network)
    if not os.path.isdir(directory):
        why = "not a directory" if os.path.exists(directory) else "no such directory"
        raise Fail(f'"{directory}": {why}', USAGE_EXIT)
    for entry in listing.entries(directory):
        if entry.live or show_all:
            stale = "" if entry.live else " (stale)"
            click.echo(f"{entry.addr.proto} {entry.addr.address(net)}  {entry.name}{stale}")


@swrap.group("pcap")
def pcap_() -> None:
    """Read a packet trace written with SOCKET_WRAPPER_PCAP_FILE (or swrap run --pcap)."""


def _trace_error(path: str, err: Exception) -> NoReturn:
    if isinstance(err, OSError):
        raise Fail(f"{path}: {err.strerror or err}", USAGE_EXIT)
    raise Fail(f"{path}: {err}")


@pcap_.command("summary")
@click.argument("file", metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def pcap_summary(file: str, as_json: bool) -> None:
    """Conversations: emulated addresses, packets and bytes each way, duration."""
    import json

    from cwrap_py import pcap

    try:
        info = pcap.summary(file)
    except (OSError, pcap.PcapFormatError) as err:
        _trace_error(file, err)
    click.echo(json.dumps(info, indent=2) if as_json else pcap.format_summary(info))


@pcap_.command("follow")
@click.argument("file", metavar="FILE")
@click.option("--stream", type=int, metavar="N", help="Only TCP stream N (tshark's tcp.stream).")
@click.option("--format", "mode", type=click.Choice(["ascii", "raw"]), default="ascii",
              show_default=True, help="Like tshark -z follow,tcp,ascii|raw.")
@click.option("--direction", type=click.IntRange(0, 1), metavar="0|1",
              help="Write the reassembled bytes node 0 (client) or 1 (server) sent, as is.")
def pcap_follow(file: str, stream: int | None, mode: str, direction: int | None) -> None:
    """The reassembled payload of TCP streams, both directions (like tshark follow)."""
    from cwrap_py import pcap

    try:
        streams = pcap.tcp_streams(pcap.read_packets(file))
    except (OSError, pcap.PcapFormatError) as err:
        _trace_error(file, err)
    if stream is not None:
        if not 0 <= stream < len(streams):
            raise Fail(f"{file}: no TCP stream {stream} (it has {len(streams)})", USAGE_EXIT)
        streams = [streams[stream]]
    if direction is not None:
        if len(streams) != 1:
            raise Fail(f"{file}: --direction needs --stream N (the file has {len(streams)} "
                       f"TCP streams)", USAGE_EXIT)
        out = click.get_binary_stream("stdout")
        out.write(pcap.follow(streams[0]).data[direction])
        out.flush()
        return
    for conv in streams:
        click.echo(pcap.follow_text(pcap.follow(conv), mode))


@pcap_.command("check")
@click.argument("file", metavar="FILE")
def pcap_check(file: str) -> None:
    """Check headers, checksums and TCP sequence continuity; exit 1 at the first problem."""
    from cwrap_py import pcap

    if not os.path.isfile(file):
        why = "not a regular file" if os.path.exists(file) else "No such file or directory"
        raise Fail(f"{file}: {why}", USAGE_EXIT)
    try:
        result = pcap.check(file)
    except OSError as err:
        _trace_error(file, err)
    if result.ok:
        click.echo(f"{file}: {result.line()}")
        return
    click.echo(f"{file}: {result.line()}")
    sys.exit(1)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``swrap`` console script."""
    try:
        swrap.main(args=argv, prog_name="swrap", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as err:
        click.echo(f"swrap: {err.format_message()}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(128 + signal.SIGINT)
    except click.Abort:
        click.echo("swrap: aborted", err=True)
        sys.exit(1)
    except OSError as err:  # includes native.NativeLibraryError
        click.echo(f"swrap: {err}", err=True)
        sys.exit(1)
    sys.exit(0)
