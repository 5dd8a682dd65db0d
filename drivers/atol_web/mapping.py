"""ATOL driver-server answers -> the vendor-neutral :class:`HealthSnapshot` (pure).

The server's JSON already names its facts, so this is mostly a table: the fiscal
drive's facts become the vendor-neutral records of :mod:`kktmon.protocol.fn`, mapped by
the shared :func:`~kktmon.drivers.mapping.fn_health` and
:func:`~kktmon.drivers.mapping.ofd_queue` as for every vendor. Differences from the
wire ATOL driver, all because the server does not tell:

* no paper "near end" (``paperPresent`` only), no printer fault flag, no OFD exchange
  status byte, no FN document time or memory resource: those stay None;
* the shift opening time is the 24-hour expiry minus 24 h (atol-dto10.md 5.3, [L]);
* the clock skew is measured against the server PC's clock when the server gives it
  (G3 ``serverInfo``), else against the host's clock when the job's result arrived;
* ``ofd.via_host`` comes from the registration's OFD channel (``usb``, ``proto``), so
  the agent raises OFD_VIA_HOST from the same structured fact as for the wire driver.

Server times carry an offset; they are converted into the host's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from kktmon.drivers.mapping import SECONDS_PER_HOUR, fn_health, hours_since, ofd_queue
from kktmon.protocol import fn
from kktmon.protocol.atol_web import records as rec
from kktmon.protocol.health import (
    ClockInfo,
    DeviceInfo,
    FfdVersions,
    HealthSnapshot,
    PaperState,
    PrinterInfo,
    ShiftInfo,
    ShiftState,
)

SHIFT_LIMIT = timedelta(hours=24)
_SHIFT_STATES = {
    "opened": ShiftState.OPEN,
    "closed": ShiftState.CLOSED,
    "expired": ShiftState.EXPIRED,
}


@dataclass(frozen=True)
class WebReads:
    """One poll's facts; None where the server did not answer that read."""

    device: rec.RegisterIdentity
    status: rec.DeviceStatus
    shift: rec.ShiftStatus | None = None
    fn_info: rec.FnInfo | None = None
    fn_status: rec.FnStatus | None = None
    ofd: rec.OfdExchange | None = None
    registration: rec.RegistrationInfo | None = None
    #: The clock the register's is compared with: the server PC's (G3 ``serverInfo``),
    #: or the host's when a job's result arrived; None: the snapshot time.
    clock_reference: datetime | None = None


def local(moment: datetime | None, host_time: datetime) -> datetime | None:
    """A server time in the host's zone; a time without offset is taken as local."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=host_time.tzinfo)
    return moment.astimezone(host_time.tzinfo)


def _ffd(text: str | None) -> str | None:
    return text if text and text != "unknown" else None


def device_info(reads: WebReads, transport: str) -> DeviceInfo:
    """Identity: the register family is ``atol`` (same MQTT name as the wire driver)."""
    info, registration = reads.device, reads.registration
    return DeviceInfo(
        vendor="atol",
        model=info.model_name,
        serial=info.serial,
        firmware=info.firmware,
        rnm=registration.device.registration_number if registration else None,
        inn=registration.organization.vatin if registration else None,
        ffd=FfdVersions(
            device=_ffd(info.ffd_version),
            fn=_ffd(info.fn_ffd_version),
            registered=_ffd(registration.device.ffd_version) if registration else None,
        ),
        transport=transport,
    )


def build_snapshot(reads: WebReads, *, host_time: datetime, transport: str) -> HealthSnapshot:
    device_time = local(reads.status.current_date_time, host_time)
    reference = local(reads.clock_reference, host_time) or host_time
    skew = round((device_time - reference).total_seconds(), 1) if device_time else None
    return HealthSnapshot(
        taken_at=host_time,
        device=device_info(reads, transport),
        fn=fn_health(fn_status(reads), host_time, validity=fn_validity(reads.fn_info)),
        ofd=ofd_queue(ofd_status(reads.ofd, host_time), host_time).model_copy(
            update={"via_host": ofd_via_host(reads.registration)}
        ),
        shift=_shift(reads, host_time),
        printer=_printer(reads.status),
        clock=ClockInfo(device_time=device_time, skew_s=skew),
    )


def ofd_via_host(registration: rec.RegistrationInfo | None) -> bool | None:
    """``ofd.via_host`` from the register's OFD channel (``usb``/``proto``: through the PC,
    where the wire driver has to see the relay packets); None when it was not read."""
    return registration.device.ofd_via_host if registration else None


def fn_status(reads: WebReads) -> fn.FnStatus:
    """``fnInfo`` and ``fnStatus`` as the drive's status: phase from ``livePhase``, both
    warning sets in one byte, the last FD number; no document time.

    Without ``fnInfo`` only the last FD number is told (phase and warnings None).
    """
    info, status = reads.fn_info, reads.fn_status
    last = status.fiscal_document_number if status else None
    if info is None:
        return fn.FnStatus(serial=None, phase=None, warnings=None, last_document_number=last)
    return fn.FnStatus(
        serial=info.serial,
        phase=info.phase,
        warnings=info.warnings.byte | (status.warnings.byte if status else 0),
        last_document_number=last,
    )


def fn_validity(info: rec.FnInfo | None) -> fn.FnValidity | None:
    if info is None:
        return None
    return fn.FnValidity(
        valid_until=info.validity_date.date() if info.validity_date else None,
        registrations_left=info.registrations_remaining,
        registrations_done=info.number_of_registrations,
    )


def ofd_status(exchange: rec.OfdExchange | None, host_time: datetime) -> fn.OfdStatus | None:
    """The unsent queue; the server gives no exchange bits nor reading flag (None).
    Without a count there is no queue to tell of (the number and date alone mean
    nothing)."""
    count = exchange.status.not_sent_count if exchange else None
    if exchange is None or count is None:
        return None
    status = exchange.status
    # With nothing unsent the number and date are placeholders (5.6): ignore them.
    return fn.OfdStatus(
        exchange=None,
        reading_message=None,
        unsent_count=count,
        first_unsent_number=status.first_number if count else None,
        first_unsent_at=local(status.first_at, host_time) if count else None,
    )


def _shift(reads: WebReads, host_time: datetime) -> ShiftInfo:
    shift = reads.shift
    word = (shift.state if shift else None) or reads.status.shift
    state = _SHIFT_STATES.get(word) if word else None
    number = shift.number if shift else None
    if state is None or state is ShiftState.CLOSED:
        return ShiftInfo(state=state, number=number)
    expiry = local(shift.expired_at, host_time) if shift else None
    opened_at = expiry - SHIFT_LIMIT if expiry else None
    hours = hours_since(opened_at, host_time) if opened_at else None
    if hours is not None and hours >= SHIFT_LIMIT.total_seconds() / SECONDS_PER_HOUR:
        state = ShiftState.EXPIRED  # as the wire drivers judge it
    return ShiftInfo(state=state, number=number, opened_at=opened_at, hours_open=hours)


def _printer(status: rec.DeviceStatus) -> PrinterInfo:
    paper = None
    if status.paper_present is not None:
        paper = PaperState.OK if status.paper_present else PaperState.OUT
    return PrinterInfo(paper=paper, cover_open=status.cover_opened)
