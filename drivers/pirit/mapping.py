"""Pirit replies -> the vendor-neutral :class:`HealthSnapshot` (pure functions).

The driver gathers one poll's parsed records into :class:`PiritFacts` (identity into
:class:`PiritIdentity`); this module only maps them, so it reads as a table of facts and
is tested from the golden replies without any link. Records the register could not give
(an unsupported sub, a firmware variant) are ``None`` and their fields stay null. The
fiscal drive's records are the vendor-neutral ones of :mod:`kktmon.protocol.fn`: the
shared :func:`~kktmon.drivers.mapping.fn_health` and
:func:`~kktmon.drivers.mapping.ofd_queue` map them as for every vendor.

Where the Pirit protocol has no counterpart of a health field the field stays null or
takes the only value the register can tell: there is no "paper near end" bit (paper is
``ok`` or ``out``), no registrations-left counter, and FN memory is known only on Punix
firmware (0x78/18); elsewhere the 90 % warning bit is all there is.
Register times are naive wall-clock; they get the host's zone here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from kktmon.drivers.mapping import aware, fn_health, ofd_queue, shift_info
from kktmon.protocol.fn import FnResource, FnStatus, FnValidity, OfdStatus, ShiftParameters
from kktmon.protocol.health import (
    ClockInfo,
    DeviceInfo,
    FfdVersions,
    HealthSnapshot,
    PaperState,
    PrinterInfo,
    ShiftInfo,
)
from kktmon.protocol.pirit import fn_records as fnr
from kktmon.protocol.pirit import records as rec

VENDOR = "pirit"

#: 0x04 bits that make ``printer.fault``; paper (bit 1) and cover (bit 2) have fields
#: of their own. The reference does not say whether "not ready" also rises with them.
PRINTER_FAULT_BITS = ("not_ready", "cutter_error", "mechanism_link_lost")


@dataclass(frozen=True)
class PiritIdentity:
    """Who the register is: read on the first poll and again after an FN change."""

    serial: str | None = None
    model: rec.Model | None = None
    firmware_version: str | None = None  # 0x02/70
    firmware_id: int | None = None  # 0x02/2, the fallback when 70 is missing
    inn: str | None = None
    rnm: str | None = None
    versions: fnr.FnVersions | None = None  # 0x78/14
    ffd_support: fnr.FfdSupport | None = None  # 0x78/22, FFD 1.2 firmware


@dataclass(frozen=True)
class PiritFacts:
    """One poll's records; the first three are required, the rest may be ``None``."""

    status: rec.Status  # 0x00
    printer: rec.PrinterStatus  # 0x04
    fn_status: FnStatus  # 0x78/2
    device_time: datetime | None = None  # 0x13
    fn_serial: str | None = None  # 0x78/1
    last_fd_number: int | None = None  # 0x78/3
    last_fiscal_at: datetime | None = None  # 0x02/5
    ofd: OfdStatus | None = None  # 0x78/7
    fn_shift: ShiftParameters | None = None  # 0x78/6
    shift_opened_at: datetime | None = None  # 0x02/17, only asked with the shift open
    memory: FnResource | None = None  # 0x78/18, Punix only
    # 0x02/14 every poll, as Shtrih's FF03h: a re-registration (excise goods, autonomous
    # mode) can shorten the same drive's life.
    expiry: FnValidity | None = None


def model_name(model: rec.Model | None) -> str | None:
    """``Viki Print 57+``; an unlisted code becomes ``Pirit model 77``, not a guess."""
    if model is None:
        return None
    return model.name or f"Pirit model {model.code}"


def ffd_versions(identity: PiritIdentity) -> FfdVersions:
    """Each version from the first source that names a known FFD code (0 or empty: none).

    device: tag 1189 of 0x78/14; registered: tag 1209, else the FN's registered FFD,
    else 0x78/22's current; fn: the FN's maximum FFD from 0x78/14, else from 0x78/22.
    """
    v, s = identity.versions, identity.ffd_support
    return FfdVersions(
        device=_ffd(v.register_ffd if v else None),
        registered=_ffd(
            v.ffd if v else None, v.fn_registered_ffd if v else None, s.current if s else None
        ),
        fn=_ffd(v.fn_max_ffd if v else None, s.fn_max if s else None),
    )


def _ffd(*codes: int | None) -> str | None:
    return next((fnr.FFD_VERSIONS[c] for c in codes if c in fnr.FFD_VERSIONS), None)


def device_info(identity: PiritIdentity, transport: str | None) -> DeviceInfo:
    firmware = identity.firmware_version
    if not firmware and identity.firmware_id is not None:
        firmware = str(identity.firmware_id)
    return DeviceInfo(
        vendor=VENDOR,
        model=model_name(identity.model),
        serial=identity.serial or None,
        firmware=firmware or None,
        rnm=identity.rnm or None,
        inn=identity.inn or None,
        ffd=ffd_versions(identity),
        transport=transport,
    )


def build_snapshot(
    *, identity: PiritIdentity, device: DeviceInfo, facts: PiritFacts, host_time: datetime
) -> HealthSnapshot:
    device_time = aware(facts.device_time, host_time)
    skew = round((device_time - host_time).total_seconds(), 1) if device_time else None
    return HealthSnapshot(
        taken_at=host_time,
        device=device,
        fn=fn_health(
            fn_status(facts),
            host_time,
            validity=facts.expiry,
            resource=facts.memory,
            firmware=(identity.versions.fn_firmware or None) if identity.versions else None,
        ),
        ofd=ofd_queue(facts.ofd, host_time),
        shift=_shift(facts, host_time),
        printer=_printer(facts.status, facts.printer),
        clock=ClockInfo(device_time=device_time, skew_s=skew),
    )


def fn_status(facts: PiritFacts) -> FnStatus:
    """0x78/2 completed with what other reads give: serial (0x78/1), last document
    (0x78/3) and its time (0x02/5)."""
    last = facts.last_fd_number
    return replace(
        facts.fn_status,
        serial=facts.fn_serial,
        last_document_number=last,
        # With no document in the FN there is no date, whatever 02h/5 still holds.
        last_document_at=None if last == 0 else facts.last_fiscal_at,
    )


def shift_is_open(facts: PiritFacts) -> bool:
    """The register's flag (0x00 bit 2); the FN's view when the register's says closed.

    A register and its FN out of step (error 42h) still hold an open shift somewhere:
    report it open rather than hide a running 24-hour clock.
    """
    fn_view = facts.fn_shift.open if facts.fn_shift else facts.fn_status.shift_open is True
    return facts.status.flags.shift_open or fn_view


def _shift(facts: PiritFacts, host_time: datetime) -> ShiftInfo:
    return shift_info(
        shift_is_open(facts),
        facts.fn_shift.number if facts.fn_shift else None,
        aware(facts.shift_opened_at, host_time),
        host_time,
        expired=facts.status.flags.shift_over_24h,
    )


def _printer(status: rec.Status, printer: rec.PrinterStatus) -> PrinterInfo:
    return PrinterInfo(
        paper=PaperState.OUT if printer.paper_out else PaperState.OK,
        cover_open=printer.cover_open,
        fault=any(getattr(printer, bit) for bit in PRINTER_FAULT_BITS),
        raw={
            "printer": printer.raw,
            "fatal": status.fatal.raw,
            "flags": status.flags.raw,
            "document": status.document.raw,
        },
    )
