"""``kktmon scan``: find every register of a store PC and write its configuration.

::

    kktmon scan                                  this PC: serial ports, USB, driver servers
    kktmon scan --tcp 10.0.0.7 --tcp pos2:7778   and hosts (no port: each vendor's port)
    kktmon scan --net 192.168.1.0/24             and a sweep of the vendors' TCP ports
    kktmon scan --json                           the findings as JSON
    kktmon scan --write-config /etc/kktmon/agent.toml

A store-PC command of the agent layer: it imports only the drivers and the protocol,
and only when it runs (:mod:`kktmon.agent.scan_run`): building the parser of every
agent command must not load the scanner, nor its HTTP client, into ``kktmon agent``.
Exit status: 0 when a register was found, 1 when none was, 2 for bad input, 130 when
interrupted (the findings so far are still printed; every port is closed).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

ENV_CONNECTION_PASSWORD = "KKTMON_CONNECTION_PASSWORD"
#: The wire vendors ``--vendor`` takes (:data:`kktmon.drivers.scan.vendors.WIRE_VENDORS`,
#: checked when the scan starts).
WIRE_VENDOR_NAMES = ("shtrih", "atol", "pirit")


def add_scan_command(sub: Any) -> None:
    """Hang ``scan`` on a subcommand set (:func:`kktmon.agent.cli.add_commands`)."""
    scan = sub.add_parser("scan", help="find the registers of this PC and write their config")
    where = scan.add_argument_group("where to look")
    where.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="DEVICE",
        help="probe only this serial port (repeatable)",
    )
    where.add_argument(
        "--tcp",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="probe a host; no port: each vendor's default port (repeatable)",
    )
    where.add_argument(
        "--net",
        action="append",
        default=[],
        metavar="CIDR",
        help="sweep the vendors' TCP ports of a network, at most a /22",
    )
    where.add_argument("--force", action="store_true", help="allow --net beyond a /22")
    where.add_argument(
        "--kkmserver",
        action="append",
        default=[],
        metavar="URL",
        help="ask this kkmserver (default kkmserver://User@127.0.0.1:5893/)",
    )
    where.add_argument(
        "--atol-web",
        action="append",
        default=[],
        metavar="URL",
        help="ask this ATOL Web Requests (default atol-web://127.0.0.1:16732/)",
    )
    where.add_argument(
        "--no-local",
        action="store_true",
        help="skip this PC's serial ports, USB and default driver servers",
    )
    where.add_argument(
        "--vendor",
        action="append",
        default=[],
        choices=WIRE_VENDOR_NAMES,
        help="only these wire vendors (repeatable; default all)",
    )
    how = scan.add_argument_group("how long")
    how.add_argument("--timeout", type=float, default=180.0, help="the whole scan, s")
    how.add_argument("--port-timeout", type=float, default=30.0, help="one port or host, s")
    how.add_argument("--connect-timeout", type=float, default=1.0, help="a TCP connect, s")
    how.add_argument("--control-timeout", type=float, default=0.2, help="ENQ/ACK waits, s")
    how.add_argument("--answer-timeout", type=float, default=1.0, help="an answer's wait, s")
    how.add_argument("--jobs", type=int, default=8, help="ports probed at once")
    scan.add_argument("--password", type=int, default=30, help="system administrator password")
    scan.add_argument(
        "--connection-password",
        default=os.environ.get(ENV_CONNECTION_PASSWORD) or None,
        help=f"driver servers' HTTP password; default ${ENV_CONNECTION_PASSWORD}",
    )
    scan.add_argument("--json", action="store_true", help="print the findings as JSON")
    scan.add_argument(
        "--write-config",
        type=Path,
        metavar="FILE",
        help="write [[devices]] for every register found (a new file)",
    )
    scan.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from kktmon.agent.scan_run import scan_command

    return scan_command(args)
