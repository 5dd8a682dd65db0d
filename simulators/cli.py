"""``kktmon simulate``: serve a simulated register (wire emulator or fake driver server)."""

from __future__ import annotations

import argparse
from typing import Any

from kktmon.protocol.errors import ConfigError
from kktmon.simulators.registry import run_simulator


def add_commands(sub: Any) -> None:
    """Add ``simulate`` to a subcommand set."""
    simulate = sub.add_parser("simulate", help="run a register simulator")
    simulate.add_argument("vendor", help="register family to emulate, e.g. shtrih")
    simulate.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP (e.g. 127.0.0.1:7778)")
    simulate.add_argument("--pty", action="store_true", help="also expose a pseudo-terminal")
    simulate.add_argument("--scenario", help="TOML scenario file (default: a healthy register)")
    simulate.add_argument(
        "--generation",
        type=int,
        choices=(1, 2, 3),
        help="atol-web only: the server generation to fake (1, 2 or 3 = Web Requests, default)",
    )
    simulate.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    if not args.tcp and not args.pty:
        raise ConfigError("simulate: give --tcp HOST:PORT, --pty or both")
    options = {} if args.generation is None else {"generation": args.generation}
    tcp, pty = _host_port(args.tcp), args.pty
    run_simulator(args.vendor, tcp=tcp, pty=pty, scenario=args.scenario, **options)
    return 0


def _host_port(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--tcp wants HOST:PORT, got {value!r}")
    return host, int(port)
