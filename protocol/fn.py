"""The fiscal drive (ФН) and its OFD queue as every vendor reports them: one set of records.

The drive speaks one protocol whatever register it sits in. Shtrih-M (``FFxxh``) and
ATOL (``A4h xx``) pass its answers through byte for byte; Pirit (``78h``) and the driver
servers retell them as text or JSON. So the records are the same for every vendor, with
the health model's field names (:class:`~kktmon.protocol.health.FnHealth`,
:class:`~kktmon.protocol.health.OfdQueue`), and one mapping in ``drivers/mapping.py``
turns them into the snapshot's ``fn`` and ``ofd``.

The ``parse_*`` functions read the drive's own binary layout: the payload after the
vendor's frame, command echo and error byte are gone (``what`` names the command in
errors: ``"FF01h"``, ``"A4h 30h"``). Every datetime is naive register wall-clock time;
drivers attach the host's zone.

=================  ==========  ==========  ===========================================
record             Shtrih-M    ATOL        content
=================  ==========  ==========  ===========================================
FnStatus           FF01h       A4h 30h     phase, warnings, shift flag, last document
FnValidity         FF03h       A4h 32h     valid until, registrations left / done
FnFirmware         FF04h       A4h 33h     drive firmware version, release build
FnRegistration     FF09h       A4h 43h     registered at, INN, RNM (+ the FFD 1.1 tail)
OfdStatus          FF39h       A4h 20h     exchange bits, unsent count, first unsent
ShiftParameters    FF40h       A4h 10h     shift open, number, receipts in it
FnResource         FF63h       A4h 3Dh     documents left, 30-day storage left
=================  ==========  ==========  ===========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from kktmon.protocol.errors import MalformedAnswerError
from kktmon.protocol.fields import FieldCursor

#: FFD 1.1+ registration answers carry the OFD's INN and more after the common prefix
#: (the vendor Java driver's length rule).
REGISTRATION_LONG_FORM = 64


@dataclass(frozen=True)
class FnStatus:
    """The drive's status: phase and warning bytes raw, as FnPhaseInfo/FnWarnings read them.

    ``None`` is "this source cannot tell" (a driver server that only says "fiscal or not"
    leaves ``phase`` None; one without a warnings field leaves ``warnings`` None).
    """

    serial: str | None
    phase: int | None
    warnings: int | None
    last_document_number: int | None = None
    last_document_at: datetime | None = None
    shift_open: bool | None = None
    current_document: int | None = None
    document_data_received: bool | None = None


@dataclass(frozen=True)
class FnValidity:
    valid_until: date | None
    registrations_left: int | None = None
    registrations_done: int | None = None
    #: The register's own count of days, where it gives one instead of (or beside) a date.
    days_left: int | None = None


@dataclass(frozen=True)
class FnFirmware:
    version: str
    is_release: bool


@dataclass(frozen=True)
class FnRegistration:
    """The drive's registration; the fields after ``rnm`` exist in the long form only."""

    registered_at: datetime | None
    inn: str
    rnm: str
    tax_systems: int | None = None
    work_mode: int | None = None
    ofd_inn: str | None = None
    fd_number: int | None = None


@dataclass(frozen=True)
class OfdStatus:
    """The OFD queue; ``exchange`` holds the raw status bits (OfdExchangeStatus reads them).

    ``None`` is "this source cannot tell": a driver server gives the queue without the
    exchange bits or the reading flag.
    """

    exchange: int | None
    reading_message: bool | None
    unsent_count: int
    first_unsent_number: int | None
    first_unsent_at: datetime | None


@dataclass(frozen=True)
class ShiftParameters:
    open: bool
    number: int
    receipt_number: int


@dataclass(frozen=True)
class FnResource:
    """Free resource: documents the archive can still take, 30-day storage left."""

    documents_left: int
    storage_30d_free_kb: int
    marking_fill_pct: int | None = None


# ------------------------------------------------------------------ the drive's encodings


def ascii_text(raw: bytes) -> str:
    return raw.decode("ascii", errors="replace").strip(" \x00")


def fn_date(raw: bytes, what: str) -> date | None:
    """``YY MM DD``; all zeros means "none"."""
    if not any(raw):
        return None
    year, month, day = raw
    try:
        return date(2000 + year, month, day)
    except ValueError as exc:
        raise MalformedAnswerError(f"{what}: impossible date {raw.hex(' ')}") from exc


def fn_datetime(raw: bytes, what: str) -> datetime | None:
    """``YY MM DD hh mm``; all zeros means "none"."""
    if not any(raw):
        return None
    year, month, day, hour, minute = raw
    try:
        return datetime(2000 + year, month, day, hour, minute)
    except ValueError as exc:
        raise MalformedAnswerError(f"{what}: impossible date/time {raw.hex(' ')}") from exc


# ------------------------------------------------------------------ answer parsers


def parse_fn_status(payload: bytes, what: str) -> FnStatus:
    f = FieldCursor(payload, what)
    phase, current, received, shift, warnings = f.take(5)
    last_at = fn_datetime(f.take(5), f"{what} last document")
    serial = ascii_text(f.take(16))
    return FnStatus(
        serial=serial,
        phase=phase,
        warnings=warnings,
        last_document_number=f.uint(4),
        last_document_at=last_at,
        shift_open=shift == 1,
        current_document=current,
        document_data_received=received == 1,
    )


def parse_fn_serial(payload: bytes, what: str) -> str:
    return ascii_text(FieldCursor(payload, what).take(16))


def parse_fn_validity(payload: bytes, what: str) -> FnValidity:
    f = FieldCursor(payload, what)
    valid_until = fn_date(f.take(3), f"{what} validity")
    left = f.uint(1) if f.has(1) else None
    done = f.uint(1) if f.has(1) else None
    return FnValidity(valid_until, left, done)


def parse_fn_firmware(payload: bytes, what: str) -> FnFirmware:
    f = FieldCursor(payload, what)
    return FnFirmware(ascii_text(f.take(16)), f.uint(1) == 1)


def parse_registration(payload: bytes, what: str) -> FnRegistration:
    """The common prefix always; the tail where the answer has it (it differs between FN
    and FFD generations, so a short answer is not an error)."""
    f = FieldCursor(payload, what)
    registered_at = fn_datetime(f.take(5), f"{what} registration")
    inn, rnm = ascii_text(f.take(12)), ascii_text(f.take(20))
    if not f.has(2):
        return FnRegistration(registered_at, inn, rnm)
    tax_systems, work_mode = f.uint(1), f.uint(1)
    ofd_inn = None
    if len(payload) >= REGISTRATION_LONG_FORM:
        f.take(1)  # extended work mode
        ofd_inn = ascii_text(f.take(12))
        f.take(4)  # reason for the changed registration
    fd_number = f.uint(4) if f.has(4) else None
    return FnRegistration(registered_at, inn, rnm, tax_systems, work_mode, ofd_inn, fd_number)


def parse_ofd_status(payload: bytes, what: str) -> OfdStatus:
    f = FieldCursor(payload, what)
    exchange, reading = f.take(2)
    count, number, when = f.uint(2), f.uint(4), f.take(5)
    if count == 0:  # number and date are garbage when the queue is empty
        return OfdStatus(exchange, reading == 1, 0, None, None)
    first_at = fn_datetime(when, f"{what} first unsent")
    return OfdStatus(exchange, reading == 1, count, number, first_at)


def parse_shift_parameters(payload: bytes, what: str) -> ShiftParameters:
    f = FieldCursor(payload, what)
    return ShiftParameters(f.uint(1) == 1, f.uint(2), f.uint(2))


def parse_fn_resource(payload: bytes, what: str) -> FnResource:
    f = FieldCursor(payload, what)
    return FnResource(f.uint(4), f.uint(4), f.uint(1) if f.has(1) else None)


def parse_unconfirmed_count(payload: bytes, what: str) -> int:
    """Documents still without an OFD receipt; 2 bytes in the documents, 4 from some
    firmware (the vendor Java driver reads 4)."""
    if len(payload) not in (2, 4):
        raise MalformedAnswerError(f"{what}: count of {len(payload)} bytes")
    return int.from_bytes(payload, "little")
