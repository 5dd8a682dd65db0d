"""The SQLite ticket store: one file in WAL mode, the default for a single worker.

Writers serialise on ``BEGIN IMMEDIATE``, so a read-decide-write transaction sees no
other writer between its read and its write; several processes may share the file (each
waits up to ``busy_timeout`` for the lock, then the transaction is retried). Timestamps
are stored as UTC ISO 8601 text in one fixed width, so SQL comparisons order instants.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kktmon.protocol.errors import TicketStoreError
from kktmon.ticketing.config import TicketingSection
from kktmon.ticketing.store import TicketStore
from kktmon.ticketing.store_db import Tx, fact_key, marks

BUSY_TIMEOUT_MS = 10_000
#: ``RETURNING`` (3.35) and upserts on partial indexes are used throughout.
MIN_SQLITE = (3, 35, 0)


class SqliteDialect:
    name = "sqlite"
    for_update = ""
    skip_locked = ""
    id_type = "INTEGER PRIMARY KEY AUTOINCREMENT"
    ts_type = "TEXT"
    json_type = "TEXT"
    migration_lock = ""
    key_lock = ""  # BEGIN IMMEDIATE already serialises every writer
    key_locks = ""
    arrays = False
    rows_max = 250  # x columns: far below SQLITE_MAX_VARIABLE_NUMBER (32766)
    clustered = " WITHOUT ROWID"

    def sql(self, text: str) -> str:
        return text

    def rows(self, kinds: Sequence[str], count: int) -> str:
        return "VALUES " + marks(count, len(kinds))

    def fact(self, key: str, kind: str, column: str = "d.facts") -> str:
        value = f"json_extract({column}, '$.{fact_key(key)}')"
        # julianday() reads the offset (+03:00, Z), so instants order across zones.
        return f"julianday({value})" if kind == "ts" else value

    def ts(self, value: datetime) -> str:
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        utc = value.astimezone(UTC)
        # The year by hand: strftime's %Y does not pad years before 1000 on glibc.
        return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S.%f}+00:00"

    def read_ts(self, value: Any) -> datetime:
        text = str(value)
        year, dash, rest = text.partition("-")
        if dash and len(year) < 4:  # written unpadded by kktmon before schema 2
            text = f"{year.zfill(4)}-{rest}"
        return datetime.fromisoformat(text)

    def json(self, value: dict[str, Any]) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    def read_json(self, value: Any) -> dict[str, Any]:
        loaded = json.loads(value)
        assert isinstance(loaded, dict)
        return loaded


class SqliteTicketStore(TicketStore):
    """Tickets in a SQLite file; safe to share between threads of one process."""

    def __init__(
        self,
        url: str,
        *,
        policy: TicketingSection | None = None,
        sinks: Sequence[str] = (),
        claim_ttl_s: float | None = None,
        now: datetime | None = None,
    ) -> None:
        super().__init__(policy, sinks, claim_ttl_s=claim_ttl_s)
        self.url = url
        self.path = Path(url.removeprefix("sqlite:///"))
        self.label = str(self.path)
        self._dialect = SqliteDialect()
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise TicketStoreError(
                f"the ticket store needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer"
                f" (this Python has {sqlite3.sqlite_version}); use PostgreSQL or a newer Python"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are ours, begun explicitly below.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise TicketStoreError(f"{self.path}: cannot open the ticket store: {exc}") from exc
        try:
            self._pragmas()
            self._setup(now or datetime.now(UTC))
        except BaseException:
            self._db.close()
            raise

    def _pragmas(self) -> None:
        try:
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise TicketStoreError(f"{self.path}: WAL mode unavailable (got {mode!r})")
            # FULL: a committed ticket change (and the event it acknowledged) survives a
            # power loss; the cost is one fsync per transaction.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise TicketStoreError(f"{self.path}: cannot use the ticket store: {exc}") from exc

    @contextmanager
    def _transaction(self, read_only: bool = False) -> Iterator[Tx]:
        # A deferred BEGIN reads one WAL snapshot and never takes the write lock.
        self._db.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")
        try:
            yield Tx(self._db, self._dialect)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _retryable(self, exc: Exception) -> bool:
        text = str(exc).lower()
        return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)

    def _database_error(self) -> type[Exception]:
        return sqlite3.Error

    def close(self) -> None:
        with self._lock:
            self._db.close()
