"""Shtrih-M answers -> the vendor-neutral :class:`HealthSnapshot` (pure functions).

Kept apart from the driver so the mapping reads as a table of facts and can be tested
without any link. Register times are local wall-clock; they get the host's zone here.
"""

from __future__ import annotations

from datetime import datetime

from kktmon.drivers.mapping import aware, fn_health_from_values, hours_since, ofd_queue_from_values
from kktmon.protocol.health import (
    ClockInfo,
    DeviceInfo,
    FnHealth,
    HealthSnapshot,
    OfdQueue,
    PaperState,
    PrinterInfo,
    ShiftInfo,
    ShiftState,
)
from kktmon.protocol.shtrih import records as rec

MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED, MODE_SHIFT_CLOSED = 2, 3, 4
PAPER_OUT_SUBMODES = frozenset({1, 2, 3})  # passive/active paper-out, waiting for B0h
LAST_PRINT_PRINTER_ERROR = 2

# Latin letters some firmware puts into model names (quirk 11.9) -> Cyrillic.
_LOOKALIKES = str.maketrans("ABCEHKMOPTXaceopx", "АВСЕНКМОРТХасеорх")


def normalise_model_name(name: str) -> str:
    """``ШТРИХ-M-01Ф`` with a Latin M -> all-Cyrillic ``ШТРИХ-М-01Ф``."""
    return name.translate(_LOOKALIKES) if any("А" <= ch <= "я" for ch in name) else name


def build_snapshot(
    *,
    identity: DeviceInfo,
    long_status: rec.LongStatus,
    short_status: rec.ShortStatus,
    fn_status: rec.FnStatus,
    shift: rec.ShiftParameters | None,
    shift_opened_at: datetime | None,
    validity: rec.FnValidity | None,
    ofd: rec.OfdStatus | None,
    registration: rec.Registration | None,
    resource: rec.FnResource | None,
    host_time: datetime,
    fn_firmware: str | None = None,
) -> HealthSnapshot:
    zone = host_time.tzinfo
    device_time = long_status.device_time.replace(tzinfo=zone)
    device = identity.model_copy(
        update={
            "firmware": _firmware(long_status),
            "rnm": registration.rnm if registration and registration.rnm else identity.rnm,
            "inn": registration.inn if registration and registration.inn else long_status.inn,
        }
    )
    return HealthSnapshot(
        taken_at=host_time,
        device=device,
        fn=_fn(fn_status, validity, resource, host_time).model_copy(
            update={"firmware": fn_firmware}
        ),
        ofd=_ofd(ofd, host_time),
        shift=_shift(long_status, fn_status, shift, aware(shift_opened_at, host_time), host_time),
        printer=_printer(long_status, short_status),
        clock=ClockInfo(
            device_time=device_time,
            skew_s=round((device_time - host_time).total_seconds(), 1),
        ),
    )


def _firmware(status: rec.LongStatus) -> str:
    built = f" ({status.firmware_date.isoformat()})" if status.firmware_date else ""
    return f"{status.firmware} build {status.firmware_build}{built}"


def _fn(
    status: rec.FnStatus,
    validity: rec.FnValidity | None,
    resource: rec.FnResource | None,
    host_time: datetime,
) -> FnHealth:
    return fn_health_from_values(
        serial=status.serial,
        phase=status.phase,
        warnings=status.warnings,
        valid_until=validity.valid_until if validity else None,
        registrations_left=validity.registrations_left if validity else None,
        last_document_number=status.last_document_number,
        last_document_at=status.last_document_at,
        documents_left=resource.documents_left if resource else None,
        storage_30d_free_kb=resource.storage_30d_free_kb if resource else None,
        host_time=host_time,
    )


def _ofd(status: rec.OfdStatus | None, host_time: datetime) -> OfdQueue:
    if status is None:
        return OfdQueue()
    return ofd_queue_from_values(
        unsent_count=status.unsent_count,
        first_unsent_number=status.first_unsent_number,
        first_unsent_at=status.first_unsent_at,
        status_byte=status.status,
        host_time=host_time,
    )


def _shift(
    status: rec.LongStatus,
    fn_status: rec.FnStatus,
    shift: rec.ShiftParameters | None,
    opened_at: datetime | None,
    host_time: datetime,
) -> ShiftInfo:
    is_open = shift.open if shift else fn_status.shift_open
    if not is_open:
        number = shift.number if shift else status.last_closed_shift
        return ShiftInfo(state=ShiftState.CLOSED, number=number)
    hours = None
    if opened_at is not None:
        hours = hours_since(opened_at, host_time)
    expired = status.mode_number == MODE_SHIFT_EXPIRED or (hours is not None and hours >= 24)
    return ShiftInfo(
        state=ShiftState.EXPIRED if expired else ShiftState.OPEN,
        number=shift.number if shift else status.last_closed_shift + 1,
        opened_at=opened_at,
        hours_open=hours,
    )


def _printer(status: rec.LongStatus, short: rec.ShortStatus) -> PrinterInfo:
    flags = status.flags
    if not flags.receipt_paper or status.submode in PAPER_OUT_SUBMODES:
        paper = PaperState.OUT
    elif not flags.receipt_roll:
        paper = PaperState.NEAR_END
    else:
        paper = PaperState.OK
    return PrinterInfo(
        paper=paper,
        cover_open=flags.cover_open,
        fault=short.last_print_result == LAST_PRINT_PRINTER_ERROR,
        raw={
            "flags": flags.raw,
            "mode": status.mode,
            "submode": status.submode,
            "last_print_result": -1 if short.last_print_result is None else short.last_print_result,
        },
    )
