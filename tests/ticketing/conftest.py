"""Ticket stores for tests: every store test runs against SQLite and PostgreSQL.

``store_url`` is parametrised: a SQLite file in ``tmp_path``, and a fresh schema in the
PostgreSQL database named by ``KKTMON_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``, trust auth), dropped after the test. When
PostgreSQL is not reachable those runs skip with the reason, which ``-ra`` prints.
``make_store`` opens stores on that URL (several, for worker races) and closes them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from ticket_facts import SINKS, T0, StoreFactory, policy

from kktmon.ticketing.store import TicketStore, open_store

PG_DSN = os.environ.get("KKTMON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_admin() -> Any:
    try:
        import psycopg
    except ImportError:
        pytest.skip("PostgreSQL store tests need psycopg 3 (pip install 'psycopg[binary]')")
    try:
        return psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}: {' '.join(str(exc).split())[:200]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/tickets.sqlite3"
        return
    admin = _pg_admin()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin.execute(f"CREATE SCHEMA {schema}")
        yield f"{PG_DSN}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()


@pytest.fixture
def make_store(store_url: str) -> Iterator[StoreFactory]:
    opened: list[TicketStore] = []

    def make(**changes: Any) -> TicketStore:
        sinks = changes.pop("sinks", SINKS)
        store = open_store(store_url, policy=policy(**changes), sinks=sinks, now=T0)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> TicketStore:
    return make_store()
