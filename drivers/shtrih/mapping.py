"""Shtrih-M answers -> the vendor-neutral :class:`HealthSnapshot` (pure functions).

Kept apart from the driver so the mapping reads as a table of facts and can be tested
without any link. Register times are local wall-clock; they get the host's zone here.
"""

from __future__ import annotations

from datetime import datetime

from kktmon.drivers.mapping import aware, clock_info, fn_health, fn_shift, ofd_queue, shift_info
from kktmon.protocol.health import DeviceInfo, HealthSnapshot, PaperState, PrinterInfo, ShiftInfo
from kktmon.protocol.shtrih import records as rec

MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED, MODE_SHIFT_CLOSED = 2, 3, 4
PAPER_OUT_SUBMODES = frozenset({1, 2})  # passive (idle) / active (mid-document) paper-out
#: Paper is back after an active paper-out, the document is suspended: the register
#: prints nothing until someone sends B0h "continue printing" (the POS, usually on a
#: cashier's prompt). The agent never does: reported as a printer fault, paper as sensed.
WAITING_FOR_CONTINUE = 3
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
    registration: rec.FnRegistration | None,
    resource: rec.FnResource | None,
    host_time: datetime,
    fn_firmware: str | None = None,
) -> HealthSnapshot:
    device = identity.model_copy(
        update={
            "firmware": _firmware(long_status),
            "rnm": registration.rnm if registration and registration.rnm else identity.rnm,
            "inn": registration.inn if registration and registration.inn else long_status.inn,
        }
    )
    fn = fn_health(fn_status, host_time, validity=validity, resource=resource, firmware=fn_firmware)
    return HealthSnapshot(
        taken_at=host_time,
        device=device,
        fn=fn,
        ofd=ofd_queue(ofd, host_time),
        shift=_shift(long_status, fn_status, shift, aware(shift_opened_at, host_time), host_time),
        printer=_printer(long_status, short_status),
        clock=clock_info(long_status.device_time, host_time),
    )


def _firmware(status: rec.LongStatus) -> str:
    built = f" ({status.firmware_date.isoformat()})" if status.firmware_date else ""
    return f"{status.firmware} build {status.firmware_build}{built}"


def _shift(
    status: rec.LongStatus,
    fn_status: rec.FnStatus,
    shift: rec.ShiftParameters | None,
    opened_at: datetime | None,
    host_time: datetime,
) -> ShiftInfo:
    is_open, number = fn_shift(shift, fn_status, status.last_closed_shift)
    expired = status.mode_number == MODE_SHIFT_EXPIRED
    return shift_info(is_open, number, opened_at, host_time, expired=expired)


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
        fault=short.last_print_result == LAST_PRINT_PRINTER_ERROR
        or status.submode == WAITING_FOR_CONTINUE,
        raw={
            "flags": flags.raw,
            "mode": status.mode,
            "submode": status.submode,
            "last_print_result": -1 if short.last_print_result is None else short.last_print_result,
        },
    )
