"""What ``kktmon scan`` does once parsed: gather this PC's sources, scan, print, write.

The heavy half of :mod:`kktmon.agent.scan_cli`, imported only when a scan runs.
:class:`LocalSources` is how the machine is looked at (pyserial's port list, the
``/dev/serial/by-id`` folder, the USB lister), so tests hand in ptys and fixtures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kktmon.agent.scan_config import render_config, server_key, write_config
from kktmon.agent.scan_view import LineProgress, TerminalProgress, render_report
from kktmon.drivers.base import DriverOptions
from kktmon.drivers.scan import ProbeSettings, Progress, ScanReport, ScanRequest, run_scan
from kktmon.drivers.scan.servers import ATOL_WEB, DEFAULT_URLS, KKMSERVER, ServerSpec
from kktmon.drivers.scan.sources import (
    BY_ID,
    PortLister,
    SerialPort,
    UsbDevice,
    named_ports,
    serial_ports,
    system_ports,
    system_usb,
    usb_without_tty,
)
from kktmon.drivers.scan.vendors import wire_vendors
from kktmon.protocol.errors import ConfigError
from kktmon.protocol.settings import split_password

EXIT_FOUND, EXIT_NONE, EXIT_INTERRUPTED = 0, 1, 130


@dataclass(frozen=True)
class LocalSources:
    """How this machine is looked at; tests hand in ptys and USB fixtures."""

    ports: PortLister = system_ports
    by_id: Path = BY_ID
    usb: Callable[[], tuple[list[UsbDevice], str | None]] = system_usb
    progress: Callable[[], Progress] | None = None  # None: by whether stderr is a tty


def scan_command(args: argparse.Namespace, local: LocalSources | None = None) -> int:
    """Run the scan ``args`` describe; print, write and return the exit status."""
    local = local or LocalSources()
    if args.write_config is not None and args.write_config.exists():
        raise ConfigError(f"{args.write_config}: exists; remove it or write to another file")
    request, notes = build_request(args, local)
    progress = local.progress() if local.progress else _progress()
    try:
        report = run_scan(request, progress)
    finally:
        if isinstance(progress, TerminalProgress):
            progress.clear()
    report.notes += notes
    print(report.model_dump_json(indent=2) if args.json else render_report(report))
    if args.write_config is not None:
        _write(args.write_config, report, request)
    return _exit_status(report)


def _write(path: Path, report: ScanReport, request: ScanRequest) -> None:
    if not report.registers:
        print(f"kktmon: no register found; {path} not written", file=sys.stderr)
        return
    write_config(path, render_config(report, passwords=_passwords(request)))
    print(f"kktmon: wrote {path}; set its site and [mqtt], then check-config", file=sys.stderr)


def build_request(args: argparse.Namespace, local: LocalSources) -> tuple[ScanRequest, list[str]]:
    """The scan's sources and settings from the command line and this machine."""
    notes: list[str] = []
    ports: list[SerialPort] = []
    usb: list[UsbDevice] = []
    if not args.no_local:
        usb_devices, why = local.usb()
        notes += [why] if why else []
        ports = serial_ports(local.ports, local.by_id, usb_devices)
        usb = usb_without_tty(usb_devices, ports)
    if args.port:  # only these, with what the machine's list knows of them
        ports, usb = named_ports(args.port, ports, local.by_id), []
    servers = [ServerSpec(KKMSERVER, url, explicit=True) for url in args.kkmserver]
    servers += [ServerSpec(ATOL_WEB, url, explicit=True) for url in args.atol_web]
    if not args.no_local:
        named = {spec.adapter for spec in servers}
        servers += [ServerSpec(a, url) for a, url in DEFAULT_URLS.items() if a not in named]
    probe = ProbeSettings(
        control_timeout_s=args.control_timeout,
        answer_timeout_s=args.answer_timeout,
        connect_timeout_s=args.connect_timeout,
        port_timeout_s=args.port_timeout,
        password=args.password,
    )
    request = ScanRequest(
        ports=ports,
        usb_without_tty=usb,
        tcp=args.tcp,
        nets=args.net,
        force=args.force,
        servers=servers,
        vendors=wire_vendors(args.vendor),
        probe=probe,
        server_options=DriverOptions(connection_password=args.connection_password),
        timeout_s=args.timeout,
        jobs=args.jobs,
    )
    return request, notes


def _progress() -> Progress:
    if sys.stderr.isatty():
        return TerminalProgress(sys.stderr)
    return LineProgress(sys.stderr)


def _passwords(request: ScanRequest) -> dict[tuple[str, str, int | None], str]:
    """Each driver server's password, for the blocks' ``connection_password``."""
    found: dict[tuple[str, str, int | None], str] = {}
    fallback = request.server_options.connection_password
    for spec in request.servers:
        bare, password = split_password(spec.url)
        secret = password or fallback
        if secret:
            found[server_key(bare)] = secret
    return found


def _exit_status(report: ScanReport) -> int:
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FOUND if report.registers else EXIT_NONE


def scan_main(argv: Sequence[str], local: LocalSources | None = None) -> int:
    """``kktmon scan ARGS`` in this process, with ``local`` sources (for tests)."""
    from kktmon.agent.cli import new_parser, run
    from kktmon.agent.scan_cli import add_scan_command

    parser, sub = new_parser("kktmon scan")
    add_scan_command(sub)
    sub.choices["scan"].set_defaults(handler=lambda args: scan_command(args, local))
    return run(parser, ["scan", *argv])
