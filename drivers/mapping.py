"""Vendor-neutral pieces of the answers -> ``HealthSnapshot`` mappings.

Every vendor's mapping module (``shtrih_mapping``, ``atol_mapping``, ``pirit_mapping``)
decodes its own records, then builds the shared parts with these helpers, so the same
fact means the same number whichever register reported it.
"""

from __future__ import annotations

from datetime import date, datetime

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


def ofd_queue(
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


def fn_health(
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
