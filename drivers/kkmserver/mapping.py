"""kkmserver answers -> the vendor-neutral :class:`HealthSnapshot` (pure functions).

Reference kkmserver.md section 4.1. The fiscal drive's facts become the vendor-neutral
records of :mod:`kktmon.protocol.fn`, mapped by the shared
:func:`~kktmon.drivers.mapping.fn_health` and :func:`~kktmon.drivers.mapping.ofd_queue`
as for every vendor. kkmserver summarises the register in a few flags, so several facts
a wire driver reads stay null here (never guessed):

* ФН (fiscal drive) phase: only ``FN_IsFiscal``; true is phase 03h (fiscal), false or
  absent is *unknown* (it may be setup, ready or post-fiscal), so ``fn.phase`` is None;
* ФН warnings: only ``FN_MemOverflowl`` ("memory about to overflow"), which sets bit 2
  (memory 90 %) of the raw byte; the other bits are unknown and read as 0 (without
  the field the record's warnings are None, which the snapshot also reads as 0);
* last document: ``CheckNumber`` is *not* the FD (fiscal document) number — the vendor
  sample pairs ``CheckNumber`` 8 with shift 24, which only a receipt-in-shift counter
  fits — so ``fn.last_document_number`` stays None, as does its time;
* ОФД queue: the unsent count and the first unsent document's date; no document
  number, no exchange status byte;
* shift: state and number, no opening time;
* paper: ``PaperOver`` true is ``out``; false only says "not out" and is reported
  ``ok`` — paper near-end is invisible through kkmserver (documented, not guessed);
  cover and printer faults are unknown.

Register times carry no offset; they are the server's local time, which kktmon
assumes is the host's zone (the server runs beside the POS).
"""

from __future__ import annotations

from datetime import datetime

from kktmon.drivers.mapping import aware, fn_health, ofd_queue
from kktmon.protocol.fn import FnStatus, FnValidity, OfdStatus
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
from kktmon.protocol.kkmserver.records import DataKktAnswer, KktInfo

PHASE_FISCAL = 0x03
WARNING_MEMORY_90 = 0x04
EMULATOR = "KktEmulator"

SESSION_STATES = {1: ShiftState.CLOSED, 2: ShiftState.OPEN, 3: ShiftState.EXPIRED}

#: Substrings of ``List``'s ``IdTypeDevice`` (the server's driver id) -> register family.
_FAMILIES = (("strih", "shtrih"), ("shtrih", "shtrih"), ("atol", "atol"), ("pirit", "pirit"))


def register_family(id_type_device: str | None, fallback: str = "kkmserver") -> str:
    """``KkmStrihM`` -> ``shtrih``: the name the register has on every transport."""
    lowered = (id_type_device or "").lower()
    for needle, family in _FAMILIES:
        if needle in lowered:
            return family
    return fallback


def is_emulator(id_type_device: str | None) -> bool:
    return id_type_device == EMULATOR


def device_info(
    info: KktInfo, *, family: str, id_type_device: str | None, transport: str
) -> DeviceInfo:
    """Identity; ``model`` is the server's driver id (``KktEmulator`` flags an emulator)."""
    return DeviceInfo(
        vendor=family,
        model=id_type_device or None,
        serial=info.kkt_number or None,
        firmware=info.firmware_version or None,
        rnm=info.reg_number or None,
        inn=info.inn_organization or None,
        ffd=FfdVersions(
            device=info.ffd_version_kkt or None,
            fn=info.ffd_version_fn or None,
            registered=info.ffd_version or None,
        ),
        transport=transport,
    )


def build_snapshot(
    answer: DataKktAnswer, *, identity: DeviceInfo, host_time: datetime
) -> HealthSnapshot:
    info = answer.info or KktInfo()
    return HealthSnapshot(
        taken_at=host_time,
        device=identity,
        fn=fn_health(fn_status(info), host_time, validity=fn_validity(info)),
        ofd=ofd_queue(ofd_status(info), host_time),
        shift=ShiftInfo(
            state=SESSION_STATES.get(info.session_state or 0), number=answer.session_number
        ),
        printer=_printer(info),
        clock=_clock(info, host_time),
    )


def fn_status(info: KktInfo) -> FnStatus:
    """What kkmserver tells of the drive's status: serial, "fiscal" and bit 2 of the
    warnings; the phase is None unless fiscal, no last document (``CheckNumber`` is not
    the FD number)."""
    warnings = None
    if info.fn_mem_overflow is not None:
        warnings = WARNING_MEMORY_90 if info.fn_mem_overflow else 0
    return FnStatus(
        serial=info.fn_number,
        phase=PHASE_FISCAL if info.fn_is_fiscal else None,
        warnings=warnings,
    )


def fn_validity(info: KktInfo) -> FnValidity:
    return FnValidity(valid_until=info.fn_date_end.date() if info.fn_date_end else None)


def ofd_status(info: KktInfo) -> OfdStatus | None:
    """The unsent count and the first one's date; no number, exchange bits or reading flag."""
    if info.ofd_num_error_doc is None:
        return None
    return OfdStatus(
        exchange=None,
        reading_message=None,
        unsent_count=info.ofd_num_error_doc,
        first_unsent_number=None,
        first_unsent_at=info.ofd_date_error_doc,
    )


def _printer(info: KktInfo) -> PrinterInfo:
    if info.paper_over is None:
        return PrinterInfo()
    return PrinterInfo(paper=PaperState.OUT if info.paper_over else PaperState.OK)


def _clock(info: KktInfo, host_time: datetime) -> ClockInfo:
    device_time = aware(info.date_time_kkt, host_time)
    if device_time is None:
        return ClockInfo()
    return ClockInfo(
        device_time=device_time, skew_s=round((device_time - host_time).total_seconds(), 1)
    )
