"""Ticket text: what the engineer reads before leaving for the store."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from ticket_facts import T0, policy, raised

from kktmon.protocol.health import (
    DeviceInfo,
    FnHealth,
    FnPhase,
    FnPhaseInfo,
    HealthSnapshot,
    OfdQueue,
    Severity,
)
from kktmon.protocol.problems import ProblemCode
from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing import text

SNAPSHOT = HealthSnapshot(
    taken_at=T0,
    device=DeviceInfo(vendor="shtrih", model="ШТРИХ-М-01Ф", serial="0012345678", rnm="0000000001"),
    fn=FnHealth(
        serial="9961440300112233",
        phase=FnPhaseInfo(name=FnPhase.FISCAL, raw=3),
        valid_until=date(2026, 5, 13),
        days_left=9,
    ),
    ofd=OfdQueue(unsent_count=12, first_unsent_at=datetime(2026, 5, 1, 10, 30, tzinfo=UTC)),
    block_at=datetime(2026, 5, 13, 0, 0, tzinfo=UTC),
    block_reason="fn_expiry",
)


def body(code: str, **facts: Any) -> lc.Ticket:
    fact = raised(
        code=code,
        severity=Severity.CRITICAL,
        snapshot=text.snapshot_facts(SNAPSHOT),
        fn_serial="9961440300112233",
        **facts,
    )
    change = lc.on_raised(None, fact, T0, policy())
    assert change is not None
    return change.ticket


def test_the_description_carries_every_fact_an_engineer_needs() -> None:
    ticket = body("FN_EXPIRING", days_left=9, valid_until="2026-05-13")
    assert ticket.title == "[store-001] Fiscal drive expiring: ШТРИХ-М-01Ф shtrih-0012345678"
    d = ticket.description
    for needle in (
        "ШТРИХ-М-01Ф",
        "serial 0012345678",
        "RNM 0000000001",
        "Fiscal drive: 9961440300112233, valid until 2026-05-13 (9 days left)",
        "OFD queue: 12 unsent, first unsent 2026-05-01 10:30",
        "SLA deadline): 2026-05-13 00:00+00:00 (fn_expiry)",
        "last seen: 2026-05-04 12:00",
        "ФН-1.1М, 36 months",
    ):
        assert needle in d, (needle, d)
    assert ticket.block_at == datetime(2026, 5, 13, tzinfo=UTC)


def test_replacement_hint_only_for_drive_problems() -> None:
    assert "Bring:" not in body("PAPER_OUT").description
    assert "Bring:" in body("FN_MEMORY_FULL").description


def test_replacement_hint_sources() -> None:
    assert text.replacement_hint({}, {"fn_model": "ФН-1.2 36"}).startswith("ФН-1.2 36")
    assert "15 months" in text.replacement_hint({"fn_serial": "9960440300000001"}, {})
    neutral = text.replacement_hint({"fn_serial": "1234"}, {})
    assert "36-month" in neutral and "15-month" in neutral


def test_snapshot_facts_are_flat_json_scalars() -> None:
    facts = text.snapshot_facts(SNAPSHOT)
    assert facts["fn_valid_until"] == "2026-05-13"
    assert facts["block_at"] == "2026-05-13T00:00:00+00:00"
    assert all(isinstance(v, str | int | float | bool) for v in facts.values())
    assert "first_unsent_number" not in facts  # unknown values are left out


def test_unknown_codes_and_missing_facts_still_read_well() -> None:
    fact = raised(code="SOMETHING_NEW", snapshot={}, event_id=None)
    change = lc.on_raised(None, fact, T0, policy())
    assert change is not None
    assert change.ticket.title == "[store-001] SOMETHING_NEW: shtrih-0012345678"
    assert "Register: shtrih-0012345678" in change.ticket.description


def test_every_code_has_a_title_of_its_own() -> None:
    assert set(text.LABELS) == set(ProblemCode)
    assert len(set(text.LABELS.values())) == len(text.LABELS)
    assert text.label("COVER_OPEN") == "Printer cover open"
