"""The FN replacement plan on a store filled directly: who is due within 30/60/90 days,
grouped by ISO week and by site and drive type, in scope; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from ticket_facts import T0, cleared, raised

from kktmon.protocol.health import Severity
from kktmon.ticketing.fleet import Scope
from kktmon.ticketing.fleet_csv import csv_rows
from kktmon.ticketing.fleet_plan import PlanItem, PlanSite, monday, page_of
from kktmon.ticketing.fleet_store import plan
from kktmon.ticketing.lifecycle import TicketState
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.store import RegisterFacts, TicketStore

CLIENTS = [
    ClientConfig(id="acme", name="Acme", sites=["acme-1", "acme-2"]),
    ClientConfig(id="beta", name="Beta", sites=["beta-1"]),
]
LONG, SHORT = "99614403", "99604403"  # 36- and 15-month drives (text._FN_PREFIXES)
LONG_HINT = "ФН-1.1М, 36 months, the type now installed (from its serial; check the registration)"
SHORT_HINT = "ФН-1.1М, 15 months, the type now installed (from its serial; check the registration)"
NAMED_HINT = "ФН-1.2 36 (as reported by the register)"


def day(n: int) -> date:
    return (T0 + timedelta(days=n)).date()


def midnight(n: int) -> datetime:
    return datetime.combine(day(n), time(), UTC)


def state(site: str, kkt: str, drive: str | None, valid: int | None, **more: Any) -> RegisterFacts:
    facts: dict[str, Any] = {"vendor": "shtrih", "model": "M", "serial": kkt[-4:]}
    if drive is not None:
        facts["fn_serial"] = f"{drive}{kkt[-4:]}0000"
    if valid is not None:
        facts["fn_valid_until"] = day(valid).isoformat()
    return RegisterFacts(site, kkt, facts | more, T0)


@pytest.fixture
def due(store: TicketStore) -> TicketStore:
    memory = {"block_reason": "fn_memory_full", "block_at": (T0 + timedelta(days=20)).isoformat()}
    ofd = {"block_reason": "ofd_30_days", "block_at": (T0 + timedelta(days=1)).isoformat()}
    store.record_states(
        [
            state("acme-1", "r-0001", LONG, 2),
            state("acme-1", "r-0002", SHORT, 9),
            state("acme-1", "r-0003", SHORT, 9),
            state("acme-2", "r-0004", LONG, 400, **memory),
            state("beta-1", "r-0005", LONG, -3),
            state("beta-1", "r-0006", LONG, 45),
            state("beta-1", "r-0007", LONG, 80),
            state("free-1", "r-0008", LONG, 200, **ofd),
            state("free-1", "r-0009", None, None),
            state("acme-2", "r-0010", LONG, 300),
        ]
    )
    broken = raised(
        T0,
        code="FN_CRITICAL_ERROR",
        severity=Severity.CRITICAL,
        site="free-1",
        kkt="r-0009",
        fn_serial="1234",
        fn_model="ФН-1.2 36",
    )
    store.apply(broken, T0)
    before = T0 - timedelta(days=2)
    gone: dict[str, Any] = {"code": "FN_MEMORY_FULL", "site": "acme-2", "kkt": "r-0010"}
    store.apply(raised(before, fn_serial="5", **gone), before)
    store.apply(cleared(before, fn_serial="5", **gone), before)
    store.tick(T0 - timedelta(days=1))
    assert {t.kkt: t.state for t in store.tickets()}["r-0010"] is TicketState.RESOLVED
    return store


def test_thirty_days_grouped_by_week_and_by_site(due: TicketStore) -> None:
    month = plan(due, 30, Scope(), CLIENTS, T0)
    assert [(i.kkt, i.block_at, i.block_reason) for i in month.items] == [
        ("r-0005", midnight(-3), "fn_expiry"),  # overdue: still to do
        ("r-0009", T0, "FN_CRITICAL_ERROR"),  # a ticket asks for a drive now
        ("r-0001", midnight(2), "fn_expiry"),
        ("r-0002", midnight(9), "fn_expiry"),
        ("r-0003", midnight(9), "fn_expiry"),
        ("r-0004", T0 + timedelta(days=20), "fn_memory_full"),
    ]
    this_week = monday(T0.date())
    assert this_week == date(2026, 5, 4)
    assert [i.week for i in month.items] == [this_week] * 3 + [date(2026, 5, 11)] * 2 + [
        date(2026, 5, 18)
    ]
    assert [(w.week, w.count) for w in month.by_week] == [
        (date(2026, 5, 4), 3),
        (date(2026, 5, 11), 2),
        (date(2026, 5, 18), 1),
    ]
    assert month.by_site == [
        PlanSite(site="acme-1", client="acme", fn_type=SHORT_HINT, count=2),
        PlanSite(site="acme-1", client="acme", fn_type=LONG_HINT, count=1),
        PlanSite(site="acme-2", client="acme", fn_type=LONG_HINT, count=1),
        PlanSite(site="beta-1", client="beta", fn_type=LONG_HINT, count=1),
        PlanSite(site="free-1", client=None, fn_type=NAMED_HINT, count=1),
    ]
    ticketed = month.items[1]
    assert (ticketed.fn_serial, ticketed.suggested_fn_type) == ("1234", NAMED_HINT)


def test_sixty_and_ninety_days_reach_further(due: TicketStore) -> None:
    assert [i.kkt for i in plan(due, 60, Scope(), CLIENTS, T0).items][-1] == "r-0006"
    ninety = plan(due, 90, Scope(), CLIENTS, T0)
    assert len(ninety.items) == 8 and ninety.items[-1].kkt == "r-0007"
    assert sum(w.count for w in ninety.by_week) == sum(s.count for s in ninety.by_site) == 8
    assert "r-0008" not in {i.kkt for i in ninety.items}  # an OFD deadline needs no drive
    assert "r-0010" not in {i.kkt for i in ninety.items}  # a resolved drive ticket is done


def test_a_client_plans_only_its_sites(due: TicketStore) -> None:
    acme = Scope(sites=frozenset({"acme-1", "acme-2"}))
    mine = plan(due, 90, acme, CLIENTS, T0)
    assert {i.site for i in mine.items} == {"acme-1", "acme-2"}
    assert {s.site for s in mine.by_site} == {"acme-1", "acme-2"}
    assert plan(due, 90, acme, CLIENTS, T0, client="beta").items == []
    assert [i.kkt for i in plan(due, 30, Scope(), CLIENTS, T0, client="beta").items] == ["r-0005"]


def test_plan_csv_is_the_purchasing_sheet(due: TicketStore) -> None:
    month = plan(due, 30, Scope(), CLIENTS, T0)
    header, first, *_ = list(csv_rows(month.items, PlanItem))
    assert header[:3] == ["site", "kkt", "client"] and "suggested_fn_type" in header
    assert first[header.index("week")] == "2026-05-04"
    assert first[header.index("block_at")] == midnight(-3).isoformat()
    header, *sites = list(csv_rows(month.by_site, PlanSite))
    assert header == ["site", "client", "fn_type", "count"]
    assert sites[0] == ["acme-1", "acme", SHORT_HINT, "2"]


def test_a_page_of_the_plan_keeps_its_groupings_whole(due: TicketStore) -> None:
    ninety = plan(due, 90, Scope(), CLIENTS, T0)
    assert (ninety.total, ninety.per_page, ninety.pages) == (8, None, 1)
    pages = [page_of(ninety, n, 3) for n in (1, 2, 3, 4)]
    assert [[i.kkt for i in p.items] for p in pages] == [
        [i.kkt for i in ninety.items[:3]],
        [i.kkt for i in ninety.items[3:6]],
        [i.kkt for i in ninety.items[6:]],
        [],  # past the last page: none, and still the whole plan's counts
    ]
    for n, one in enumerate(pages, start=1):
        assert (one.total, one.page, one.per_page, one.pages) == (8, n, 3, 3)
        assert (one.by_site, one.by_week) == (ninety.by_site, ninety.by_week)
    acme = plan(due, 90, Scope(sites=frozenset({"acme-1", "acme-2"})), CLIENTS, T0)
    second = page_of(acme, 2, 2)
    assert second.total == acme.total == 4
    assert {i.site for i in second.items} <= {"acme-1", "acme-2"} and len(second.items) == 2
