"""One scan: every source probed in a bounded thread pool, within a total deadline.

:class:`ScanRequest` says where to look (built by the command from the machine's
sources and the user's options); :func:`run_scan` sweeps the ``--net`` networks, then
probes each serial port, TCP endpoint and driver server as one task of a thread pool of
``jobs`` workers (ports are independent, so a store PC's scan takes about as long as its
slowest port, not the sum). USB registers without a tty become findings at once.

Stopping: the total ``timeout_s`` and Ctrl-C both set the probes' cancel event; every
running probe then gives up within a read slice and its driver closes its port; tasks
not started are dropped. The report says which happened, and every task has a finding
(``timed_out`` for the ones cut short), in the order the tasks were given.

Progress goes to a :class:`Progress` (a no-op by default), called from worker threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial

from kktmon.drivers.base import DriverOptions
from kktmon.drivers.scan.probe import Prober, ProbeSettings, fix_for
from kktmon.drivers.scan.result import Finding, ScanReport, Source, Status
from kktmon.drivers.scan.servers import ServerSpec, probe_server
from kktmon.drivers.scan.sources import (
    SerialPort,
    TcpTarget,
    UsbDevice,
    network_hosts,
    sweep,
    tcp_targets,
)
from kktmon.drivers.scan.vendors import (
    WIRE_VENDORS,
    WireVendor,
    serial_plan,
    tcp_order,
    tcp_ports,
)
from kktmon.protocol.errors import KktmonError

#: How often the waiting main thread looks at the clock (and lets Ctrl-C in).
WAIT_SLICE_S = 0.2


class Progress:
    """What a scan tells as it goes; the command draws it, tests may record it."""

    def begin(self, total: int) -> None:
        """``total`` tasks (ports, endpoints, servers) are about to be probed."""

    def probing(self, target: str, detail: str) -> None:
        """An attempt on ``target`` starts (``detail``: vendor and speed)."""

    def finished(self, target: str, findings: Sequence[Finding]) -> None:
        """A task ended with these findings."""


@dataclass(frozen=True)
class ScanRequest:
    """Where to look and how hard."""

    ports: Sequence[SerialPort] = ()
    usb_without_tty: Sequence[UsbDevice] = ()
    tcp: Sequence[str] = ()  # --tcp HOST[:PORT]
    nets: Sequence[str] = ()  # --net CIDR
    force: bool = False  # --net larger than a /22
    servers: Sequence[ServerSpec] = ()
    vendors: Sequence[WireVendor] = WIRE_VENDORS
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    server_options: DriverOptions = field(default_factory=DriverOptions)
    timeout_s: float = 180.0
    jobs: int = 8
    net_jobs: int = 64

    def check(self) -> None:
        """Bad input fails before anything is probed (ConfigError)."""
        for cidr in self.nets:
            network_hosts(cidr, force=self.force)
        for spec in self.tcp:
            tcp_targets(spec, tcp_ports(self.vendors))
        for server in self.servers:
            server.check()


@dataclass(frozen=True)
class _Task:
    label: str
    source: Source
    run: Callable[[], list[Finding]]
    #: A vendor's default port tried on a host named without one (``--tcp HOST``).
    guessed: TcpTarget | None = None


def run_scan(request: ScanRequest, progress: Progress | None = None) -> ScanReport:
    """Probe everything ``request`` names; never longer than its ``timeout_s``."""
    request.check()
    progress = progress or Progress()
    started = time.monotonic()
    deadline = started + request.timeout_s
    cancel = threading.Event()
    prober = Prober(request.probe, cancel, deadline, progress.probing)
    report = ScanReport(findings=[usb_finding(device) for device in request.usb_without_tty])
    try:
        tasks = _tasks(request, prober, cancel, deadline, progress)
        results = _run_tasks(
            tasks,
            jobs=request.jobs,
            cancel=cancel,
            deadline=deadline,
            progress=progress,
            report=report,
        )
        report.findings += [finding for _, found in _folded(results) for finding in found]
    except KeyboardInterrupt:
        cancel.set()
        report.interrupted = True
    report.seconds = round(time.monotonic() - started, 3)
    return _explained(report, request.timeout_s)


def _tasks(
    request: ScanRequest,
    prober: Prober,
    cancel: threading.Event,
    deadline: float,
    progress: Progress,
) -> list[_Task]:
    plan = serial_plan(request.vendors)
    tasks = [
        _Task(port.device, Source.SERIAL, partial(_serial, prober, port, plan))
        for port in request.ports
    ]
    for target, source, guessed in _tcp(request, cancel, deadline, progress):
        order = tcp_order(request.vendors, target.port)
        run = partial(_tcp_probe, prober, target, order, source)
        tasks.append(_Task(target.address, source, run, target if guessed else None))
    for spec in request.servers:
        source = Source.KKMSERVER if spec.adapter == "kkmserver" else Source.ATOL_WEB
        run = partial(probe_server, spec, request.server_options, deadline)
        tasks.append(_Task(spec.label, source, run))
    return tasks


def _serial(
    prober: Prober, port: SerialPort, plan: Sequence[tuple[str, int | None]]
) -> list[Finding]:
    return [prober.serial(port, plan)]


def _tcp_probe(
    prober: Prober, target: TcpTarget, order: Sequence[str], source: Source
) -> list[Finding]:
    return [prober.tcp(target, order, source)]


def _tcp(
    request: ScanRequest, cancel: threading.Event, deadline: float, progress: Progress
) -> list[tuple[TcpTarget, Source, bool]]:
    """The named endpoints, then those the sweep found open (each once); True for a
    vendor's default port tried on a host named without a port."""
    ports = tcp_ports(request.vendors)
    targets: dict[TcpTarget, tuple[Source, bool]] = {}
    for spec in request.tcp:
        named = tcp_targets(spec, ports)
        for target in named:
            targets.setdefault(target, (Source.TCP, len(named) > 1))
    for cidr in request.nets:
        progress.probing(cidr, f"connecting to ports {', '.join(map(str, ports))}")
        found = sweep(
            network_hosts(cidr, force=request.force),
            ports,
            connect_timeout_s=request.probe.connect_timeout_s,
            jobs=request.net_jobs,
            cancel=cancel,
            deadline=deadline,
        )
        for target in found:
            targets.setdefault(target, (Source.NET, False))
    return [(target, source, guessed) for target, (source, guessed) in targets.items()]


def _run_tasks(
    tasks: Sequence[_Task],
    *,
    jobs: int,
    cancel: threading.Event,
    deadline: float,
    progress: Progress,
    report: ScanReport,
) -> list[tuple[_Task, list[Finding]]]:
    """Each task with its findings, in task order; cut short by the deadline or Ctrl-C."""
    progress.begin(len(tasks))
    results: dict[int, list[Finding]] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="scan")
    futures: dict[Future[list[Finding]], int] = {}
    try:
        for index, task in enumerate(tasks):
            futures[pool.submit(_guarded, task)] = index
        pending = set(futures)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                report.timed_out = True
                break
            done, pending = wait(
                pending, timeout=min(left, WAIT_SLICE_S), return_when=FIRST_COMPLETED
            )
            for future in done:
                _collect(future, futures[future], tasks, results, progress)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        cancel.set()  # whatever still runs stops within a read slice and closes its port
        pool.shutdown(wait=True, cancel_futures=True)
    for future, index in futures.items():
        if index not in results and future.done() and not future.cancelled():
            _collect(future, index, tasks, results, progress)
    return [(task, results.get(index, [_cut_short(task)])) for index, task in enumerate(tasks)]


def _folded(results: list[tuple[_Task, list[Finding]]]) -> list[tuple[_Task, list[Finding]]]:
    """A host named without a port: the vendor ports nobody listens on are left out, or,
    when none listens, said once for the host."""
    refused: dict[str, list[bool]] = {}
    for task, findings in results:
        if task.guessed is not None:
            refused.setdefault(task.guessed.host, []).append(_refused(findings))
    kept: list[tuple[_Task, list[Finding]]] = []
    said: set[str] = set()
    for task, findings in results:
        guessed = task.guessed
        if guessed is None or not _refused(findings):
            kept.append((task, findings))
        elif all(refused[guessed.host]) and guessed.host not in said:
            said.add(guessed.host)
            ports = [
                t.guessed.port for t, _ in results if t.guessed and t.guessed.host == guessed.host
            ]
            kept.append((task, [_nothing_listens(task, guessed.host, ports)]))
    return kept


def _refused(findings: Sequence[Finding]) -> bool:
    return len(findings) == 1 and findings[0].status is Status.UNREACHABLE


def _nothing_listens(task: _Task, host: str, ports: Sequence[int]) -> Finding:
    listed = ", ".join(map(str, ports))
    return Finding(
        port=host,
        found_by=task.source,
        status=Status.UNREACHABLE,
        problem=f"nothing accepts a connection on the vendors' ports ({listed})",
        fix="check the address and that the register is on; a register on another port:"
        " --tcp HOST:PORT",
    )


def _guarded(task: _Task) -> list[Finding]:
    """A task's findings; a typed error becomes one (a scan reports, it does not crash)."""
    try:
        return task.run()
    except KktmonError as exc:
        return [
            Finding(
                port=task.label,
                found_by=task.source,
                status=Status.ERROR,
                problem=str(exc),
                fix=fix_for(Status.ERROR),
            )
        ]


def _collect(
    future: Future[list[Finding]],
    index: int,
    tasks: Sequence[_Task],
    results: dict[int, list[Finding]],
    progress: Progress,
) -> None:
    results[index] = future.result()
    progress.finished(tasks[index].label, results[index])


def _cut_short(task: _Task) -> Finding:
    return Finding(port=task.label, found_by=task.source, status=Status.TIMED_OUT)


def _explained(report: ScanReport, timeout_s: float) -> ScanReport:
    """Say why a cut-short finding has no answer: Ctrl-C or the scan's timeout."""
    why = (
        "the scan was interrupted (Ctrl-C)"
        if report.interrupted
        else f"the scan's --timeout of {timeout_s:g} s ran out"
    )
    for finding in report.findings:
        if finding.status is Status.TIMED_OUT and not finding.attempts:
            finding.problem = f"not probed: {why}"
        elif finding.status is Status.TIMED_OUT:
            finding.problem = f"probe stopped: {why}"
        if finding.status is Status.TIMED_OUT:
            finding.fix = fix_for(Status.TIMED_OUT)
    return report


def usb_finding(device: UsbDevice) -> Finding:
    """A USB register or bridge with no tty: listed with its problem and what to do."""
    where = f"usb {device.port}" if device.port else "usb"
    return Finding(
        port=f"{where} ({device.vid:04x}:{device.pid:04x})",
        found_by=Source.USB,
        status=Status.NO_TTY,
        family=device.family,
        serial=None,
        problem=device.problem or "no serial port (tty) for this USB device",
        fix=device.fix,
    )
