"""What the hourly register history costs (``register_history``, schema 4): rows, bytes
on disk per row with its primary key, how fast it is written and pruned, and what that
comes to for 100,000 registers over 90 days.

For each store (a SQLite file; a fresh PostgreSQL schema, dropped afterwards, or a note
when the server is not reachable) it records one state per register (``devices``), then
fills ``--registers`` x ``--hours`` history rows through :func:`history.record` in
transactions of 500 states (the intake's batch), hour after hour as the service would,
and measures:

* insert: first states of an hour (a row each), per second;
* repeat: further states within the hour (the ``ON CONFLICT DO NOTHING`` path: no row);
* states: :meth:`TicketStore.record_states` (the ``devices`` upsert and the history in one
  transaction) for a new hour, per second, beside the same without history: its cost;
* bytes: PostgreSQL's ``pg_relation_size`` (heap) and ``pg_indexes_size`` (the key);
  SQLite's ``dbstat`` (the ``WITHOUT ROWID`` table is its key's b-tree);
* prune: rows deleted per second by :meth:`HistoryPruner.prune` (half the hours).

Then it extrapolates the bytes per row to 100,000 registers x 24 hours x 90 days.

    python benchmarks/history.py [--registers 2000] [--hours 96] [--store sqlite postgresql]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from kktmon.ticketing import history
from kktmon.ticketing.history import HistoryPruner
from kktmon.ticketing.store import RegisterFacts, TicketStore, open_store
from kktmon.ticketing.store_db import Tx

PG_DSN = os.environ.get("KKTMON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BATCH = 500
START = datetime(2026, 1, 5, tzinfo=UTC)
FLEET, DAYS = 100_000, 90


@dataclass
class Result:
    store: str
    rows: int
    insert_per_s: float
    repeat_per_s: float
    states_new_hour_per_s: float
    states_same_hour_per_s: float
    states_bare_per_s: float
    heap: int
    index: int
    prune_per_s: float

    @property
    def per_row(self) -> float:
        return (self.heap + self.index) / self.rows


def facts(n: int, hour: int) -> dict[str, Any]:
    return {
        "vendor": "shtrih",
        "model": "ШТРИХ-М-01Ф",
        "serial": f"00{n:08d}",
        "fn_serial": f"99614403{n:08d}",
        "unsent_count": hour % 7,
        "first_unsent_at": (START + timedelta(hours=hour - 3)).isoformat(),
        "fn_days_left": 400 - hour // 24,
        "fn_memory_used_pct": 12.5 + hour / 100,
        "fn_documents_left": 240_000 - hour * 30,
    }


def states(registers: int, hour: int, minute: int = 1) -> list[RegisterFacts]:
    at = START + timedelta(hours=hour, minutes=minute)
    return [
        RegisterFacts(f"store-{n // 20:04d}", f"shtrih-00{n:08d}", facts(n, hour), at)
        for n in range(registers)
    ]


def _skip(tx: Tx, states: Sequence[history.StateRow]) -> None:
    """history.record replaced: what record_states costs without history."""


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def record_history(store: TicketStore, batch: list[RegisterFacts]) -> None:
    for start in range(0, len(batch), BATCH):
        rows = [(s.site, s.kkt, s.facts, s.taken_at) for s in batch[start : start + BATCH]]
        store.transact(partial(_record, rows=rows))


def _record(tx: Tx, rows: list[history.StateRow]) -> None:
    history.record(tx, rows)


def record_states(store: TicketStore, batch: list[RegisterFacts]) -> None:
    for start in range(0, len(batch), BATCH):
        store.record_states(batch[start : start + BATCH])


def sizes(store: TicketStore) -> tuple[int, int]:
    def read(tx: Tx) -> tuple[int, int]:
        if tx.d.name == "postgresql":
            row = tx.one(
                "SELECT pg_relation_size('register_history'), pg_indexes_size('register_history')"
            )
            assert row is not None
            return int(row[0]), int(row[1])
        row = tx.one("SELECT SUM(pgsize) FROM dbstat WHERE name = 'register_history'")
        assert row is not None
        return 0, int(row[0])  # WITHOUT ROWID: the rows are the key's b-tree

    return store.transact(read)


def measure(name: str, store: TicketStore, registers: int, hours: int) -> Result:
    record_states(store, states(registers, 0, 0))  # the registers, in devices
    # partial() builds each batch before the clock starts: only the store is timed.
    insert = sum(
        timed(partial(record_history, store, states(registers, hour))) for hour in range(hours)
    )
    rows = registers * hours
    repeat = timed(partial(record_history, store, states(registers, hours - 1, minute=30)))
    heap, index = sizes(store)
    new_hour = timed(partial(record_states, store, states(registers, hours)))
    same_hour = timed(partial(record_states, store, states(registers, hours, minute=45)))
    original = history.record
    history.record = _skip
    try:
        bare = timed(partial(record_states, store, states(registers, hours, minute=50)))
    finally:
        history.record = original
    now = START + timedelta(hours=hours)
    pruner = HistoryPruner(store, "bench", days=1, clock=lambda: now)
    deleted: list[int] = []
    prune = timed(lambda: deleted.append(pruner.prune(now)))
    return Result(
        store=name,
        rows=rows,
        insert_per_s=rows / insert,
        repeat_per_s=registers / repeat,
        states_new_hour_per_s=registers / new_hour,
        states_same_hour_per_s=registers / same_hour,
        states_bare_per_s=registers / bare,
        heap=heap,
        index=index,
        prune_per_s=deleted[0] / prune,
    )


@contextmanager
def sqlite_store() -> Iterator[TicketStore]:
    folder = tempfile.mkdtemp(prefix="kktmon-history-")
    try:
        with open_store(f"sqlite:///{Path(folder) / 'tickets.sqlite3'}", now=START) as store:
            yield store
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def postgres_store() -> Iterator[TicketStore]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            url = f"{PG_DSN}?options=-csearch_path%3D{schema}"
            with open_store(url, now=START) as store:
                yield store
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def report(result: Result, registers: int, hours: int) -> None:
    per_day = FLEET * 24
    total = per_day * DAYS * result.per_row
    print(f"\n{result.store}: {registers} registers x {hours} hours = {result.rows:,} rows")
    print(f"  heap {result.heap / 2**20:.1f} MiB + key {result.index / 2**20:.1f} MiB")
    print(
        f"  bytes per row: {result.per_row:.0f}"
        f" (heap {result.heap / result.rows:.0f}, key {result.index / result.rows:.0f})"
    )
    print(f"  insert (first state of an hour): {result.insert_per_s:,.0f} rows/s")
    print(f"  repeat (a later state, no row):  {result.repeat_per_s:,.0f} states/s")
    print(
        f"  record_states (devices + history): {result.states_new_hour_per_s:,.0f} states/s"
        f" for a new hour, {result.states_same_hour_per_s:,.0f} within an hour;"
        f" {result.states_bare_per_s:,.0f} without history"
    )
    print(f"  prune: {result.prune_per_s:,.0f} rows/s")
    print(
        f"  at {FLEET:,} registers: {per_day:,} rows/day, {per_day * result.per_row / 2**20:,.0f}"
        f" MiB/day; {DAYS} days: {per_day * DAYS:,} rows, {total / 2**30:,.1f} GiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registers", type=int, default=2000)
    parser.add_argument("--hours", type=int, default=96)
    parser.add_argument(
        "--store", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    for name in args.store:
        opener = sqlite_store if name == "sqlite" else postgres_store
        try:
            with opener() as store:
                result = measure(name, store, args.registers, args.hours)
        except Exception as exc:  # a server that is not there: say so, go on
            print(f"\n{name}: skipped ({type(exc).__name__}: {exc})")
            continue
        report(result, args.registers, args.hours)


if __name__ == "__main__":
    main()
