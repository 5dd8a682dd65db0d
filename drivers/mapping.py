"""Vendor-neutral pieces of the answers -> ``HealthSnapshot`` mappings.

Every vendor's parsers produce the fiscal drive's records of :mod:`kktmon.protocol.fn`;
:func:`fn_health` and :func:`ofd_queue` turn those into the snapshot's ``fn`` and
``ofd`` the same way for every vendor, so the same fact means the same number whichever
register (or driver server) reported it; :func:`shift_info` and :func:`clock_info` do the
same for the shift and the clock. The vendor mappings (``drivers/<vendor>/mapping.py``)
keep only what is the vendor's own: identity, status bytes, the printer.
"""

from __future__ import annotations

from datetime import datetime

from kktmon.protocol.fn import FnResource, FnStatus, FnValidity, OfdStatus, ShiftParameters
from kktmon.protocol.health import (
    ClockInfo,
    FnHealth,
    FnPhaseInfo,
    FnWarnings,
    OfdExchangeStatus,
    OfdQueue,
    ShiftInfo,
    ShiftState,
)

SECONDS_PER_HOUR = 3600
#: Hours a shift may stay open; after them the register refuses to sell until it closes.
SHIFT_LIMIT_HOURS = 24


def aware(naive: datetime | None, host_time: datetime) -> datetime | None:
    """Register wall-clock time in the host's zone (DESIGN: both clocks in one zone)."""
    return naive.replace(tzinfo=host_time.tzinfo) if naive else None


def hours_since(moment: datetime, host_time: datetime) -> float:
    return round((host_time - moment).total_seconds() / SECONDS_PER_HOUR, 2)


def memory_used_pct(last_document: int | None, documents_left: int | None) -> float | None:
    """Fill of the FN archive: documents made / (made + still possible)."""
    if last_document is None or documents_left is None or last_document + documents_left <= 0:
        return None
    return round(100 * last_document / (last_document + documents_left), 2)


def fn_health(
    status: FnStatus,
    host_time: datetime,
    *,
    validity: FnValidity | None = None,
    resource: FnResource | None = None,
    firmware: str | None = None,
) -> FnHealth:
    """The snapshot's ``fn`` from the drive's records (what a source lacks stays null).

    ``days_left`` counts from the host's date to ``valid_until``, as for every vendor;
    the register's own count is used only when it gives no date.
    """
    valid_until = validity.valid_until if validity else None
    days_left = validity.days_left if validity else None
    if valid_until is not None:
        days_left = (valid_until - host_time.date()).days
    documents_left = resource.documents_left if resource else None
    return FnHealth(
        serial=status.serial or None,
        phase=FnPhaseInfo.from_byte(status.phase) if status.phase is not None else None,
        valid_until=valid_until,
        days_left=days_left,
        registrations_left=validity.registrations_left if validity else None,
        warnings=FnWarnings.from_byte(status.warnings or 0),
        last_document_number=status.last_document_number,
        last_document_at=aware(status.last_document_at, host_time),
        memory_used_pct=memory_used_pct(status.last_document_number, documents_left),
        documents_left=documents_left,
        storage_30d_free_kb=resource.storage_30d_free_kb if resource else None,
        firmware=firmware,
    )


def ofd_queue(status: OfdStatus | None, host_time: datetime) -> OfdQueue:
    """The snapshot's ``ofd``: all null when the source could not read the queue.

    The age is 0 with nothing unsent and unknown without a date; ``exchange`` is null
    when the source gives no status bits.
    """
    if status is None:
        return OfdQueue()
    first_at = aware(status.first_unsent_at, host_time)
    age_h = None
    if status.unsent_count == 0:
        age_h = 0.0
    elif first_at is not None:
        age_h = hours_since(first_at, host_time)
    exchange = status.exchange
    return OfdQueue(
        unsent_count=status.unsent_count,
        first_unsent_number=status.first_unsent_number,
        first_unsent_at=first_at,
        oldest_unsent_age_h=age_h,
        exchange=OfdExchangeStatus.from_byte(exchange) if exchange is not None else None,
    )


def clock_info(device_time: datetime | None, host_time: datetime) -> ClockInfo:
    """The snapshot's ``clock`` from the register's naive wall-clock time (null if unread)."""
    moment = aware(device_time, host_time)
    if moment is None:
        return ClockInfo()
    return ClockInfo(device_time=moment, skew_s=round((moment - host_time).total_seconds(), 1))


def fn_shift(shift: ShiftParameters | None, status: FnStatus, last_closed: int) -> tuple[bool, int]:
    """Whether a shift is open and its number, the FN's word first.

    The drive's shift parameters when the register passed them on; else the status's
    shift flag and the register's own last *closed* shift, plus one while one is open.
    """
    if shift is not None:
        return shift.open, shift.number
    is_open = status.shift_open is True
    return is_open, last_closed + 1 if is_open else last_closed


def shift_info(
    is_open: bool,
    number: int | None,
    opened_at: datetime | None,
    host_time: datetime,
    *,
    expired: bool = False,
) -> ShiftInfo:
    """The snapshot's ``shift``; ``opened_at`` already in the host's zone.

    An open shift has expired when the register says so (``expired``) or when
    :data:`SHIFT_LIMIT_HOURS` have passed since it opened; a closed one has only a number.
    """
    if not is_open:
        return ShiftInfo(state=ShiftState.CLOSED, number=number)
    hours = hours_since(opened_at, host_time) if opened_at is not None else None
    expired = expired or (hours is not None and hours >= SHIFT_LIMIT_HOURS)
    return ShiftInfo(
        state=ShiftState.EXPIRED if expired else ShiftState.OPEN,
        number=number,
        opened_at=opened_at,
        hours_open=hours,
    )
