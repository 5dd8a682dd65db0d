"""The agent's durable spool: SQLite in WAL mode under ``state_dir`` (DESIGN.md section 5).

Everything the agent decides to publish is put here first and deleted only when the
broker acknowledged it (``ack`` on PUBACK). Three kinds of entry:

* ``event``: transitions; replayed in order, never dropped by any limit;
* ``state``: the retained snapshot of one register; only the newest per topic is kept,
  and a snapshot older than one already accepted for its topic is refused, so a retained
  topic never goes back in time, not even across restarts;
* ``retained``: alerts; the newest put per topic wins, an empty payload clears.

Replacing an entry deletes it and inserts a new row with a new id rather than updating
in place: the MQTT layer may hold the old row in flight, and its late PUBACK must not
delete a payload that was never sent. Limits by rows, bytes and age drop the oldest state
rows only; when events alone exceed them, they are kept and ``stats().over_limit`` says so.

No message bigger than ``max_payload_bytes`` (the broker's payload limit) is queued: a
state or alert is trimmed where :mod:`kktmon.agent.trim` finds a principled cut, and
otherwise, like any oversize event, set aside. Set-aside rows move to the ``rejected``
table with their reason (:class:`SetAside`): kept for inspection (``kktmon outbox``),
logged once, counted in ``stats().set_aside``, and never in the way of the rows behind
them. The publisher sets rows aside there too, when the broker refuses one or the link
keeps breaking on it. Of states and alerts only the newest per topic is kept aside.

The agent's own state lives here too, in tables of its own: the per-device event ``seq``
counters and the rule engine's counters. :meth:`Outbox.commit_poll` writes one poll's
messages together with them in a single transaction, so an event is never on disk
without the ``seq`` it used and the rule state that produced it: a crash leaves the poll
wholly done or wholly undone, and a restart cannot emit the same transition again with a
new id and the same ``seq``. :meth:`Outbox.import_state` takes in the JSON files an older
agent kept beside the spool.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

from kktmon.agent.trim import fit
from kktmon.protocol.errors import OutboxError

log = logging.getLogger(__name__)

# 2: the ``seq`` and ``rules_state`` tables. An older kktmon refuses a version 2 file
# rather than restart every seq from the JSON files it no longer finds. The ``rejected``
# and ``tallies`` tables came later without a new version: an older kktmon ignores them.
SCHEMA_VERSION = 2

#: The shipped broker's payload limit (``message_size_limit`` in deploy/mosquitto).
MAX_PAYLOAD_BYTES = 64 * 1024
#: MQTT's own bound on a packet's remaining length, and so on any payload.
MQTT_MAX_PAYLOAD = 268_435_455

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    -- AUTOINCREMENT: ids are never reused, so a late ack cannot hit a newer entry.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('event', 'state', 'retained')),
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    taken_at REAL,
    replayed INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS one_retained_per_topic ON entries (topic)
    WHERE kind != 'event';
-- Newest snapshot time ever accepted per state topic: survives acks and restarts.
CREATE TABLE IF NOT EXISTS high_water (topic TEXT PRIMARY KEY, taken_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS drops (kind TEXT PRIMARY KEY, count INTEGER NOT NULL);
-- Running totals kept by triggers in the same transaction: limits need no table scan.
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1), nrows INTEGER NOT NULL, nbytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS entries_ins AFTER INSERT ON entries BEGIN
    UPDATE totals SET nrows = nrows + 1, nbytes = nbytes + length(NEW.payload) WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS entries_del AFTER DELETE ON entries BEGIN
    UPDATE totals SET nrows = nrows - 1, nbytes = nbytes - length(OLD.payload) WHERE id = 1;
END;
-- The agent's state, committed with the entries of the poll that changed it.
CREATE TABLE IF NOT EXISTS seq (kkt TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rules_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL
);
-- Rows set aside (never published), under the id they had in entries.
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    rejected_at REAL NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
-- Running counts: rows set aside by reason, and messages trimmed to fit.
CREATE TABLE IF NOT EXISTS tallies (name TEXT PRIMARY KEY, count INTEGER NOT NULL);
"""


class EntryKind(StrEnum):
    EVENT = "event"
    STATE = "state"
    RETAINED = "retained"


class SetAside(StrEnum):
    """Why a row went to the ``rejected`` table instead of the broker."""

    #: Over ``max_payload_bytes``, and not a state or alert that could be trimmed.
    OVERSIZE = "oversize"
    #: The broker answered its PUBLISH with a failure PUBACK (MQTT 5, e.g. not authorised).
    REFUSED = "refused"
    #: The connection broke on it twice, the second time with it alone in flight (e.g.
    #: Mosquitto's PUBACK 0x95, which paho takes for a protocol error).
    DISCONNECT = "disconnect"


@dataclass(frozen=True)
class OutboxLimits:
    """Soft bounds: exceeding them drops the oldest state rows, never events.

    ``max_payload_bytes`` is a hard one: nothing bigger is queued (module docstring).
    """

    max_rows: int = 100_000
    max_bytes: int = 256 * 1024 * 1024
    max_age_s: float = 30 * 86400.0
    max_payload_bytes: int = MAX_PAYLOAD_BYTES


@dataclass(frozen=True)
class Message:
    """Something to queue, for :meth:`Outbox.commit_poll`; built by the class methods."""

    kind: EntryKind
    topic: str
    payload: bytes
    taken_at: datetime | None = None

    @classmethod
    def event(cls, topic: str, payload: bytes) -> Message:
        return cls(EntryKind.EVENT, topic, payload)

    @classmethod
    def state(cls, topic: str, payload: bytes, taken_at: datetime) -> Message:
        if taken_at.tzinfo is None:
            raise ValueError("taken_at must be timezone-aware")
        return cls(EntryKind.STATE, topic, payload, taken_at)

    @classmethod
    def retained(cls, topic: str, payload: bytes) -> Message:
        return cls(EntryKind.RETAINED, topic, payload)


@dataclass(frozen=True)
class Entry:
    id: int
    kind: EntryKind
    topic: str
    payload: bytes
    created_at: float
    taken_at: float | None
    #: Queued before the latest (re)connect: the publisher marks the message ``replayed``.
    replayed: bool


@dataclass(frozen=True)
class Rejected:
    """A row set aside: never published, kept for a person to look at."""

    id: int
    kind: EntryKind
    topic: str
    payload: bytes
    created_at: float
    rejected_at: float
    reason: SetAside
    #: Sizes, the limit, or the broker's reason code, in words.
    detail: str


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    depth_by_kind: dict[str, int]
    bytes: int
    oldest_age_s: float | None
    #: Rows dropped over the limits, by kind (only states).
    drops: dict[str, int]
    over_limit: bool
    #: Rows in the ``rejected`` table now.
    rejected: int = 0
    #: Rows ever set aside, by :class:`SetAside` reason (more than ``rejected`` once newer
    #: states replaced older ones there).
    set_aside: dict[str, int] = field(default_factory=dict)
    #: States and alerts ever trimmed to fit ``max_payload_bytes``.
    trimmed: int = 0


class Outbox:
    """A spool file; safe to share between the poll thread and the MQTT callback thread.

    One connection guarded by a lock: SQLite admits one writer at a time anyway, and a
    single connection spares our own threads ``SQLITE_BUSY`` retries. Other processes
    (``kktmon outbox``) may read concurrently thanks to WAL.
    """

    def __init__(
        self,
        path: str | Path,
        limits: OutboxLimits | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.limits = limits or OutboxLimits()
        self._clock = clock
        self._lock = threading.RLock()
        self._warned: set[tuple[str, str]] = set()  # (topic, what) logged for states/alerts
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"{self.path}: cannot open the outbox: {exc}") from exc
        try:
            self._setup()
        except sqlite3.Error as exc:
            self._db.close()
            raise OutboxError(f"{self.path}: cannot use the outbox: {exc}") from exc

    def _setup(self) -> None:
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise sqlite3.OperationalError(f"WAL mode unavailable (got {mode!r})")
        # FULL, not NORMAL: in WAL mode NORMAL survives SIGKILL but may lose the last
        # commits on power loss, and a put that returned must survive both. The cost is
        # one fsync per put, negligible at a few puts per poll.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA journal_size_limit=8388608")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"schema version {version} is newer than this kktmon")
        # One script, one transaction (executescript would commit an open one first);
        # IF NOT EXISTS makes it idempotent when two processes open a new file at once.
        self._db.executescript(
            f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise OutboxError(f"{self.path}: {exc}") from exc
                raise

    def put_event(self, topic: str, payload: bytes) -> int:
        """Append an event; it stays until acked, whatever the limits.

        One over ``max_payload_bytes`` is set aside at once (its id is returned all the same).
        """
        with self._transaction() as db:
            return self._insert(db, EntryKind.EVENT, topic, payload, None)

    def put_state(self, topic: str, payload: bytes, taken_at: datetime) -> int | None:
        """Queue the retained snapshot of ``topic``; None when an equal-or-newer one won.

        A snapshot taken at the same moment as the accepted one replaces it (a re-put).
        One over ``max_payload_bytes`` is trimmed to fit, or else set aside.
        """
        message = Message.state(topic, payload, taken_at)
        with self._transaction() as db:
            return self._put(db, message)

    def put_retained(self, topic: str, payload: bytes) -> int:
        """Queue a retained alert; the newest put per topic wins, ``b""`` clears it.

        One over ``max_payload_bytes`` is trimmed to fit, or else set aside.
        """
        with self._transaction() as db:
            return self._replace(db, EntryKind.RETAINED, topic, payload, None)

    def commit_poll(
        self, messages: Iterable[Message], *, seq: Mapping[str, int], rules_state: str
    ) -> list[int | None]:
        """One poll's outcome in one transaction: its messages, in order, each as its
        ``put_*`` would queue it, the devices' new ``seq`` values and the whole rule state.

        All of it is durable when this returns, or none of it (the error is raised).
        Returns the entry ids, None for a state refused as older than the accepted one.
        """
        with self._transaction() as db:
            ids = [self._put(db, message) for message in messages]
            db.executemany(
                "INSERT INTO seq VALUES (?, ?) ON CONFLICT (kkt) DO UPDATE SET seq = excluded.seq",
                seq.items(),
            )
            db.execute(
                "INSERT INTO rules_state VALUES (1, ?) ON CONFLICT (id) DO UPDATE"
                " SET state = excluded.state",
                (rules_state,),
            )
            return ids

    def load_seq(self) -> dict[str, int]:
        """The last ``seq`` committed per device."""
        with self._lock:
            return {kkt: seq for kkt, seq in self._query("SELECT kkt, seq FROM seq")}

    def load_rules_state(self) -> str | None:
        """The rule state of the last committed poll; None before the first."""
        with self._lock:
            rows = self._query("SELECT state FROM rules_state")
        return str(rows[0][0]) if rows else None

    def import_state(self, seq: Mapping[str, int], rules_state: str | None) -> None:
        """Take in what an older agent kept in files, without ever going back: a device's
        ``seq`` becomes the higher of the two, and a rule state already here wins (files
        are no longer written once imported, so the database's is the newer)."""
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO seq VALUES (?, ?) ON CONFLICT (kkt) DO UPDATE"
                " SET seq = max(seq, excluded.seq)",
                seq.items(),
            )
            if rules_state is not None:
                db.execute("INSERT OR IGNORE INTO rules_state VALUES (1, ?)", (rules_state,))

    def _put(self, db: sqlite3.Connection, message: Message) -> int | None:
        if message.kind is EntryKind.EVENT:
            return self._insert(db, EntryKind.EVENT, message.topic, message.payload, None)
        if message.kind is EntryKind.RETAINED:
            return self._replace(db, EntryKind.RETAINED, message.topic, message.payload, None)
        assert message.taken_at is not None  # Message.state requires it
        stamp = message.taken_at.timestamp()
        row = db.execute("SELECT taken_at FROM high_water WHERE topic = ?", (message.topic,))
        newest = row.fetchone()
        if newest is not None and stamp < newest[0]:
            return None
        db.execute(
            "INSERT INTO high_water VALUES (?, ?) ON CONFLICT (topic) DO UPDATE"
            " SET taken_at = excluded.taken_at",
            (message.topic, stamp),
        )
        return self._replace(db, EntryKind.STATE, message.topic, message.payload, stamp)

    def _replace(
        self,
        db: sqlite3.Connection,
        kind: EntryKind,
        topic: str,
        payload: bytes,
        taken_at: float | None,
    ) -> int:
        db.execute("DELETE FROM entries WHERE topic = ? AND kind != 'event'", (topic,))
        return self._insert(db, kind, topic, payload, taken_at)

    def _insert(
        self,
        db: sqlite3.Connection,
        kind: EntryKind,
        topic: str,
        payload: bytes,
        taken_at: float | None,
    ) -> int:
        now = self._clock()
        limit = self.limits.max_payload_bytes
        fitted = None if kind is EntryKind.EVENT else fit(payload, limit)
        cursor = db.execute(
            "INSERT INTO entries (kind, topic, payload, created_at, taken_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (kind.value, topic, bytes(payload if fitted is None else fitted), now, taken_at),
        )
        entry_id = cursor.lastrowid
        assert entry_id is not None
        if len(payload) > limit:
            if fitted is None:  # the id stays taken: a late ack can never hit another row
                detail = f"over max_payload_bytes {limit}"
                self._set_aside(db, entry_id, SetAside.OVERSIZE, detail)
                return entry_id
            self._tally(db, "trimmed")
            self._warn(
                kind, topic, "trimmed", "trimmed from %d to %d bytes", len(payload), len(fitted)
            )
        self._enforce_limits(db, now, keep=entry_id)
        return entry_id

    def set_aside(self, entry_id: int, reason: SetAside, detail: str) -> bool:
        """Move a pending row to the ``rejected`` table; False if it was already gone."""
        with self._transaction() as db:
            return self._set_aside(db, entry_id, reason, detail)

    def _set_aside(
        self, db: sqlite3.Connection, entry_id: int, reason: SetAside, detail: str
    ) -> bool:
        row = db.execute(
            "SELECT kind, topic, length(payload) FROM entries WHERE id = ?", (entry_id,)
        ).fetchone()
        if row is None:
            return False
        kind, topic, size = EntryKind(row[0]), row[1], row[2]
        if kind is not EntryKind.EVENT:  # only the newest state or alert per topic
            db.execute("DELETE FROM rejected WHERE topic = ? AND kind != 'event'", (topic,))
        db.execute(
            "INSERT INTO rejected SELECT id, kind, topic, payload, created_at, ?, ?, ?"
            " FROM entries WHERE id = ?",
            (self._clock(), reason.value, detail, entry_id),
        )
        db.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
        self._tally(db, reason.value)
        self._warn(
            kind,
            topic,
            reason.value,
            "set aside, %d bytes (%s: %s); kept in the rejected table of %s",
            size,
            reason.value,
            detail,
            self.path,
        )
        return True

    def _tally(self, db: sqlite3.Connection, name: str) -> None:
        db.execute(
            "INSERT INTO tallies VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET count = count + 1",
            (name,),
        )

    def _warn(self, kind: EntryKind, topic: str, what: str, message: str, *args: object) -> None:
        """Log an event every time (each is one), a state or alert once per topic."""
        if kind is not EntryKind.EVENT:
            if (topic, what) in self._warned:
                return
            self._warned.add((topic, what))
        log.warning("outbox: %s on %s " + message, kind.value, topic, *args)

    def rejected(self, limit: int = 100) -> list[Rejected]:
        """Up to ``limit`` set-aside rows, oldest first."""
        with self._lock:
            rows = self._query(
                "SELECT id, kind, topic, payload, created_at, rejected_at, reason, detail"
                " FROM rejected ORDER BY id LIMIT ?",
                (limit,),
            )
        return [
            Rejected(r[0], EntryKind(r[1]), r[2], bytes(r[3]), r[4], r[5], SetAside(r[6]), r[7])
            for r in rows
        ]

    def _enforce_limits(self, db: sqlite3.Connection, now: float, keep: int) -> None:
        """Drop the oldest state rows (never ``keep``, the newest truth) until within bounds."""
        dropped = db.execute(
            "DELETE FROM entries WHERE kind = 'state' AND created_at < ? AND id != ?",
            (now - self.limits.max_age_s, keep),
        ).rowcount
        nrows, nbytes = db.execute("SELECT nrows, nbytes FROM totals").fetchone()
        if nrows > self.limits.max_rows or nbytes > self.limits.max_bytes:
            victims = db.execute(
                "SELECT id, length(payload) FROM entries WHERE kind = 'state' AND id != ?"
                " ORDER BY id",
                (keep,),
            ).fetchall()
            for victim, size in victims:
                if nrows <= self.limits.max_rows and nbytes <= self.limits.max_bytes:
                    break
                db.execute("DELETE FROM entries WHERE id = ?", (victim,))
                nrows, nbytes, dropped = nrows - 1, nbytes - size, dropped + 1
        if dropped:
            log.warning("outbox %s over limits: dropped %d state snapshot(s)", self.path, dropped)
            db.execute(
                "INSERT INTO drops VALUES ('state', ?) ON CONFLICT (kind) DO UPDATE"
                " SET count = count + excluded.count",
                (dropped,),
            )

    def pending(self, limit: int = 100, after: int = 0) -> list[Entry]:
        """Up to ``limit`` unacked entries with ids above ``after``, in id (= put) order."""
        with self._lock:
            rows = self._query(
                "SELECT id, kind, topic, payload, created_at, taken_at, replayed FROM entries"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            )
        return [
            Entry(r[0], EntryKind(r[1]), r[2], bytes(r[3]), r[4], r[5], bool(r[6])) for r in rows
        ]

    def ack(self, entry_id: int) -> bool:
        """Forget an entry the broker acknowledged; False if it was already gone."""
        with self._transaction() as db:
            return db.execute("DELETE FROM entries WHERE id = ?", (entry_id,)).rowcount > 0

    def mark_replayed(self) -> int:
        """Flag every pending entry as queued before this (re)connect; returns how many."""
        with self._transaction() as db:
            return db.execute("UPDATE entries SET replayed = 1 WHERE replayed = 0").rowcount

    def stats(self) -> OutboxStats:
        with self._lock:
            nrows, nbytes = self._query("SELECT nrows, nbytes FROM totals")[0]
            by_kind = self._query("SELECT kind, count(*) FROM entries GROUP BY kind")
            oldest = self._query("SELECT min(created_at) FROM entries")[0][0]
            drops = self._query("SELECT kind, count FROM drops")
            rejected = self._query("SELECT count(*) FROM rejected")[0][0]
            tallies = dict(self._query("SELECT name, count FROM tallies"))
        return OutboxStats(
            depth=nrows,
            depth_by_kind={kind.value: 0 for kind in EntryKind} | dict(by_kind),
            bytes=nbytes,
            oldest_age_s=None if oldest is None else max(0.0, self._clock() - oldest),
            drops={kind.value: 0 for kind in EntryKind} | dict(drops),
            over_limit=nrows > self.limits.max_rows or nbytes > self.limits.max_bytes,
            rejected=rejected,
            set_aside={reason.value: tallies.get(reason.value, 0) for reason in SetAside},
            trimmed=tallies.get("trimmed", 0),
        )

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
