"""kkmserver answers -> the vendor-neutral :class:`HealthSnapshot` (pure functions).

Reference kkmserver.md section 4.1. The fiscal drive's facts become the vendor-neutral
records of :mod:`kktmon.protocol.fn`, mapped by the shared
:func:`~kktmon.drivers.mapping.fn_health` and :func:`~kktmon.drivers.mapping.ofd_queue`
as for every vendor. kkmserver summarises the register in a few flags, so several facts
a wire driver reads stay null here (never guessed):

* ФН (fiscal drive) phase: only ``FN_IsFiscal``; true is phase 03h (fiscal), false is
  ``not_fiscal`` with no raw code (it may be setup or ready: either way the register
  cannot sell), absent is unknown and ``fn.phase`` is None;
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

A ``GetDataKKT`` answered with ``Status`` 0 but no ``Info`` (a public kkmserver
emulator does this) is read from ``List``'s entry for the register instead
(:func:`info_from_list`): the server's cached summary, which still carries the drive's
validity, the unsent count and the fiscal flag, so an expired drive is still reported.

``device.vendor`` is the register's family (``shtrih``, ``atol``, ``pirit``: the name
its wire driver gives it, so its MQTT name survives a move between the wire and the
server), told from ``List``'s driver id or device name; ``kkmserver`` only when neither
names a family we know (the server's emulator among them).

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
    FnHealth,
    FnPhase,
    FnPhaseInfo,
    HealthSnapshot,
    PaperState,
    PrinterInfo,
    ShiftInfo,
    ShiftState,
)
from kktmon.protocol.kkmserver.records import DataKktAnswer, KktInfo, ListUnit

PHASE_FISCAL = 0x03
WARNING_MEMORY_90 = 0x04
EMULATOR = "KktEmulator"

#: ``FN_IsFiscal`` false: the drive is not fiscal, and kkmserver gives no phase byte.
NOT_FISCAL = FnPhaseInfo(name=FnPhase.NOT_FISCAL, raw=None)

SESSION_STATES = {1: ShiftState.CLOSED, 2: ShiftState.OPEN, 3: ShiftState.EXPIRED}

#: Register family -> substrings (lower case) of ``List``'s ``IdTypeDevice`` (the server's
#: driver id, ``KkmStrihM``) or ``NameDevice`` (``ШТРИХ-МИНИ-01Ф``) that name it. Dreamkas'
#: Viki Print registers speak Pirit's protocol, so they are ``pirit``.
_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("shtrih", ("strih", "shtrih", "shtrikh", "штрих")),
    ("atol", ("atol", "атол")),
    ("pirit", ("pirit", "пирит", "viki", "вики", "dreamkas", "дримкас")),
)
UNKNOWN_FAMILY = "kkmserver"


def register_family(*names: str | None) -> str:
    """``KkmStrihM`` -> ``shtrih``: the name the register has on every transport.

    ``names`` are asked in order (the driver id first, then the device's name); the
    first that names a known family decides; none does -> ``kkmserver``.
    """
    for name in names:
        lowered = (name or "").lower()
        for family, needles in _FAMILIES:
            if any(needle in lowered for needle in needles):
                return family
    return UNKNOWN_FAMILY


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


def info_from_list(unit: ListUnit | None) -> KktInfo:
    """``List``'s cached summary of the register in ``Info``'s shape, for a
    ``GetDataKKT`` that came without ``Info``; nothing known without an entry."""
    if unit is None:
        return KktInfo()
    return KktInfo(
        kkt_number=unit.kkt_number,
        reg_number=unit.reg_number,
        fn_number=unit.fn_number,
        inn_organization=unit.inn,
        name_organization=unit.name_organization,
        fn_is_fiscal=unit.fn_is_fiscal,
        fn_date_end=unit.fn_date_end,
        fn_mem_overflow=unit.fn_mem_overflow,
        ofd_error=unit.ofd_error,
        ofd_num_error_doc=unit.ofd_num_error_doc,
        ofd_date_error_doc=unit.ofd_date_error_doc,
        paper_over=unit.paper_over,
        firmware_version=unit.firmware_version,
        on_off=unit.on_off,
        active=unit.active,
        tax_variant=unit.tax_variant,
    )


def build_snapshot(
    answer: DataKktAnswer, *, identity: DeviceInfo, host_time: datetime, info: KktInfo | None = None
) -> HealthSnapshot:
    """The snapshot of one ``GetDataKKT``; ``info`` replaces the answer's ``Info``
    (:func:`info_from_list` when the answer had none)."""
    info = info or answer.info or KktInfo()
    return HealthSnapshot(
        taken_at=host_time,
        device=identity,
        fn=_fn(info, host_time),
        ofd=ofd_queue(ofd_status(info), host_time),
        shift=ShiftInfo(
            state=SESSION_STATES.get(info.session_state or 0), number=answer.session_number
        ),
        printer=_printer(info),
        clock=_clock(info, host_time),
    )


def _fn(info: KktInfo, host_time: datetime) -> FnHealth:
    fn = fn_health(fn_status(info), host_time, validity=fn_validity(info))
    if info.fn_is_fiscal is False:
        return fn.model_copy(update={"phase": NOT_FISCAL})
    return fn


def fn_status(info: KktInfo) -> FnStatus:
    """What kkmserver tells of the drive's status: serial, "fiscal" and bit 2 of the
    warnings; the phase byte is None unless fiscal (false is :data:`NOT_FISCAL`, set on
    the snapshot, which has no byte for it), no last document (``CheckNumber`` is not
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
