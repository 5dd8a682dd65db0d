"""The replacement plan's reading of a register, beyond the common cases: facts of the
wrong kind, several deadlines at once, a drive ticket for a register with no state.

The plan reads eight facts of each register as a row and validates the whole plan in
one call (``fleet_plan``: built for 13,000 items); these pin what it keeps, on SQLite
and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from ticket_facts import T0, raised

from kktmon.protocol.health import Severity
from kktmon.ticketing.fleet import Scope
from kktmon.ticketing.fleet_plan import Plan
from kktmon.ticketing.fleet_store import plan
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.store import RegisterFacts, TicketStore

CLIENTS = [ClientConfig(id="acme", name="Acme", sites=["odd-1", "ghost-1"])]
LONG_HINT = "ФН-1.1М, 36 months, the type now installed (from its serial; check the registration)"


def midnight(days: int) -> datetime:
    return datetime.combine((T0 + timedelta(days=days)).date(), time(), UTC)


def record(store: TicketStore, kkt: str, at: datetime = T0, **facts: Any) -> None:
    store.record_states([RegisterFacts("odd-1", kkt, facts, at)])


def test_facts_of_the_wrong_kind_are_unknown_and_the_earliest_deadline_wins(
    store: TicketStore,
) -> None:
    soon = (T0 + timedelta(days=1)).isoformat()
    # Numbers where texts belong, texts that are no date or time: unknown, no error.
    record(store, "r-0001", vendor=7, model=5, fn_serial=99614403, fn_valid_until=12345)
    record(store, "r-0002", fn_valid_until="soon", block_reason="fn_memory_full", block_at="x")
    record(store, "r-0003", block_reason=3, block_at=soon, fn_valid_until=None)
    # The drive fills up before it expires, and the other way round.
    record(
        store,
        "r-0004",
        vendor="shtrih",
        fn_serial="996144030004",
        fn_valid_until=midnight(3).date().isoformat(),
        block_reason="fn_memory_full",
        block_at=soon,
    )
    record(
        store,
        "r-0005",
        vendor="atol",
        fn_valid_until=midnight(2).date().isoformat(),
        block_reason="fn_archive_closed",
        block_at=(T0 + timedelta(days=5)).isoformat(),
    )
    found = plan(store, 90, Scope(), CLIENTS, T0)
    assert [(i.kkt, i.block_at, i.block_reason, i.vendor) for i in found.items] == [
        ("r-0004", T0 + timedelta(days=1), "fn_memory_full", "shtrih"),
        ("r-0005", midnight(2), "fn_expiry", "atol"),
    ]
    first = found.items[0]
    assert (first.fn_serial, first.suggested_fn_type, first.client) == (
        "996144030004",
        LONG_HINT,
        "acme",
    )
    assert found.items[1].fn_valid_until == midnight(2).date()


def test_a_drive_ticket_for_a_register_with_no_state_is_planned_now(store: TicketStore) -> None:
    broken = raised(
        T0,
        code="FN_CRITICAL_ERROR",
        severity=Severity.CRITICAL,
        site="ghost-1",
        kkt="r-0009",
        fn_serial="99614403123",
    )
    store.apply(broken, T0)
    (item,) = plan(store, 30, Scope(), CLIENTS, T0).items
    assert (item.site, item.kkt, item.block_at, item.block_reason) == (
        "ghost-1",
        "r-0009",
        T0,
        "FN_CRITICAL_ERROR",
    )
    assert (item.model, item.serial, item.fn_valid_until) == (None, None, None)
    assert (item.fn_serial, item.suggested_fn_type) == ("99614403123", LONG_HINT)


def test_the_plan_is_what_validating_it_again_gives(store: TicketStore) -> None:
    record(store, "r-0001", fn_serial="99604403", fn_valid_until=midnight(1).date().isoformat())
    record(store, "r-0002", block_reason="fn_memory_full", block_at=T0.isoformat())
    built = plan(store, 30, Scope(), CLIENTS, T0)
    assert len(built.items) == 2
    assert Plan.model_validate_json(built.model_dump_json()) == built


def test_a_plan_asked_again_reuses_its_items_and_sees_what_changed(store: TicketStore) -> None:
    record(
        store,
        "r-0001",
        model="M",
        fn_serial="99604403",
        fn_valid_until=midnight(5).date().isoformat(),
    )
    record(
        store,
        "r-0002",
        model="M",
        fn_serial="99614403",
        fn_valid_until=midnight(6).date().isoformat(),
    )
    first = plan(store, 30, Scope(), CLIENTS, T0)
    again = plan(store, 30, Scope(), CLIENTS, T0)
    assert [id(i) for i in again.items] == [id(i) for i in first.items]  # built once
    # A new drive in r-0001 (a year on), a new model name in r-0002: the plan follows.
    record(
        store,
        "r-0001",
        T0 + timedelta(minutes=1),
        model="M",
        fn_serial="99614403",
        fn_valid_until=midnight(400).date().isoformat(),
    )
    record(
        store,
        "r-0002",
        T0 + timedelta(minutes=1),
        model="M2",
        fn_serial="99614403",
        fn_valid_until=midnight(6).date().isoformat(),
    )
    later = plan(store, 30, Scope(), CLIENTS, T0)
    assert [(i.kkt, i.model) for i in later.items] == [("r-0002", "M2")]
    # Another client list names another owner: not the item built for the first one.
    others = [ClientConfig(id="zeta", name="Zeta", sites=["odd-1"])]
    assert [i.client for i in plan(store, 30, Scope(), others, T0).items] == ["zeta"]
