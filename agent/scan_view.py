"""How ``kktmon scan`` shows itself: progress while it runs, a table when it is done.

On a terminal (stderr is a tty) progress is one line redrawn in place with ``\\r``: a bar
of finished tasks and what is being tried now. Anywhere else (a pipe, a log, a test)
it is quiet lines, one when a port's probe starts and one when it ends, so a log shows
what took the time without a line per speed. The result is a table on stdout (port,
vendor, model, serial, FN serial, how found, what to fix), with every problem and its
fix spelled out below it: the table's last column only points there.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TextIO

from kktmon.drivers.scan import Finding, Progress, ScanReport

BAR_WIDTH = 24
LINE_WIDTH = 100
#: The cell of the table's "what to fix" column for a register found as it should be.
NOTHING_TO_FIX = "-"


class TerminalProgress(Progress):
    """A bar redrawn in place on ``stream`` (a terminal), cleared when the scan ends."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.total = 0
        self.done = 0
        self.current = ""
        self._lock = threading.Lock()

    def begin(self, total: int) -> None:
        with self._lock:
            self.total = total
            self._draw()

    def probing(self, target: str, detail: str) -> None:
        with self._lock:
            self.current = f"{target}: {detail}"
            self._draw()

    def finished(self, target: str, findings: Sequence[Finding]) -> None:
        with self._lock:
            self.done += 1
            self._draw()

    def clear(self) -> None:
        with self._lock:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _draw(self) -> None:
        filled = BAR_WIDTH * self.done // self.total if self.total else 0
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        line = f"[{bar}] {self.done}/{self.total} {self.current}"
        self.stream.write("\r" + line[:LINE_WIDTH] + "\x1b[K")
        self.stream.flush()


class LineProgress(Progress):
    """Quiet lines for a log: a port's start and its end, nothing per speed."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._started: set[str] = set()
        self._lock = threading.Lock()

    def probing(self, target: str, detail: str) -> None:
        with self._lock:
            if target in self._started:
                return
            self._started.add(target)
            self._say(f"scan: {target}: probing")

    def finished(self, target: str, findings: Sequence[Finding]) -> None:
        with self._lock:
            for finding in findings:
                self._say(f"scan: {finding.port}: {_outcome(finding)} ({finding.seconds:.1f} s)")

    def _say(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


def _outcome(finding: Finding) -> str:
    if finding.found:
        return f"{_vendor(finding)} {finding.serial or ''}".rstrip()
    return finding.status.value


def _vendor(finding: Finding) -> str:
    """``shtrih``, or ``shtrih via kkmserver`` for a register behind a driver server."""
    vendor = finding.vendor or "-"
    if finding.family and finding.family != vendor:
        return f"{finding.family} via {vendor}"
    return vendor


HEADERS = ("PORT", "VENDOR", "MODEL", "SERIAL", "FN SERIAL", "FOUND BY", "WHAT TO FIX")


def render_report(report: ScanReport) -> str:
    """The table, then each problem with its fix, then the scan's own notes."""
    troubles = [finding for finding in report.findings if finding.problem or finding.fix]
    numbers = {id(finding): number for number, finding in enumerate(troubles, 1)}
    rows = [_row(finding, numbers.get(id(finding))) for finding in report.findings]
    lines = _table([HEADERS, *rows]) if rows else ["no serial port, USB device or host to scan"]
    if troubles:
        lines.append("")
    for number, finding in enumerate(troubles, 1):
        lines.append(f"[{number}] {finding.port}: {finding.problem or finding.status.value}")
        if finding.fix:
            lines.append(f"    fix: {finding.fix}")
    lines += ["", _summary(report), *(f"note: {note}" for note in report.notes)]
    return "\n".join(lines)


def _summary(report: ScanReport) -> str:
    summary = f"{len(report.registers)} register(s) found in {report.seconds:.1f} s"
    if report.interrupted:
        return summary + " (interrupted: the rest was not probed)"
    if report.timed_out:
        return summary + " (--timeout reached: the rest was not probed)"
    return summary


def _row(finding: Finding, note: int | None) -> tuple[str, ...]:
    """One table row; ``note`` is the number of its problem below the table."""
    fix = NOTHING_TO_FIX if note is None else f"{finding.status.value} [{note}]"
    return (
        finding.port,
        _vendor(finding) if finding.vendor else "-",
        finding.model or "-",
        finding.serial or "-",
        finding.fn_serial or "-",
        finding.found_by.value,
        fix,
    )


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
