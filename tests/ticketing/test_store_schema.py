"""Opening, migrating and maintaining the store."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ticket_facts import T0, StoreFactory, cleared, raised

from kktmon.protocol.errors import ConfigError, TicketStoreError
from kktmon.protocol.health import Severity
from kktmon.ticketing.store import OutcomeStatus, TicketStore, open_store
from kktmon.ticketing.store_db import SCHEMA_VERSION

DAY = timedelta(days=1)


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
