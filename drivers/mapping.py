"""Vendor-neutral pieces of the answers -> ``HealthSnapshot`` mappings.

Every vendor's mapping module (``shtrih_mapping``, ``atol_mapping``, ``pirit_mapping``)
decodes its own records, then builds the shared parts with these helpers, so the same
fact means the same number whichever register reported it.
"""

from __future__ import annotations

from datetime import datetime

from kktmon.protocol.health import OfdExchangeStatus, OfdQueue

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
