"""Vendor-neutral pieces of the answers -> ``HealthSnapshot`` mappings.

Every vendor's parsers produce the fiscal drive's records of :mod:`kktmon.protocol.fn`;
:func:`fn_health` and :func:`ofd_queue` turn those into the snapshot's ``fn`` and
``ofd`` the same way for every vendor, so the same fact means the same number whichever
register (or driver server) reported it. The vendor mappings (``drivers/<vendor>/
mapping.py``) keep only what is the vendor's own: status bytes, printer, shift.
"""

from __future__ import annotations

from datetime import date, datetime

from kktmon.protocol.fn import FnResource, FnStatus, FnValidity, OfdStatus
from kktmon.protocol.health import FnHealth, FnPhaseInfo, FnWarnings, OfdExchangeStatus, OfdQueue

SECONDS_PER_HOUR = 3600


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


def ofd_queue_from_values(
    *,
    unsent_count: int,
    first_unsent_number: int | None,
    first_unsent_at: datetime | None,
    status_byte: int,
    host_time: datetime,
) -> OfdQueue:
    """The OFD queue; the age is 0 with nothing unsent and unknown without a date."""
    first_at = aware(first_unsent_at, host_time)
    age_h = None
    if unsent_count == 0:
        age_h = 0.0
    elif first_at is not None:
        age_h = hours_since(first_at, host_time)
    return OfdQueue(
        unsent_count=unsent_count,
        first_unsent_number=first_unsent_number,
        first_unsent_at=first_at,
        oldest_unsent_age_h=age_h,
        exchange=OfdExchangeStatus.from_byte(status_byte),
    )


def fn_health_from_values(
    *,
    serial: str | None,
    phase: int | None,
    warnings: int,
    valid_until: date | None,
    last_document_number: int | None,
    last_document_at: datetime | None,
    documents_left: int | None,
    storage_30d_free_kb: int | None,
    host_time: datetime,
    registrations_left: int | None = None,
    register_days_left: int | None = None,
    firmware: str | None = None,
) -> FnHealth:
    """The FN part of a snapshot from decoded values.

    ``days_left`` counts from the host's date to ``valid_until``, as for every vendor;
    the register's own count is used only when it gives no date. ``phase`` None: the
    source cannot tell the phase (a driver server that only says "fiscal or not").
    """
    days_left = (valid_until - host_time.date()).days if valid_until else register_days_left
    return FnHealth(
        serial=serial or None,
        phase=FnPhaseInfo.from_byte(phase) if phase is not None else None,
        valid_until=valid_until,
        days_left=days_left,
        registrations_left=registrations_left,
        warnings=FnWarnings.from_byte(warnings),
        last_document_number=last_document_number,
        last_document_at=aware(last_document_at, host_time),
        memory_used_pct=memory_used_pct(last_document_number, documents_left),
        documents_left=documents_left,
        storage_30d_free_kb=storage_30d_free_kb,
        firmware=firmware,
    )


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
    """The snapshot's ``ofd``: all null when the source could not read the queue."""
    if status is None:
        return OfdQueue()
    return ofd_queue_from_values(
        unsent_count=status.unsent_count,
        first_unsent_number=status.first_unsent_number,
        first_unsent_at=status.first_unsent_at,
        status_byte=status.exchange,
        host_time=host_time,
    )
