"""Probing one serial port or TCP endpoint with the wire vendors' own identification.

Each attempt is a vendor driver's :meth:`~kktmon.drivers.base.Driver.identify` at one
speed: the driver sends only its protocol's allowlisted reads, so a probe can never
print, fiscalise or change a setting, whatever is on the port. Attempts follow the plan
of :mod:`kktmon.drivers.scan.vendors` and stop at the first vendor that identifies
itself; the register's FN serial then comes from one ordinary poll
(:meth:`~kktmon.drivers.base.Driver.read_health`, no shift walk).

Time is bounded three ways: short link timeouts (:class:`ProbeSettings`), a deadline
per port (every attempt's ``poll_deadline_s`` is what is left of it) and the scan's
cancel event, which the scan's total timeout and Ctrl-C set. Transports are wrapped in
:class:`CancellableTransport`, whose reads wait in short slices and give up with
:class:`ProbeCancelledError` once the event is set; the driver's session closes the
port on the way out, so an interrupted scan leaves no port open.

Outcomes: a port another program holds (:class:`PortBusyError`) stops the probe at once
and is reported held, with the holder from ``/proc`` (:mod:`kktmon.drivers.scan.holders`);
a port that cannot be opened stops it too; silence and garbled answers move on to the
next vendor or speed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kktmon.drivers.base import Driver, DriverOptions, TransportFactory
from kktmon.drivers.registry import driver_class
from kktmon.drivers.scan.holders import port_holders
from kktmon.drivers.scan.result import Attempt, Finding, Source, Status
from kktmon.drivers.scan.sources import SerialPort, TcpTarget
from kktmon.drivers.scan.vendors import finds_speed
from kktmon.drivers.transport import Transport, open_transport
from kktmon.drivers.wire import WireDriver
from kktmon.protocol.errors import (
    ConfigError,
    DeviceError,
    KktmonError,
    LinkTimeoutError,
    PortBusyError,
    ProtocolError,
    TransportClosedError,
    TransportError,
    UnreachableError,
)
from kktmon.protocol.health import DeviceInfo

#: A cancellable read waits at most this long before looking at the cancel event.
READ_SLICE_S = 0.1
#: Less than this left of a port's time: no new attempt is started.
MIN_ATTEMPT_S = 0.05
#: Outcomes after which the next vendor or speed is worth a try.
_GO_ON = frozenset({Status.SILENT, Status.GARBLED})


class ProbeCancelledError(TransportError):
    """The scan was interrupted or ran out of time while this probe waited."""


@dataclass(frozen=True)
class ProbeSettings:
    """Timeouts of one probe; short, since nobody waits for a register at a wrong speed.

    A register answers a link check (ENQ) within milliseconds at any speed, and Shtrih-M
    asks for no control timeout under ~100 ms (shtrih-m.md section 1), hence 0.2 s.
    """

    control_timeout_s: float = 0.2
    answer_timeout_s: float = 1.0
    byte_timeout_s: float = 0.2
    enq_tries: int = 2
    exchange_attempts: int = 2
    connect_timeout_s: float = 1.0
    port_timeout_s: float = 30.0
    password: int = 30
    read_fn_serial: bool = True

    def options(self, budget_s: float) -> DriverOptions:
        """Driver options for one attempt that must end within ``budget_s``."""
        return DriverOptions(
            password=self.password,
            control_timeout_s=self.control_timeout_s,
            answer_timeout_s=self.answer_timeout_s,
            archive_timeout_s=self.answer_timeout_s,
            byte_timeout_s=self.byte_timeout_s,
            enq_tries=self.enq_tries,
            exchange_attempts=self.exchange_attempts,
            poll_deadline_s=max(budget_s, MIN_ATTEMPT_S),
            shift_walk_limit=0,
        )


class CancellableTransport(Transport):
    """A transport whose waits end soon after the scan's cancel event is set."""

    def __init__(self, inner: Transport, cancel: threading.Event) -> None:
        super().__init__(inner.url, inner.kind)
        self._inner = inner
        self._cancel = cancel

    def describe(self) -> str:
        return self._inner.describe()

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise ProbeCancelledError(f"{self.url}: the scan was stopped")

    def _write(self, data: bytes) -> None:
        self._check_cancel()
        self._inner.write(data)

    def _read(self, max_bytes: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            self._check_cancel()
            left = max(deadline - time.monotonic(), 0.0)
            data = self._inner.read(max_bytes, min(left, READ_SLICE_S))
            if data or left <= READ_SLICE_S:
                return data

    def _purge(self) -> None:
        self._inner.reset_input()

    def _close(self) -> None:
        self._inner.close()


#: Typed errors -> what they say about a port, the first match deciding (a subclass
#: before its base: a cancelled probe is a transport error too, and so is a held port).
_OUTCOMES: tuple[tuple[type[KktmonError] | tuple[type[KktmonError], ...], Status], ...] = (
    (ProbeCancelledError, Status.TIMED_OUT),
    (PortBusyError, Status.HELD),
    (LinkTimeoutError, Status.SILENT),
    (UnreachableError, Status.UNREACHABLE),
    (DeviceError, Status.REFUSED),  # a framed refusal: the vendor's register is there
    # another protocol, another speed, or a peer that hung up on what we sent
    ((ProtocolError, TransportClosedError), Status.GARBLED),
)


def outcome_of(exc: KktmonError) -> Status:
    """What an attempt's error says about the port."""
    return next((status for kind, status in _OUTCOMES if isinstance(exc, kind)), Status.ERROR)


@dataclass
class _Tried:
    """The attempts made on one port so far and what the last one ended with."""

    attempts: list[Attempt]
    error: KktmonError | None = None
    info: DeviceInfo | None = None
    url: str = ""
    baudrate: int | None = None
    #: The scan was stopped (Ctrl-C, its --timeout) before this port's plan ended.
    stopped: bool = False

    @property
    def outcomes(self) -> set[Status]:
        return {attempt.outcome for attempt in self.attempts}


Step = Callable[[str, str], None]


class Prober:
    """Probes ports and endpoints for one scan: its settings, cancel event and deadline."""

    def __init__(
        self,
        settings: ProbeSettings,
        cancel: threading.Event,
        scan_deadline: float,
        on_step: Step | None = None,
    ) -> None:
        self.settings = settings
        self.cancel = cancel
        self.scan_deadline = scan_deadline
        self._on_step = on_step or (lambda target, detail: None)

    # ------------------------------------------------------------------ targets

    def serial(self, port: SerialPort, plan: Sequence[tuple[str, int | None]]) -> Finding:
        """Try ``plan`` on ``port`` until a vendor identifies itself (``None``: the
        vendor's driver finds the speed)."""
        started = time.monotonic()
        until = self._port_deadline(started)
        tried = _Tried([])
        for vendor, baudrate in plan:
            url = f"serial://{port.device}"
            url += f"?baudrate={baudrate}" if baudrate else ""
            if not self._attempt(
                tried, port.device, vendor, url=url, baudrate=baudrate, until=until
            ):
                break
        source = Source.USB if port.usb else Source.SERIAL
        finding = self._finding(port.device, source, tried, until)
        if finding.found:
            finding.url = port.config_url(tried.baudrate)
        elif finding.status is Status.HELD:
            finding.holder = port_holders(port.device).describe()
            finding.problem = f"{finding.holder}; not taken from it"
        return _timed(finding, started)

    def tcp(self, target: TcpTarget, vendors: Sequence[str], source: Source) -> Finding:
        """Try each of ``vendors`` on a TCP endpoint until one identifies itself."""
        started = time.monotonic()
        until = self._port_deadline(started)
        tried = _Tried([])
        for vendor in vendors:
            if not self._attempt(
                tried, target.address, vendor, url=target.url, baudrate=None, until=until
            ):
                break
        finding = self._finding(target.address, source, tried, until)
        if finding.found:
            finding.url = target.url
        return _timed(finding, started)

    # ------------------------------------------------------------------ attempts

    def _attempt(
        self,
        tried: _Tried,
        label: str,
        vendor: str,
        *,
        url: str,
        baudrate: int | None,
        until: float,
    ) -> bool:
        """One identification; False when the probe of this port is over."""
        now = time.monotonic()
        if self.cancel.is_set() or self.scan_deadline - now < MIN_ATTEMPT_S:
            tried.stopped = True  # the scan's time, not this port's, ran out
            return False
        left = until - now
        if left < MIN_ATTEMPT_S:
            return False
        speed = f"at {baudrate} baud" if baudrate else "finding its speed"
        serial = url.startswith("serial:")
        self._on_step(label, f"{vendor} {speed}" if serial else vendor)
        started = time.monotonic()
        driver = self._driver(vendor, url, baudrate, left)
        try:
            info = driver.identify()
        except ConfigError:
            raise  # our own URL or options are wrong: a bug, not a port's state
        except KktmonError as exc:
            outcome = outcome_of(exc)
            tried.error = exc
        else:
            outcome, tried.info, tried.error = Status.FOUND, info, None
            # a driver that found the speed itself tells which (PiritDriver.baudrate)
            baudrate = baudrate or getattr(driver, "baudrate", None)
            tried.baudrate = baudrate
            tried.url = _with_speed(url, baudrate)
        seconds = round(time.monotonic() - started, 3)
        attempt = Attempt(vendor=vendor, baudrate=baudrate, seconds=seconds, outcome=outcome)
        tried.attempts.append(attempt)
        return outcome in _GO_ON

    def _driver(self, vendor: str, url: str, baudrate: int | None, budget: float) -> Driver[Any]:
        cls = driver_class(vendor)
        options = self.settings.options(budget)
        if not issubclass(cls, WireDriver):
            raise ConfigError(f"scan: {vendor} is not a wire vendor")
        extra: dict[str, Any] = {}
        if finds_speed(vendor):
            extra["serial_opener"] = self._opener
        return cls(url, options, transport_factory=self._factory(baudrate), **extra)

    def _opener(self, url: str, baudrate: int) -> Transport:
        """Open ``url`` at ``baudrate``, cancellable: for drivers that probe speeds."""
        return self._factory(baudrate)(url)

    def _factory(self, baudrate: int | None) -> TransportFactory:
        def open_cancellable(url: str) -> Transport:
            if self.cancel.is_set():
                raise ProbeCancelledError(f"{url}: the scan was stopped")
            inner = open_transport(url, timeout=self.settings.connect_timeout_s, baudrate=baudrate)
            return CancellableTransport(inner, self.cancel)

        return open_cancellable

    def _fn_serial(self, vendor: str, url: str, baudrate: int | None, until: float) -> str | None:
        """The FN serial from one poll, within what is left of the port's time."""
        left = until - time.monotonic()
        if not self.settings.read_fn_serial or left < MIN_ATTEMPT_S or self.cancel.is_set():
            return None
        snapshot = self._driver(vendor, url, baudrate, left).read_health()
        return None if snapshot.stale else snapshot.fn.serial

    def _port_deadline(self, started: float) -> float:
        return min(started + self.settings.port_timeout_s, self.scan_deadline)

    # ------------------------------------------------------------------ reporting

    def _finding(self, label: str, source: Source, tried: _Tried, until: float) -> Finding:
        if tried.info is not None:
            info = tried.info
            vendor = tried.attempts[-1].vendor
            return Finding(
                port=label,
                found_by=source,
                status=Status.FOUND,
                vendor=vendor,
                family=info.vendor,
                model=info.model,
                serial=info.serial,
                fn_serial=self._fn_serial(vendor, tried.url, tried.baudrate, until),
                firmware=info.firmware,
                baudrate=tried.baudrate,
                attempts=tried.attempts,
            )
        status, problem, fix = self._failure(tried)
        return Finding(
            port=label,
            found_by=source,
            status=status,
            vendor=tried.attempts[-1].vendor if status is Status.REFUSED else None,
            problem=problem,
            fix=fix,
            attempts=tried.attempts,
        )

    def _failure(self, tried: _Tried) -> tuple[Status, str | None, str | None]:
        if not tried.attempts or tried.stopped:
            return Status.TIMED_OUT, None, None  # the scan says why (Ctrl-C, --timeout)
        last = tried.attempts[-1].outcome
        if last not in _GO_ON:
            return last, str(tried.error) if tried.error else None, _FIXES.get(last)
        if Status.GARBLED in tried.outcomes:
            return Status.GARBLED, _garbled(tried), _FIXES[Status.GARBLED]
        return Status.SILENT, _silent(tried), _FIXES[Status.SILENT]


def _with_speed(url: str, baudrate: int | None) -> str:
    """A serial URL with the speed found; other URLs as they are."""
    if baudrate is None or not url.startswith("serial:") or "baudrate=" in url:
        return url
    return f"{url}?baudrate={baudrate}"


def _timed(finding: Finding, started: float) -> Finding:
    finding.seconds = round(time.monotonic() - started, 3)
    return finding


def _tried_text(tried: _Tried) -> str:
    by_vendor: dict[str, list[str]] = {}
    for attempt in tried.attempts:
        speeds = by_vendor.setdefault(attempt.vendor, [])
        if attempt.baudrate:
            speeds.append(str(attempt.baudrate))
    return "; ".join(
        f"{vendor} at {', '.join(speeds)}" if speeds else vendor
        for vendor, speeds in by_vendor.items()
    )


def _silent(tried: _Tried) -> str:
    return f"nothing answered ({_tried_text(tried)})"


def _garbled(tried: _Tried) -> str:
    return f"answers that no register protocol frames ({_tried_text(tried)})"


_FIXES: dict[Status, str] = {
    Status.SILENT: "if a register is on this port: check its power and cable (a null-modem"
    " cable for RS-232) and that it is in its serial mode; run the scan again",
    Status.GARBLED: "another device may be on this port (a scanner, a scale, a modem); or"
    " a register at a speed or in a mode kktmon does not speak",
    Status.HELD: "close the program using it, or monitor the register through that"
    " program's driver server (kkmserver, ATOL Web Requests); the agent reports a held"
    " port as DEVICE_BUSY and retries",
    Status.UNREACHABLE: "check the device path or address, the cable and the power",
    Status.REFUSED: "the register answered but refused a read: check the password"
    " (--password) and that it is not in a service mode",
    Status.ERROR: "see the problem: a permission problem needs the dialout group or the"
    " udev rules (README)",
    Status.TIMED_OUT: "run the scan again with a longer --timeout or --port-timeout",
}


def fix_for(status: Status) -> str | None:
    """What to do about a port in ``status`` (None for a register found)."""
    return _FIXES.get(status)
