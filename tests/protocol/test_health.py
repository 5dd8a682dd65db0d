"""The health model (the MQTT contract): JSON shape, flag decoding, the block deadline."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from kktmon.protocol.health import (
    OFD_BLOCK_AFTER,
    SCHEMA_VERSION,
    SHIFT_BLOCK_AFTER,
    ClockInfo,
    DeviceInfo,
    FfdVersions,
    FnHealth,
    FnPhase,
    FnPhaseInfo,
    FnWarnings,
    HealthSnapshot,
    LinkInfo,
    LinkState,
    OfdExchangeStatus,
    OfdQueue,
    Owner,
    PaperState,
    PrinterInfo,
    Problem,
    Severity,
    ShiftInfo,
    ShiftState,
    earliest_block,
)
from kktmon.protocol.problems import BlockReason

MSK = timezone(timedelta(hours=3))
TAKEN = datetime(2026, 1, 15, 16, 7, 41, tzinfo=MSK)


def full_snapshot() -> HealthSnapshot:
    """Every section filled, values from examples E1-E11."""
    return HealthSnapshot(
        taken_at=TAKEN,
        device=DeviceInfo(
            vendor="shtrih",
            model="ШТРИХ-ЛАЙТ-02Ф",
            serial="0392190008017798",
            firmware="T.3 7196",
            inn="9706048530",
            ffd=FfdVersions(device="1.2", fn="1.2", registered="1.2"),
            transport="tcp://192.0.2.10:7778",
        ),
        fn=FnHealth(
            serial="9287440301120991",
            phase=FnPhaseInfo.from_byte(3),
            valid_until=date(2026, 12, 31),
            days_left=350,
            registrations_left=11,
            warnings=FnWarnings.from_byte(0x0A),
            last_document_number=425,
            last_document_at=datetime(2021, 7, 29, 11, 29, tzinfo=MSK),
            documents_left=245231,
            storage_30d_free_kb=1023,
        ),
        ofd=OfdQueue(
            unsent_count=3,
            first_unsent_number=423,
            first_unsent_at=datetime(2021, 7, 29, 11, 20, tzinfo=MSK),
            oldest_unsent_age_h=1.5,
            exchange=OfdExchangeStatus.from_byte(0x02),
        ),
        shift=ShiftInfo(state=ShiftState.OPEN, number=42, hours_open=2.25),
        printer=PrinterInfo(paper=PaperState.OK, cover_open=False, raw={"flags": 0x0292}),
        clock=ClockInfo(device_time=datetime(2026, 1, 15, 16, 7, 40, tzinfo=MSK), skew_s=-1.0),
        link=LinkInfo(state=LinkState.OK, duration_ms=18.5, bytes_tx=12, bytes_rx=40),
        last_good_at=TAKEN,
        problems=[
            Problem(
                code="OFD_BACKLOG",
                severity=Severity.WARNING,
                owner=Owner.STORE,
                message="3 documents not confirmed by the OFD",
                since=datetime(2021, 7, 29, 11, 20, tzinfo=MSK),
                facts={"unsent": 3, "first": 423, "ratio": 0.5, "ok": False, "note": None},
            )
        ],
    )


# ------------------------------------------------------------------ JSON


def test_json_round_trip() -> None:
    snapshot = full_snapshot()
    assert HealthSnapshot.model_validate_json(snapshot.to_json()) == snapshot


def test_schema_key_by_alias() -> None:
    document = json.loads(full_snapshot().to_json())
    assert document["schema"] == SCHEMA_VERSION
    assert "schema_version" not in document


def test_schema_accepted_by_alias_and_by_name() -> None:
    minimal = {"taken_at": TAKEN.isoformat(), "device": {"vendor": "shtrih"}}
    assert HealthSnapshot.model_validate({**minimal, "schema": 7}).schema_version == 7
    assert HealthSnapshot.model_validate({**minimal, "schema_version": 7}).schema_version == 7
    assert HealthSnapshot.model_validate(minimal).schema_version == SCHEMA_VERSION


def test_datetimes_are_iso_8601_with_offset() -> None:
    document = json.loads(full_snapshot().to_json())
    assert document["taken_at"] == "2026-01-15T16:07:41+03:00"
    assert document["fn"]["valid_until"] == "2026-12-31"
    for text in (document["taken_at"], document["ofd"]["first_unsent_at"]):
        assert datetime.fromisoformat(text).utcoffset() == timedelta(hours=3)


def test_enums_travel_as_strings() -> None:
    document = json.loads(full_snapshot().to_json())
    assert document["fn"]["phase"] == {"name": "fiscal", "raw": 3}
    assert document["shift"]["state"] == "open"
    assert document["problems"][0]["severity"] == "warning"


def test_unknown_fields_are_refused() -> None:
    document = json.loads(full_snapshot().to_json())
    document["fn"]["surprise"] = 1
    with pytest.raises(ValidationError):
        HealthSnapshot.model_validate(document)


def test_kkt_id() -> None:
    assert full_snapshot().kkt_id == "shtrih-0392190008017798"
    assert HealthSnapshot(taken_at=TAKEN, device=DeviceInfo(vendor="atol")).kkt_id == (
        "atol-unknown"
    )


# ------------------------------------------------------------------ flag bytes


@pytest.mark.parametrize(
    ("raw", "set_flags"),
    [
        (0x00, set()),
        (0x01, {"urgent_replacement"}),
        (0x02, {"resource_exhausting"}),
        (0x04, {"memory_90"}),
        (0x08, {"ofd_timeout"}),
        (0x0A, {"resource_exhausting", "ofd_timeout"}),
        (0x80, {"critical_error"}),
        (0x70, set()),  # undocumented bits: kept only in raw
        (
            0xFF,
            {"urgent_replacement", "resource_exhausting", "memory_90", "ofd_timeout"}
            | {"critical_error"},
        ),
    ],
)
def test_fn_warnings_from_byte(raw: int, set_flags: set[str]) -> None:
    warnings = FnWarnings.from_byte(raw)
    flags = {name for name, value in warnings.model_dump().items() if value is True}
    assert flags == set_flags
    assert warnings.raw == raw


@pytest.mark.parametrize(
    ("raw", "phase"),
    [
        (0, FnPhase.SETUP),
        (1, FnPhase.READY),
        (3, FnPhase.FISCAL),
        (7, FnPhase.POST_FISCAL),
        (15, FnPhase.ARCHIVE_READ),
        (2, FnPhase.UNKNOWN),
        (5, FnPhase.UNKNOWN),
        (0xFF, FnPhase.UNKNOWN),
    ],
)
def test_fn_phase_from_byte(raw: int, phase: FnPhase) -> None:
    assert FnPhaseInfo.from_byte(raw) == FnPhaseInfo(name=phase, raw=raw)


def test_ofd_exchange_status_from_byte() -> None:
    status = OfdExchangeStatus.from_byte(0x02)
    assert status.message_pending and not status.transport_connected
    assert OfdExchangeStatus.from_byte(0x3F).model_dump() == {
        **dict.fromkeys(OfdExchangeStatus.model_fields, True),
        "raw": 0x3F,
    }


# ------------------------------------------------------------------ block deadline

FN_EXPIRY = datetime(2026, 12, 31, tzinfo=MSK)


def snapshot_with(
    valid_until: date | None = None,
    unsent: int | None = None,
    first_unsent_at: datetime | None = None,
    shift: ShiftState | None = None,
    opened_at: datetime | None = None,
) -> HealthSnapshot:
    return HealthSnapshot(
        taken_at=TAKEN,
        device=DeviceInfo(vendor="shtrih"),
        fn=FnHealth(valid_until=valid_until),
        ofd=OfdQueue(unsent_count=unsent, first_unsent_at=first_unsent_at),
        shift=ShiftInfo(state=shift, opened_at=opened_at),
    )


def test_no_deadline_known() -> None:
    snapshot = snapshot_with()
    assert earliest_block(snapshot) is None
    stale = snapshot.model_copy(update={"block_at": TAKEN, "block_reason": "fn_expiry"})
    cleared = stale.with_block_deadline()
    assert (cleared.block_at, cleared.block_reason) == (None, None)


def test_fn_expiry_at_the_first_minute_of_the_end_date() -> None:
    assert earliest_block(snapshot_with(valid_until=date(2026, 12, 31))) == (
        FN_EXPIRY,
        "fn_expiry",
    )


@pytest.mark.parametrize(
    ("first_unsent_at", "opened_at", "expected"),
    [
        # OFD queue first: 30 days after 10.01 is 09.02, before the shift's 24 h
        (datetime(2026, 1, 10, 9, 0, tzinfo=MSK), None, "ofd_30_days"),
        (datetime(2026, 1, 10, 9, 0, tzinfo=MSK), TAKEN, "shift_24_hours"),
        (datetime(2025, 12, 10, 9, 0, tzinfo=MSK), TAKEN, "ofd_30_days"),
        (datetime(2026, 12, 20, 9, 0, tzinfo=MSK), None, "fn_expiry"),
        (None, datetime(2026, 12, 29, 23, 0, tzinfo=MSK), "shift_24_hours"),
        (None, datetime(2026, 12, 30, 1, 0, tzinfo=MSK), "fn_expiry"),
    ],
)
def test_earliest_of_the_three_wins(
    first_unsent_at: datetime | None, opened_at: datetime | None, expected: str
) -> None:
    snapshot = snapshot_with(
        valid_until=date(2026, 12, 31),
        unsent=3 if first_unsent_at else 0,
        first_unsent_at=first_unsent_at,
        shift=ShiftState.OPEN if opened_at else ShiftState.CLOSED,
        opened_at=opened_at,
    )
    candidates = {"fn_expiry": FN_EXPIRY}
    if first_unsent_at:
        candidates["ofd_30_days"] = first_unsent_at + OFD_BLOCK_AFTER
    if opened_at:
        candidates["shift_24_hours"] = opened_at + SHIFT_BLOCK_AFTER
    deadline = earliest_block(snapshot)
    assert deadline == (candidates[expected], expected)
    assert deadline[1] is BlockReason(expected)  # the table's member, not a re-spelled string
    assert min(candidates.values()) == candidates[expected]
    updated = snapshot.with_block_deadline()
    assert (updated.block_at, updated.block_reason) == (candidates[expected], expected)
    assert json.loads(updated.to_json())["block_reason"] == expected


def test_empty_ofd_queue_is_ignored() -> None:
    # FF39h reports garbage dates with a zero count; a driver may still pass one through.
    old = datetime(2020, 1, 1, tzinfo=MSK)
    for unsent in (0, None):
        snapshot = snapshot_with(unsent=unsent, first_unsent_at=old)
        assert earliest_block(snapshot) is None


def test_closed_shift_is_ignored() -> None:
    snapshot = snapshot_with(shift=ShiftState.CLOSED, opened_at=datetime(2020, 1, 1, tzinfo=MSK))
    assert earliest_block(snapshot) is None


@pytest.mark.parametrize("state", [ShiftState.OPEN, ShiftState.EXPIRED, None])
def test_shift_not_known_closed_counts(state: ShiftState | None) -> None:
    opened = datetime(2026, 1, 15, 9, 0, tzinfo=MSK)
    snapshot = snapshot_with(shift=state, opened_at=opened)
    assert earliest_block(snapshot) == (opened + timedelta(hours=24), "shift_24_hours")


def test_open_shift_without_opening_time_gives_no_deadline() -> None:
    assert earliest_block(snapshot_with(shift=ShiftState.OPEN)) is None
