"""Probing ports and endpoints with the vendor drivers' read-only identification.

Registers are the wire simulators on ptys (real pyserial, each speed set on the line;
:class:`scan_rig.BaudPtyServer` answers only at its own speed) and on TCP ports. A
silent pty, a garbled register and a port another process holds end their probe and
say so; every probe's commands stay on the vendors' allowlists (each emulator logs
what it was sent off its list, and every test asserts that log empty).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import serial
from scan_rig import BaudPtyServer, emulator, off_allowlist

from kktmon.drivers.scan import ProbeSettings, ScanRequest, Source, Status, run_scan
from kktmon.drivers.scan.holders import port_holders
from kktmon.drivers.scan.sources import SerialPort
from kktmon.drivers.scan.vendors import WIRE_VENDORS, serial_plan
from kktmon.simulators.server import DeviceEmulator, PtyServer, TcpServer

FAST = ProbeSettings(control_timeout_s=0.1, answer_timeout_s=0.5, byte_timeout_s=0.1)
SERIALS = {"shtrih": "0011111111111111", "atol": "0022222222222222", "pirit": "0033333333333333"}
#: Each vendor off its factory speed, as registers in shops often are.
ODD_SPEEDS = {"shtrih": 9600, "atol": 57600, "pirit": 115200}


def _found_serial(vendor: str, serial_seen: str | None) -> bool:
    """ATOL reports 14 digits of the 16 the simulator holds; the others all 16."""
    return serial_seen is not None and SERIALS[vendor].endswith(serial_seen)


@pytest.fixture
def silent_pty() -> Iterator[str]:
    """A pty nobody answers on: the other end is open and never read."""
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def _exclusively_free(path: str) -> bool:
    """Whether ``path`` can be opened exclusively now (nothing of ours holds it)."""
    try:
        serial.Serial(path, exclusive=True).close()
    except serial.SerialException:
        return False
    return True


@pytest.mark.parametrize("vendor", sorted(SERIALS))
def test_a_register_on_a_pty_is_found_with_its_vendor_serial_and_fn_serial(vendor: str) -> None:
    device = emulator(vendor, SERIALS[vendor])
    with PtyServer(device) as pty:
        report = run_scan(ScanRequest(ports=[SerialPort(pty.path)], probe=FAST))
    (finding,) = report.findings
    assert finding.status is Status.FOUND, finding.problem
    assert (finding.vendor, finding.family, finding.found_by) == (vendor, vendor, Source.SERIAL)
    assert _found_serial(vendor, finding.serial)
    assert finding.fn_serial == device.state.fn.serial
    assert finding.url == f"serial://{pty.path}?baudrate={finding.baudrate}"
    assert finding.attempts[-1].outcome is Status.FOUND
    assert off_allowlist(device) == []


def test_registers_off_their_factory_speed_are_found_at_their_speed() -> None:
    devices = {vendor: emulator(vendor, SERIALS[vendor]) for vendor in ODD_SPEEDS}
    with ExitStack() as stack:
        ptys = {
            vendor: stack.enter_context(BaudPtyServer(devices[vendor], speed))
            for vendor, speed in ODD_SPEEDS.items()
        }
        ports = [SerialPort(pty.path) for pty in ptys.values()]
        report = run_scan(ScanRequest(ports=ports, probe=FAST))
    for vendor, finding in zip(ODD_SPEEDS, report.findings, strict=True):
        assert finding.status is Status.FOUND, finding.problem
        assert (finding.vendor, finding.baudrate) == (vendor, ODD_SPEEDS[vendor])
        assert finding.url is not None and finding.url.endswith(f"?baudrate={ODD_SPEEDS[vendor]}")
        assert _found_serial(vendor, finding.serial)
        assert off_allowlist(devices[vendor]) == []


def test_tcp_endpoints_are_found_whatever_vendor_listens() -> None:
    devices = {vendor: emulator(vendor, SERIALS[vendor]) for vendor in SERIALS}
    with ExitStack() as stack:
        servers = {v: stack.enter_context(TcpServer(d)) for v, d in devices.items()}
        tcp = [f"127.0.0.1:{server.port}" for server in servers.values()]
        report = run_scan(ScanRequest(tcp=tcp, probe=FAST))
    for (vendor, server), finding in zip(servers.items(), report.findings, strict=True):
        assert finding.status is Status.FOUND, finding.problem
        assert (finding.vendor, finding.found_by) == (vendor, Source.TCP)
        assert finding.url == f"tcp://127.0.0.1:{server.port}"
        assert _found_serial(vendor, finding.serial)
        assert off_allowlist(devices[vendor]) == []


def test_a_silent_port_is_tried_with_every_vendor_and_speed_then_reported_silent(
    silent_pty: str,
) -> None:
    report = run_scan(ScanRequest(ports=[SerialPort(silent_pty)], probe=FAST))
    (finding,) = report.findings
    assert finding.status is Status.SILENT
    tried = [(attempt.vendor, attempt.baudrate) for attempt in finding.attempts]
    assert tried == serial_plan(WIRE_VENDORS)
    assert finding.problem and finding.problem.startswith("nothing answered")
    assert finding.fix and finding.url is None
    assert _exclusively_free(silent_pty)


def test_a_port_timeout_stops_a_silent_port_before_its_plan_ends(silent_pty: str) -> None:
    settings = ProbeSettings(control_timeout_s=0.1, answer_timeout_s=0.5, port_timeout_s=0.5)
    report = run_scan(ScanRequest(ports=[SerialPort(silent_pty)], probe=settings))
    (finding,) = report.findings
    assert finding.status is Status.SILENT
    assert 0 < len(finding.attempts) < len(serial_plan(WIRE_VENDORS))
    assert _exclusively_free(silent_pty)


def test_the_scan_timeout_cuts_every_probe_short_and_closes_every_port() -> None:
    with ExitStack() as stack:
        paths = []
        for _ in range(3):
            master, slave = os.openpty()
            stack.callback(os.close, master)
            stack.callback(os.close, slave)
            paths.append(os.ttyname(slave))
        request = ScanRequest(ports=[SerialPort(p) for p in paths], probe=FAST, timeout_s=0.5)
        report = run_scan(request)
        assert report.timed_out
        assert [f.status for f in report.findings] == [Status.TIMED_OUT] * 3
        assert all("--timeout" in (f.problem or "") for f in report.findings)
        assert all(_exclusively_free(path) for path in paths)


@pytest.mark.parametrize("fault", ["wrong_lrc_answers", "cut_answers"])
def test_a_garbled_register_is_reported_garbled(fault: str) -> None:
    """A Pirit at its factory speed whose every answer is framed wrong: every vendor
    meets it (the Pirit at its speed), none identifies it."""
    device = emulator("pirit", SERIALS["pirit"])
    setattr(device.state.faults, fault, 1_000_000)  # every answer spoilt
    with BaudPtyServer(device, 57600) as pty:
        report = run_scan(ScanRequest(ports=[SerialPort(pty.path)], probe=FAST))
        assert _exclusively_free(pty.path)
    (finding,) = report.findings
    assert finding.status is Status.GARBLED
    assert finding.problem and finding.problem.startswith("answers that no register")
    assert finding.fix and finding.url is None
    assert off_allowlist(device) == []


def test_a_shtrih_whose_answers_stay_garbled_ends_its_probe_unidentified() -> None:
    """Shtrih-M's link gives up on a spoilt answer the register keeps pending as on a
    silent line (the contract test's "shtrih" rows), so the scan says silent."""
    device = emulator("shtrih", SERIALS["shtrih"])
    device.state.faults.wrong_lrc_answers = 1_000_000
    with PtyServer(device) as pty:
        report = run_scan(ScanRequest(ports=[SerialPort(pty.path)], probe=FAST))
        assert _exclusively_free(pty.path)
    (finding,) = report.findings
    assert finding.status in {Status.SILENT, Status.GARBLED}
    assert (
        finding.attempts[0].vendor == "shtrih" and finding.attempts[0].outcome is not Status.FOUND
    )
    assert off_allowlist(device) == []


def test_a_port_held_by_this_process_is_reported_held_and_not_taken() -> None:
    device = emulator("shtrih", SERIALS["shtrih"])
    with PtyServer(device) as pty, serial.Serial(pty.path, exclusive=True) as holder:
        report = run_scan(ScanRequest(ports=[SerialPort(pty.path)], probe=FAST))
        assert holder.is_open
    (finding,) = report.findings
    assert finding.status is Status.HELD
    assert len(finding.attempts) == 1, "a held port is not tried again and again"
    assert finding.holder == "held by another program"
    assert off_allowlist(device) == [] and getattr(device, "received") == []  # noqa: B009


HOLD = """
import serial, sys
port = serial.Serial(sys.argv[1], exclusive=True)
print("holding", flush=True)
sys.stdin.read()
"""


def test_a_port_held_by_another_process_names_it_from_proc() -> None:
    device = emulator("atol", SERIALS["atol"])
    with PtyServer(device) as pty:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, pty.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
            report = run_scan(ScanRequest(ports=[SerialPort(pty.path)], probe=FAST))
            found = port_holders(pty.path)
        finally:
            holder.communicate("")
    (finding,) = report.findings
    assert finding.status is Status.HELD
    assert f"(pid {holder.pid})" in (finding.holder or "")
    assert holder.pid in {h.pid for h in found.found}
    assert getattr(device, "received") == []  # noqa: B009


def test_every_probe_of_every_vendor_stays_on_the_allowlists(silent_pty: str) -> None:
    """Each emulator meets the other vendors' probes first (and a silent port all of
    them): nothing any vendor sends is off another's read-only list either."""
    devices: list[DeviceEmulator] = [emulator(v, SERIALS[v]) for v in ("pirit", "atol", "shtrih")]
    with ExitStack() as stack:
        ptys = [stack.enter_context(BaudPtyServer(d, 4800)) for d in devices]
        tcps = [stack.enter_context(TcpServer(emulator(v, SERIALS[v]))) for v in SERIALS]
        request = ScanRequest(
            ports=[SerialPort(p.path) for p in ptys] + [SerialPort(silent_pty)],
            tcp=[f"127.0.0.1:{t.port}" for t in tcps],
            probe=FAST,
        )
        report = run_scan(request)
        assert [f.status for f in report.findings].count(Status.FOUND) == 6
        for device in devices + [t.device for t in tcps]:
            assert off_allowlist(device) == []
