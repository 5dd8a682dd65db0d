"""The console reads in one snapshot that holds no writer back (``TicketStore.read``):
a page and its count agree while workers write, and a worker is not kept waiting by a
reader (on SQLite a deferred transaction, on PostgreSQL REPEATABLE READ READ ONLY)."""

from __future__ import annotations

import pytest
from ticket_facts import T0, StoreFactory

from kktmon.protocol.errors import TicketStoreError
from kktmon.ticketing.store import RegisterFacts
from kktmon.ticketing.store_db import Tx


def _count(tx: Tx) -> int:
    row = tx.one("SELECT COUNT(*) FROM devices")
    return int(row[0]) if row else 0


def test_a_read_sees_one_snapshot_and_holds_no_writer_back(make_store: StoreFactory) -> None:
    reader, writer = make_store(), make_store()
    writer.record_states([RegisterFacts("s", "k-1", {"vendor": "atol"}, T0)])

    def page(tx: Tx) -> tuple[int, int]:
        before = _count(tx)
        # A worker writes while the page is read: it is not blocked by the reader...
        writer.record_states([RegisterFacts("s", "k-2", {"vendor": "atol"}, T0)])
        return before, _count(tx)  # ...and the page's second statement still agrees

    assert reader.read(page) == (1, 1)
    assert reader.read(_count) == 2


def test_a_read_writes_nothing_on_postgresql(store_url: str, make_store: StoreFactory) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite has no read-only transactions; the console writes no SQL")
    store = make_store()
    with pytest.raises(TicketStoreError, match="read-only"):
        store.read(lambda tx: tx.run("DELETE FROM devices"))
