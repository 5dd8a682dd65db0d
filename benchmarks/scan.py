"""How long ``kktmon scan`` takes on a typical store PC, and what the time goes on.

The PC: four serial ports with nothing answering (the motherboard's COM ports, a
scanner's cable, an empty USB-serial adapter: ptys nobody reads) and three registers on
ptys, each off its factory speed as shops leave them (Shtrih-M at 9600, ATOL at 57600,
Pirit at 115200; ``tests/helpers/scan_rig.py``'s :class:`BaudPtyServer` answers only
at the speed set on the line). The scan runs with its default timeouts (the ones
``kktmon scan`` uses on real hardware) and with ``--jobs 1`` for comparison.

Printed: the total; per port, its time, outcome and attempts; what a silent port costs
by vendor (what dominates a scan: every silent port pays the whole plan, and the scan
takes as long as its slowest port); each register's attempts, with the other vendors'
probes it sat through at its own speed. A pty moves bytes instantly; on a
real line a 10-byte request and its answer add ~20 ms at 9600 baud and ~2 ms at 115200,
small beside the timeouts.

    python benchmarks/scan.py [--jobs 8] [--silent 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))

from scan_rig import BaudPtyServer, emulator

from kktmon.drivers.scan import ProbeSettings, ScanReport, ScanRequest, Status, run_scan
from kktmon.drivers.scan.sources import SerialPort

REGISTERS = {"shtrih": 9600, "atol": 57600, "pirit": 115200}
SERIALS = {"shtrih": "0011111111111111", "atol": "0022222222222222", "pirit": "0033333333333333"}


def scan_shop(silent: int, jobs: int) -> ScanReport:
    with ExitStack() as stack:
        ports = []
        for vendor, speed in REGISTERS.items():
            pty = stack.enter_context(BaudPtyServer(emulator(vendor, SERIALS[vendor]), speed))
            ports.append(SerialPort(pty.path))
        for _ in range(silent):
            master, slave = os.openpty()
            stack.callback(os.close, master)
            stack.callback(os.close, slave)
            ports.append(SerialPort(os.ttyname(slave)))
        report = run_scan(ScanRequest(ports=ports, probe=ProbeSettings(), jobs=jobs))
    found = {f.vendor or "" for f in report.findings if f.status is Status.FOUND}
    if found != set(REGISTERS):
        raise SystemExit(f"the scan missed registers: found {sorted(found)}")
    return report


def print_ports(report: ScanReport) -> None:
    print(f"{'port':<12} {'outcome':<8} {'time':>7}  attempts")
    for finding in report.findings:
        what = finding.vendor or finding.status.value
        speed = f"@{finding.baudrate}" if finding.baudrate else ""
        print(
            f"{finding.port:<12} {what + speed:<14} {finding.seconds:6.2f} s  "
            f"{len(finding.attempts)}"
        )


def print_silent_plan(report: ScanReport) -> None:
    """What one silent port costs, by vendor: the plan's every step times out."""
    steps: dict[str, list[float]] = defaultdict(list)
    silent = [f for f in report.findings if f.status is Status.SILENT]
    for attempt in silent[0].attempts if silent else []:
        steps[attempt.vendor].append(attempt.seconds)
    total = sum(sum(times) for times in steps.values())
    print(f"\na silent port, by vendor ({total:.1f} s in all):")
    for vendor, times in steps.items():
        each = statistics.median(times)
        share = 100 * sum(times) / total if total else 0
        print(
            f"  {vendor:<7} {len(times)} step(s) x {each:.2f} s = {sum(times):.2f} s ({share:.0f}%)"
        )


def print_register_traces(report: ScanReport) -> None:
    """Each register's attempts: the other vendors' probes it had to sit through."""
    print("\nregisters, attempt by attempt:")
    for finding in report.findings:
        if finding.status is not Status.FOUND:
            continue
        trace = ", ".join(
            f"{a.vendor}@{a.baudrate or 'ENQ'} {a.seconds:.2f} s {a.outcome.value}"
            for a in finding.attempts
        )
        print(f"  {finding.vendor:<7} {trace}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=8, help="ports probed at once (default 8)")
    parser.add_argument("--silent", type=int, default=4, help="silent serial ports")
    args = parser.parse_args()
    for jobs in (args.jobs, 1):
        started = time.monotonic()
        report = scan_shop(args.silent, jobs)
        took = time.monotonic() - started
        print(
            f"\n== {len(REGISTERS)} registers + {args.silent} silent ports, --jobs {jobs}: "
            f"{took:.1f} s =="
        )
        print_ports(report)
        if jobs == args.jobs:
            print_silent_plan(report)
            print_register_traces(report)


if __name__ == "__main__":
    main()
