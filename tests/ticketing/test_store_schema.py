"""Opening, migrating and maintaining the store."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from ticket_facts import T0, StoreFactory, cleared, raised

from kktmon.protocol.errors import ConfigError, TicketStoreError
from kktmon.protocol.health import Severity
from kktmon.ticketing.lifecycle import TicketState
from kktmon.ticketing.store import OutcomeStatus, TicketStore, open_store
from kktmon.ticketing.store_db import SCHEMA_VERSION

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def _sql(store: TicketStore, statement: str) -> Any:
    return store._run(lambda tx: tx.run(statement))


def test_a_newer_schema_is_refused(store_url: str, make_store: StoreFactory) -> None:
    store = make_store()
    _sql(store, f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION + 1}, '2030-01-01')")
    with pytest.raises(TicketStoreError, match="newer than this kktmon"):
        open_store(store_url)


def test_bad_urls() -> None:
    with pytest.raises(ConfigError, match="use sqlite"):
        open_store("mysql://db/tickets")
    with pytest.raises(TicketStoreError, match="cannot connect"):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "tickets.sqlite3"
    with open_store(f"sqlite:///{path}"):
        pass
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(TicketStoreError):
        open_store(f"sqlite:///{path}/inside-a-file")  # the parent is a file


def test_prune_forgets_old_marks_and_tickets(store: TicketStore) -> None:
    store.apply(raised(T0, severity=Severity.BLOCKED, event_id="old"), T0)
    store.apply(cleared(T0 + 1 * DAY), T0 + DAY)
    store.tick(T0 + 2 * DAY)
    store.apply(raised(T0 + 2 * DAY, kkt="shtrih-live", event_id="new"), T0 + 2 * DAY)
    # Three dedup marks go; calls not yet delivered keep their resolved ticket.
    assert store.prune(T0 + 400 * DAY, events_days=30, resolved_days=365) == 3
    assert len(store.tickets()) == 2
    for sink in ("desk", "hook"):
        while calls := store.claim_calls(sink, 10, T0 + 400 * DAY):  # OPEN, then RESOLVE
            for call in calls:
                store.complete_call(call.id, None, T0 + 400 * DAY)
    store.prune(T0 + 400 * DAY, events_days=30, resolved_days=365)
    assert [t.kkt for t in store.tickets()] == ["shtrih-live"]
    assert store.calls() == []
    # The dedup mark is gone, and the stale-event guard still holds the line.
    late = raised(T0 + 2 * DAY, kkt="shtrih-live", event_id="new")
    assert store.apply(late, T0 + 400 * DAY).status is OutcomeStatus.CHANGED
    assert len(store.tickets()) == 1


def test_a_lost_postgresql_connection_is_reopened_within_the_call(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("a lost database connection is PostgreSQL's")
    import psycopg

    with open_store(store_url, now=T0) as store:
        store.apply(raised(T0), T0)
        backend = store._conn.info.backend_pid  # type: ignore[attr-defined]
        with psycopg.connect(store_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        assert [t.problem for t in store.tickets()] == ["PAPER_OUT"]
        assert store._conn.info.backend_pid != backend  # type: ignore[attr-defined]


def test_far_timestamps_read_back(store: TicketStore) -> None:
    early = datetime(1, 1, 3, tzinfo=UTC)
    store.apply(raised(early, code="EARLY", event_id=None), early)
    store.tick(T0)
    assert {t.problem for t in store.list_tickets()} == {"EARLY"}
    assert store.tickets()[0].first_seen_at == early
    last = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    store.apply(raised(last, code="LATE", event_id=None), T0)
    assert {t.problem for t in store.tickets()} == {"EARLY", "LATE"}
    year_zero = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))  # in UTC: year 0
    with pytest.raises(ValueError, match="cannot store"):
        store.apply(raised(year_zero, code="X"), T0)


def test_unpadded_years_of_older_sqlite_stores_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tickets.sqlite3"
    with open_store(url, now=T0) as store:
        store.apply(raised(T0, code="OLD"), T0)
    with sqlite3.connect(tmp_path / "tickets.sqlite3") as db:
        db.execute("UPDATE tickets SET first_seen_at = '1-01-01T00:00:00.000000+00:00'")
    with open_store(url, now=T0) as store:
        (row,) = store.list_tickets()
        assert row.first_seen_at == datetime(1, 1, 1, tzinfo=UTC)
        assert store.tick(T0 + HOUR)[0].state is TicketState.OPEN
