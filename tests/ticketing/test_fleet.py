"""The console's fleet and register queries on a store filled directly, for exact figures:
filters, search, sort, paging, scope, a register's page; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from ticket_facts import T0, raised

from kktmon.protocol.health import Severity
from kktmon.ticketing.console_config import ConsoleSection, ConsoleUser
from kktmon.ticketing.fleet import Page, RegisterQuery, RegisterRow, Scope
from kktmon.ticketing.fleet_csv import csv_rows
from kktmon.ticketing.fleet_store import get_register, iter_registers, list_registers
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.store import RegisterFacts, TicketStore

HOUR = timedelta(hours=1)
CLIENTS = [
    ClientConfig(id="acme", name="ООО «Акме»", sites=["acme-1", "acme-2"]),
    ClientConfig(id="beta", name="Beta", sites=["beta-1"]),
]
HASH = "scrypt$16$1$1$c2FsdHNhbHQ$" + "A" * 43
EVERYTHING = Scope()  # an engineer's
ACME = Scope(sites=frozenset({"acme-1", "acme-2"}))
#: site, kkt, vendor, serial, days to block_at (None: no deadline), unsent documents
FLEET: list[tuple[str, str, str, str, int | None, int]] = [
    ("acme-1", "shtrih-0001", "shtrih", "0001", 40, 0),
    ("acme-1", "shtrih-0002", "shtrih", "0002", 3, 10),
    ("acme-1", "atol-0003", "atol", "0003", None, 9),
    ("acme-2", "atol-0004", "atol", "0004", 12, 0),
    ("beta-1", "shtrih-0005", "shtrih", "0005", 1, 2),
    ("beta-1", "pirit-0006", "pirit", "0006", None, 0),
    ("free-1", "atol-0007", "atol", "0_7%", 25, 100),
]


def facts(vendor: str, serial: str, days: int | None, unsent: int) -> dict[str, Any]:
    found: dict[str, Any] = {
        "vendor": vendor,
        "model": f"{vendor.upper()} M",
        "serial": serial,
        "fn_serial": f"99614403{serial}",
        "unsent_count": unsent,
        "taken_at": T0.isoformat(),
        "stale": False,
    }
    if days is not None:
        found |= {
            "fn_valid_until": (T0 + timedelta(days=days)).date().isoformat(),
            "block_at": (T0 + timedelta(days=days)).isoformat(),
            "block_reason": "fn_expiry",
        }
    if unsent:
        found["first_unsent_at"] = (T0 - unsent * HOUR).isoformat()
    return found


def fill(store: TicketStore) -> None:
    store.record_states(
        [
            RegisterFacts(site, kkt, facts(vendor, serial, days, unsent), T0)
            for site, kkt, vendor, serial, days, unsent in FLEET
        ]
    )
    store.apply(raised(T0, code="PAPER_OUT", site="acme-1", kkt="atol-0003"), T0)
    store.apply(raised(T0, code="COVER_OPEN", site="acme-1", kkt="atol-0003"), T0)
    archived = raised(
        T0,
        code="FN_ARCHIVE_CLOSED",
        severity=Severity.BLOCKED,
        site="beta-1",
        kkt="shtrih-0005",
        fn_serial="9",
    )
    store.apply(archived, T0)
    store.apply(raised(T0, code="PAPER_OUT", site="beta-1", kkt="pirit-0006"), T0)


@pytest.fixture
def fleet(store: TicketStore) -> TicketStore:
    fill(store)
    return store


def kkts(store: TicketStore, scope: Scope = EVERYTHING, **query: Any) -> list[str]:
    page = list_registers(store, RegisterQuery(**query), scope, CLIENTS, T0)
    assert page.total == len(page.items) or query.get("per_page")
    return [row.kkt for row in page.items]


def test_the_default_sort_is_the_soonest_block_at_unknown_last(fleet: TicketStore) -> None:
    by_deadline = ["shtrih-0005", "shtrih-0002", "atol-0004", "atol-0007", "shtrih-0001"]
    assert kkts(fleet) == [*by_deadline, "atol-0003", "pirit-0006"]
    assert kkts(fleet, descending=True) == [*by_deadline[::-1], "atol-0003", "pirit-0006"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("site", ["atol-0003", "shtrih-0001", "shtrih-0002", "atol-0004", "pirit-0006"]),
        ("kkt", ["atol-0003", "atol-0004", "atol-0007", "pirit-0006", "shtrih-0001"]),
        ("unsent_count", ["shtrih-0001", "atol-0004", "pirit-0006", "shtrih-0005", "atol-0003"]),
        ("fn_valid_until", ["shtrih-0005", "shtrih-0002", "atol-0004", "atol-0007"]),
    ],
)
def test_every_sort_key(fleet: TicketStore, sort: str, expected: list[str]) -> None:
    assert kkts(fleet, sort=sort)[: len(expected)] == expected
    if sort == "unsent_count":  # numbers, not texts: 100 > 10 > 9
        most = kkts(fleet, sort=sort, descending=True)[:3]
        assert most == ["atol-0007", "shtrih-0002", "atol-0003"]


def test_filters_narrow_and_combine(fleet: TicketStore) -> None:
    assert kkts(fleet, client="acme") == ["shtrih-0002", "atol-0004", "shtrih-0001", "atol-0003"]
    assert kkts(fleet, site="beta-1") == ["shtrih-0005", "pirit-0006"]
    assert kkts(fleet, vendor="atol") == ["atol-0004", "atol-0007", "atol-0003"]
    assert kkts(fleet, problem="PAPER_OUT") == ["atol-0003", "pirit-0006"]
    assert kkts(fleet, problem="PAPER_OUT", client="beta") == ["pirit-0006"]
    assert kkts(fleet, vendor="atol", client="acme", site="acme-2") == ["atol-0004"]
    assert kkts(fleet, client="nobody") == [] and kkts(fleet, problem="NO_SUCH") == []
    assert kkts(fleet, site="acme-1", client="beta") == []


def test_search_by_serial_fn_serial_or_register(fleet: TicketStore) -> None:
    assert kkts(fleet, search="0002") == ["shtrih-0002"]
    drives = ["shtrih-0005", "shtrih-0002", "atol-0004", "shtrih-0001", "atol-0003", "pirit-0006"]
    assert kkts(fleet, search="9961440300") == drives
    assert kkts(fleet, search="PIRIT") == ["pirit-0006"]  # any case
    # Wildcards are literal: '_' and '%' only match themselves.
    assert kkts(fleet, search="0_7%") == ["atol-0007"]
    assert kkts(fleet, search="_") == ["atol-0007"] and kkts(fleet, search="%") == ["atol-0007"]
    assert kkts(fleet, search="'; DROP TABLE devices; --") == []
    assert len(kkts(fleet)) == len(FLEET)


def test_pages_cover_the_fleet_once_with_its_total(fleet: TicketStore) -> None:
    seen: list[str] = []
    for number in (1, 2, 3):
        page = list_registers(fleet, RegisterQuery(page=number, per_page=3), Scope(), CLIENTS, T0)
        assert (page.total, page.pages, page.page) == (7, 3, number)
        seen += [row.kkt for row in page.items]
    assert seen == kkts(fleet)
    beyond = list_registers(fleet, RegisterQuery(page=9, per_page=3), Scope(), CLIENTS, T0)
    assert (beyond.items, beyond.total) == ([], 7)
    every = iter_registers(fleet, RegisterQuery(), Scope(), CLIENTS, T0)
    assert [row.kkt for row in every] == seen


def test_a_client_sees_only_its_sites(fleet: TicketStore) -> None:
    assert kkts(fleet, ACME) == ["shtrih-0002", "atol-0004", "shtrih-0001", "atol-0003"]
    assert kkts(fleet, ACME, client="beta") == [] and kkts(fleet, ACME, site="beta-1") == []
    assert kkts(fleet, ACME, search="0005") == [] and kkts(fleet, ACME, problem="PAPER_OUT") == [
        "atol-0003"
    ]
    assert get_register(fleet, "beta-1", "shtrih-0005", ACME, CLIENTS, T0) is None
    assert get_register(fleet, "acme-2", "atol-0004", ACME, CLIENTS, T0) is not None
    beta_user = ConsoleUser(name="b", role="client", client="beta", password_hash=HASH)
    assert Scope.of(beta_user, CLIENTS) == Scope(sites=frozenset({"beta-1"}))
    engineer = ConsoleUser(name="e", role="engineer", password_hash=HASH)
    assert Scope.of(engineer, CLIENTS) == Scope()


def test_a_row_carries_the_facts_counted_to_now(fleet: TicketStore) -> None:
    now = T0 + 20 * timedelta(minutes=1)
    (row,) = list_registers(fleet, RegisterQuery(search="0002"), Scope(), CLIENTS, now).items
    assert (row.client, row.client_name, row.vendor, row.model) == (
        "acme",
        "ООО «Акме»",
        "shtrih",
        "SHTRIH M",
    )
    assert (row.fn_valid_until, row.fn_days_left) == (date(2026, 5, 7), 3)
    assert row.unsent_count == 10 and row.oldest_unsent_age_h == pytest.approx(10 + 1 / 3)
    assert row.block_reason == "fn_expiry" and row.block_at == T0 + timedelta(days=3)
    assert row.stale  # 20 minutes since its state, past stale_after_min (15)
    patient = ConsoleSection(stale_after_min=30)
    page = list_registers(
        fleet, RegisterQuery(search="0002"), Scope(), CLIENTS, now, console=patient
    )
    assert not page.items[0].stale
    (odd,) = list_registers(fleet, RegisterQuery(search="0003"), Scope(), CLIENTS, T0).items
    # Most severe first, then oldest: the two warnings in the order they came.
    assert [(p.code, p.severity) for p in odd.problems] == [
        ("PAPER_OUT", Severity.WARNING),
        ("COVER_OPEN", Severity.WARNING),
    ]
    (worst,) = list_registers(fleet, RegisterQuery(search="0005"), Scope(), CLIENTS, T0).items
    assert worst.problems[0].code == "FN_ARCHIVE_CLOSED"


def test_a_register_page_has_its_facts_tickets_and_hours(fleet: TicketStore) -> None:
    later = [
        RegisterFacts("acme-1", "atol-0003", facts("atol", "0003", None, 9 + h), T0 + h * HOUR)
        for h in (1, 2)
    ]
    fleet.record_states(later)
    found = get_register(fleet, "acme-1", "atol-0003", Scope(), CLIENTS, T0 + 2 * HOUR)
    assert found is not None
    assert found.facts["serial"] == "0003" and found.last_seen_at == T0 + 2 * HOUR
    assert [p.unsent_count for p in found.history] == [9, 10, 11]
    assert [p.at for p in found.history] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert sorted(t.problem for t in found.tickets) == ["COVER_OPEN", "PAPER_OUT"]
    assert all(t.client == "acme" for t in found.tickets)
    short = ConsoleSection(history_days=1)
    tomorrow = get_register(
        fleet, "acme-1", "atol-0003", ACME, CLIENTS, T0 + 25 * HOUR, console=short
    )
    assert tomorrow is not None and [p.at for p in tomorrow.history] == [T0 + HOUR, T0 + 2 * HOUR]
    assert get_register(fleet, "acme-1", "nope", Scope(), CLIENTS, T0) is None


def test_bad_queries_are_refused_before_the_store() -> None:
    for bad in ({"per_page": 501}, {"page": 0}, {"sort": "facts"}, {"search": ""}, {"x": 1}):
        with pytest.raises(ValidationError):
            RegisterQuery(**bad)


def test_csv_rows_name_the_fields_and_defuse_formulas(fleet: TicketStore) -> None:
    fleet.record_states([RegisterFacts("free-1", "evil", facts("=HYPERLINK(1)", "-1", 2, 0), T0)])
    page: Page[RegisterRow] = list_registers(
        fleet, RegisterQuery(site="free-1"), Scope(), CLIENTS, T0
    )
    header, *rows = list(csv_rows(page.items, RegisterRow))
    assert header[:3] == ["site", "kkt", "client"] and header[-1] == "problems"
    evil = rows[0]
    assert evil[header.index("vendor")] == "'=HYPERLINK(1)"
    assert evil[header.index("serial")] == "'-1"
    assert evil[header.index("fn_days_left")] == "2" and evil[header.index("stale")] == "false"
    assert evil[header.index("block_at")] == (T0 + timedelta(days=2)).isoformat()
    assert rows[1][header.index("unsent_count")] == "100"
