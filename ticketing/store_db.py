"""The SQL the two ticket stores share: schema, migrations, a thin transaction handle.

One schema for SQLite and PostgreSQL; only three column types differ (identity ids,
timestamps, JSON), so the DDL is written once with those as placeholders. Statements use
``?`` parameters and the PostgreSQL dialect rewrites them to ``%s``: keep literal ``?``
and ``%`` out of SQL text. Timestamps are TEXT in SQLite, always UTC in one fixed ISO
format, so ``<``/``>`` on the column compare instants; PostgreSQL uses ``timestamptz``.

Migrations are idempotent (``IF NOT EXISTS``) and run in one transaction under the
store's write lock (``BEGIN IMMEDIATE`` / an advisory lock), so workers starting together
on a fresh database agree. A database newer than this code is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol, TypeVar

from pydantic_core import to_json

from kktmon.protocol.errors import TicketStoreError
from kktmon.ticketing.lifecycle import Ticket
from kktmon.ticketing.text import TicketFacts

SCHEMA_VERSION = 4
T = TypeVar("T")


class Dialect(Protocol):
    """What differs between the databases, beyond the connection itself."""

    name: str
    #: Appended to a SELECT that reads rows the transaction will change ("" on SQLite,
    #: whose ``BEGIN IMMEDIATE`` already serialises writers).
    for_update: str
    #: The same for rows another worker may be handling: skip them instead of waiting.
    skip_locked: str
    id_type: str
    ts_type: str
    json_type: str
    #: A statement that serialises concurrent migrations, or "".
    migration_lock: str
    #: A statement taking a transaction lock on one text key (one problem of one
    #: register), or "" where the database serialises writers anyway (SQLite).
    key_lock: str
    #: The same for a list of keys, one parameter, locked in the list's order, or "".
    key_locks: str

    #: Whether :meth:`rows` takes one array parameter per column (else one per value).
    arrays: bool
    #: The most rows one :meth:`rows` relation lists.
    rows_max: int
    #: Appended to ``CREATE TABLE`` of a table read by its primary key alone: SQLite's
    #: ``WITHOUT ROWID`` keeps the rows in the key's b-tree instead of a second copy.
    clustered: str

    def sql(self, text: str) -> str: ...
    def rows(self, kinds: Sequence[str], count: int) -> str:
        """A relation of ``count`` rows of columns ``column1, column2, ...`` (kinds
        ``text``, ``json``, ``ts``, ``int``), to follow ``IN``, ``FROM`` or ``INSERT``."""

    def fact(self, key: str, kind: str, column: str = "d.facts") -> str:
        """An expression reading fact ``key`` of a JSON ``column``: ``text``, ``num``
        (a JSON number, else NULL) or ``ts`` (an ISO timestamp, ordered as an instant).
        ``key`` is a name from code, never from a request (:func:`fact_key`)."""

    def ts(self, value: datetime) -> Any: ...
    def read_ts(self, value: Any) -> datetime: ...
    def json(self, value: dict[str, Any]) -> Any: ...
    def read_json(self, value: Any) -> dict[str, Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...
    def cursor(self) -> Any: ...


def storable(value: datetime) -> datetime:
    """``value``, if it is an instant of years 1..9999 in UTC (what both stores write and
    read back); ValueError otherwise."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"cannot store {value.isoformat()}: outside years 1..9999 in UTC"
        ) from None
    return value


class LostRaceError(Exception):
    """Another transaction took the key first: roll back, read again, decide again."""


class Tx:
    """One open transaction: parameter conversion and row fetching."""

    def __init__(self, conn: Connection, dialect: Dialect) -> None:
        self.conn = conn
        self.d = dialect

    def _params(self, params: Sequence[object]) -> list[Any]:
        out: list[Any] = []
        for value in params:
            if isinstance(value, datetime):
                out.append(self.d.ts(storable(value)))
            elif isinstance(value, Enum):
                out.append(value.value)
            elif isinstance(value, dict):
                out.append(self.d.json(value))
            else:
                out.append(value)
        return out

    def run(self, sql: str, *params: object) -> int:
        """Execute; the number of rows changed."""
        cursor = self.conn.execute(self.d.sql(sql), self._params(params))
        return int(cursor.rowcount)

    def many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """One statement for many parameter rows (psycopg pipelines them: one round trip)."""
        cursor = self.conn.cursor()
        cursor.executemany(self.d.sql(sql), [self._params(row) for row in rows])

    def rows(self, kinds: Sequence[str], rows: Sequence[Sequence[object]]) -> tuple[str, list[Any]]:
        """``rows`` (at most ``d.rows_max``) as a relation of columns ``column1, ...``
        and its parameters: ``VALUES (?, ?), ...`` on SQLite; on PostgreSQL ``unnest`` of
        one array per column, so the statement stays short (psycopg parses and caches it
        once) and the driver sends each column at once. Match rows with a ``JOIN``:
        SQLite looks ``(a, b) IN (VALUES ...)`` up by scanning the whole index."""
        relation = self.d.rows(kinds, len(rows))
        if not self.d.arrays:
            return relation, [value for row in rows for value in self._params(row)]
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in kinds]
        return relation, [
            self._array(column, kind) for column, kind in zip(columns, kinds, strict=True)
        ]

    def insert_many(
        self,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[object]],
        tail: str = "",
    ) -> None:
        """Insert ``rows`` (values in the order of ``columns``, each ``(name, kind)``)
        then ``tail`` (``ON CONFLICT ...``), a statement per ``d.rows_max`` rows."""
        names = ", ".join(name for name, _ in columns)
        kinds = [kind for _, kind in columns]
        for chunk in chunks(rows, self.d.rows_max):
            relation, params = self.rows(kinds, chunk)
            self.run(f"INSERT INTO {table} ({names}) {relation} {tail}", *params)

    def _array(self, column: Sequence[Any], kind: str) -> list[Any]:
        if kind == "json":  # pydantic-core's encoder: a few times faster than json's
            return [to_json(value).decode() for value in column]
        if kind == "ts":
            return [None if value is None else self.d.ts(storable(value)) for value in column]
        return [value.value if isinstance(value, Enum) else value for value in column]

    def one(self, sql: str, *params: object) -> tuple[Any, ...] | None:
        cursor = self.conn.execute(self.d.sql(sql), self._params(params))
        row = cursor.fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(self.d.sql(sql), self._params(params))
        return [tuple(row) for row in cursor.fetchall()]

    def ts_or_none(self, value: Any) -> datetime | None:
        return None if value is None else self.d.read_ts(value)


def fact_key(key: str) -> str:
    """``key`` if it may be spliced into SQL as a fact name (lower-case letters, digits
    and ``_``); ValueError otherwise."""
    if not key or not all(c.islower() or c.isdigit() or c == "_" for c in key) or not key.isascii():
        raise ValueError(f"not a fact name: {key!r}")
    return key


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(rows: int, columns: int) -> str:
    """``(?, ?), (?, ?)``: placeholders of a multi-row ``VALUES`` list."""
    row = "(" + ", ".join("?" for _ in range(columns)) + ")"
    return ", ".join(row for _ in range(rows))


_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tickets (
    id {id},
    site TEXT NOT NULL,
    kkt TEXT NOT NULL,
    problem TEXT NOT NULL,
    fn_serial TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('pending', 'open', 'clearing', 'resolved')),
    severity TEXT NOT NULL,
    priority TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    facts {json} NOT NULL,
    block_at {ts},
    first_seen_at {ts} NOT NULL,
    opened_at {ts},
    clearing_since {ts},
    resolved_at {ts},
    last_event_at {ts} NOT NULL,
    last_seen_at {ts} NOT NULL,
    external_ref TEXT,
    revision BIGINT NOT NULL DEFAULT 1
);
-- The database, not memory, decides that a problem has one live ticket.
CREATE UNIQUE INDEX IF NOT EXISTS tickets_one_live ON tickets (site, kkt, problem, fn_serial)
    WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS tickets_by_key ON tickets (site, kkt, problem, fn_serial, id);
CREATE INDEX IF NOT EXISTS tickets_by_state ON tickets (state, block_at);
CREATE TABLE IF NOT EXISTS seen_events (event_id TEXT PRIMARY KEY, seen_at {ts} NOT NULL);
CREATE INDEX IF NOT EXISTS seen_events_by_time ON seen_events (seen_at);
CREATE TABLE IF NOT EXISTS helpdesk_calls (
    id {id},
    ticket_id BIGINT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    sink TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('open', 'comment', 'escalate', 'reopen', 'resolve')),
    idempotency_key TEXT NOT NULL UNIQUE,
    comment TEXT,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'claimed', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_until {ts},
    retry_at {ts},
    last_error TEXT,
    created_at {ts} NOT NULL,
    completed_at {ts},
    external_ref TEXT
);
CREATE INDEX IF NOT EXISTS calls_due ON helpdesk_calls (sink, state, id);
CREATE INDEX IF NOT EXISTS calls_by_ticket ON helpdesk_calls (ticket_id, sink, id);
CREATE TABLE IF NOT EXISTS agents (
    site TEXT PRIMARY KEY,
    session BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('online', 'offline', 'lost')),
    last_status_at {ts} NOT NULL
);
-- The newest state facts of every register, for ticket texts (written in batches).
CREATE TABLE IF NOT EXISTS devices (
    site TEXT NOT NULL,
    kkt TEXT NOT NULL,
    facts {json} NOT NULL,
    taken_at {ts} NOT NULL,
    PRIMARY KEY (site, kkt)
);
"""

_GUARDS = """
-- Messages that can never be stored: a bounded, escaped copy for a human (store_guards).
CREATE TABLE IF NOT EXISTS dead_letters (
    id {id},
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    payload_bytes BIGINT NOT NULL,
    reason TEXT NOT NULL,
    received_at {ts} NOT NULL
);
-- Totals that outlive the rows they count (dead letters are trimmed to the newest).
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
-- What the limits refused, per site and limit.
CREATE TABLE IF NOT EXISTS refusals (
    site TEXT NOT NULL,
    reason TEXT NOT NULL,
    refused BIGINT NOT NULL,
    first_at {ts} NOT NULL,
    last_at {ts} NOT NULL,
    logged_at {ts},
    PRIMARY KEY (site, reason)
);
-- Work one worker at a time does (the reconciler): held until expires_at unless renewed.
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at {ts} NOT NULL
);
"""

_NOTIFICATIONS = """
-- Messages to clients (notify_store): an outbox like helpdesk_calls, one row per message
-- and recipient; the unique key is what makes a message go out once.
CREATE TABLE IF NOT EXISTS notifications (
    id {id},
    site TEXT NOT NULL,
    kkt TEXT NOT NULL,
    cause TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    threshold INTEGER NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'telegram')),
    recipient TEXT NOT NULL,
    client TEXT NOT NULL,
    facts {json} NOT NULL,
    block_at {ts},
    digest_key TEXT,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'claimed', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {ts} NOT NULL,
    claimed_until {ts},
    claimed_by TEXT,
    last_error TEXT,
    created_at {ts} NOT NULL,
    sent_at {ts}
);
CREATE UNIQUE INDEX IF NOT EXISTS notifications_once
    ON notifications (site, kkt, cause, subject, threshold, channel, recipient);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (state, next_attempt_at, id);
"""

_HISTORY = """
-- A few facts of every register, the first state of each hour (history.py), for the
-- console's charts; kept [console] history_days, pruned register by register.
CREATE TABLE IF NOT EXISTS register_history (
    site TEXT NOT NULL,
    kkt TEXT NOT NULL,
    hour {ts} NOT NULL,
    unsent_count INTEGER,
    oldest_unsent_age_h REAL,
    fn_days_left INTEGER,
    fn_memory_used_pct REAL,
    fn_documents_left INTEGER,
    PRIMARY KEY (site, kkt, hour)
){clustered};
"""

#: version -> statements; append, never edit a released one.
MIGRATIONS: dict[int, str] = {1: _TABLES, 2: _GUARDS, 3: _NOTIFICATIONS, 4: _HISTORY}


def _statements(script: str, d: Dialect) -> list[str]:
    body = "\n".join(
        line
        for line in script.format(
            id=d.id_type, ts=d.ts_type, json=d.json_type, clustered=d.clustered
        ).splitlines()
        if not line.lstrip().startswith("--")
    )
    return [stmt.strip() for stmt in body.split(";") if stmt.strip()]


def migrate(tx: Tx, now: datetime) -> str:
    """Bring the schema up to date; returns this database's instance id."""
    if tx.d.migration_lock:
        tx.run(tx.d.migration_lock)
    tx.run(
        "CREATE TABLE IF NOT EXISTS schema_version"
        f" (version INTEGER PRIMARY KEY, applied_at {tx.d.ts_type} NOT NULL)"
    )
    row = tx.one("SELECT MAX(version) FROM schema_version")
    current = int(row[0]) if row is not None and row[0] is not None else 0
    if current > SCHEMA_VERSION:
        raise TicketStoreError(
            f"ticket store schema version {current} is newer than this kktmon ({SCHEMA_VERSION})"
        )
    for version in sorted(v for v in MIGRATIONS if v > current):
        for statement in _statements(MIGRATIONS[version], tx.d):
            tx.run(statement)
        tx.run(
            "INSERT INTO schema_version (version, applied_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            version,
            now,
        )
    # Part of every idempotency key: a rebuilt database must not reuse a key of the old one.
    tx.run(
        "INSERT INTO meta (key, value) VALUES ('instance', ?) ON CONFLICT DO NOTHING",
        uuid.uuid4().hex[:12],
    )
    found = tx.one("SELECT value FROM meta WHERE key = 'instance'")
    assert found is not None
    return str(found[0])


TICKET_COLUMNS = (
    "id",
    "site",
    "kkt",
    "problem",
    "fn_serial",
    "state",
    "severity",
    "priority",
    "title",
    "description",
    "facts",
    "block_at",
    "first_seen_at",
    "opened_at",
    "clearing_since",
    "resolved_at",
    "last_event_at",
    "last_seen_at",
    "external_ref",
    "revision",
)
SELECT_TICKET = "SELECT " + ", ".join(TICKET_COLUMNS) + " FROM tickets"
_TS_COLUMNS = frozenset(
    {
        "block_at",
        "first_seen_at",
        "opened_at",
        "clearing_since",
        "resolved_at",
        "last_event_at",
        "last_seen_at",
    }
)


def ticket_from_row(tx: Tx, row: tuple[Any, ...]) -> Ticket:
    values = dict(zip(TICKET_COLUMNS, row, strict=True))
    for column in _TS_COLUMNS:
        values[column] = tx.ts_or_none(values[column])
    values["facts"] = TicketFacts.model_validate(tx.d.read_json(values["facts"]))
    return Ticket.model_validate(values)


def ticket_params(ticket: Ticket) -> list[object]:
    """Values for every column but ``id`` and ``revision``, in :data:`TICKET_COLUMNS` order."""
    facts = ticket.facts.model_dump(mode="json")
    values = ticket.model_dump() | {"facts": facts}
    return [values[column] for column in TICKET_COLUMNS[1:-1]]


def insert_ticket(tx: Tx, ticket: Ticket) -> int | None:
    """Insert a new ticket; None when another live ticket holds the key (the caller retries)."""
    columns = TICKET_COLUMNS[1:-1]
    row = tx.one(
        f"INSERT INTO tickets ({', '.join(columns)}, revision)"
        f" VALUES ({', '.join('?' for _ in columns)}, 1) ON CONFLICT DO NOTHING RETURNING id",
        *ticket_params(ticket),
    )
    return None if row is None else int(row[0])


_KINDS = {"facts": "json", **dict.fromkeys(_TS_COLUMNS, "ts")}


def update_tickets(tx: Tx, updates: Sequence[tuple[Ticket, int]]) -> set[int]:
    """Write changed tickets, each ``(ticket as it is now, revision stored before)``, in
    one statement per ``d.rows_max``; the ids written (a ticket whose stored revision
    moved on is not: the caller reads again and retries)."""
    columns = TICKET_COLUMNS[1:-1]
    kinds = [_KINDS.get(column, "text") for column in columns] + ["int", "int", "int"]
    n = len(columns)
    assignments = ", ".join(f"{column} = u.column{i}" for i, column in enumerate(columns, 1))
    written: set[int] = set()
    for chunk in chunks(updates, tx.d.rows_max):
        rows = [[*ticket_params(t), t.id, before, t.revision] for t, before in chunk]
        relation, params = tx.rows(kinds, rows)
        found = tx.all(
            f"UPDATE tickets SET {assignments}, revision = u.column{n + 3}"
            f" FROM ({relation}) AS u WHERE tickets.id = u.column{n + 1}"
            f" AND tickets.revision = u.column{n + 2} RETURNING tickets.id",
            *params,
        )
        written.update(int(row[0]) for row in found)
    return written


def update_ticket(tx: Tx, ticket: Ticket) -> bool:
    """Write a changed ticket; False when its revision moved on meanwhile (the caller retries)."""
    columns = TICKET_COLUMNS[1:-1]
    assignments = ", ".join(f"{column} = ?" for column in columns)
    changed = tx.run(
        f"UPDATE tickets SET {assignments}, revision = revision + 1 WHERE id = ? AND revision = ?",
        *ticket_params(ticket),
        ticket.id,
        ticket.revision,
    )
    return changed == 1
