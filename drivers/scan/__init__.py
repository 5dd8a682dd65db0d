"""``kktmon scan``'s driver side: find the registers of a store PC and identify them.

``sources`` (serial ports, USB registers, named hosts, a bounded net sweep), ``vendors``
(speeds and TCP ports per wire vendor, the probing order), ``probe`` (one port or
endpoint through the vendor drivers' read-only identification), ``servers`` (the
registers behind kkmserver and ATOL Web Requests), ``holders`` (who holds a busy port,
from /proc), ``scanner`` (the thread pool, the deadline and Ctrl-C) and ``result`` (the
findings, a pydantic model). The command is :mod:`kktmon.agent.scan_cli`.
"""

from kktmon.drivers.scan.probe import ProbeSettings
from kktmon.drivers.scan.result import Attempt, Finding, ScanReport, Source, Status
from kktmon.drivers.scan.scanner import Progress, ScanRequest, run_scan

__all__ = [
    "Attempt",
    "Finding",
    "ProbeSettings",
    "Progress",
    "ScanReport",
    "ScanRequest",
    "Source",
    "Status",
    "run_scan",
]
