"""Each register's recent past, hour by hour, for the console's charts (schema 4).

The store keeps five facts of every register (unsent OFD documents and the oldest one's
age, FN days left, FN memory used, FN documents left) in ``register_history``, keyed by
(site, kkt, hour): the first state of each hour, written by :func:`record` in the same
transaction that writes the register's newest state to ``devices``, as an
``INSERT ... ON CONFLICT DO NOTHING``. A register reporting every minute costs one row
an hour; the other 59 states of the hour skip the insert in the worker that wrote it
(:class:`HourCache`: probing the key for each of them halved the store's state rate). A
register refused by ``registers_per_site`` (not in ``devices``) has no history. Rows
older than ``[console] history_days`` are deleted by one worker at a time under the
``history`` lease (:class:`HistoryPruner`), a batch of registers per transaction, along
the primary key (no second index on the hour to keep up on every insert).

What it costs at 100,000 registers and 90 days (``benchmarks/history.py`` measured the
bytes per row on 5,000 registers x 120 hours, 600,000 rows, and extrapolates):

* rows: 100,000 x 24 = 2.4 million a day, 216 million kept;
* PostgreSQL: 161 bytes a row. The heap row is 88 bytes and a 4-byte line pointer (a
  24-byte header, the 8-byte hour, five 4-byte values, site and kkt of ~10 and ~17
  characters): 92; the primary key's b-tree (site, kkt, hour) 69 (its entries ~52 bytes,
  pages ~75 % full: every register's keys grow at their own end of the tree). 370 MiB a
  day, 32 GiB for 90 days;
* SQLite: 105 bytes a row (``WITHOUT ROWID``: the rows are the key's b-tree, stored
  once; the hour is 32 characters of text, as every timestamp there). 240 MiB a day,
  21 GiB for 90 days;
* writes: 100,000 rows an hour, most in the minutes after the hour turns (each
  register's first state of it): measured 43,000 rows/s on PostgreSQL and 31,000 on
  SQLite, so the burst takes a few seconds of a worker; a state within the hour costs
  nothing more (36,600 states/s through ``record_states`` with history, 38,100 without);
  the first state of an hour halves that rate (19,000/s) for that state alone;
* pruning: the same 100,000 rows an hour, deleted at over 1 million rows/s.

A centre that needs less keeps fewer days (``history_days = 30``: a third).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from kktmon.protocol.errors import KktmonError
from kktmon.ticketing.store_db import Tx, chunks
from kktmon.ticketing.text import Scalar, parse_time

if TYPE_CHECKING:
    from kktmon.ticketing.store import TicketStore

log = logging.getLogger(__name__)

LEASE = "history"
#: Registers whose old rows one pruning transaction deletes.
PRUNE_BATCH = 500
#: How often the lease holder prunes (rows age out by the hour).
PRUNE_INTERVAL_S = 3600.0
_INT32 = 2**31 - 1
_REAL_MAX = 1e30  # PostgreSQL's REAL holds up to ~3.4e38
_COLUMNS = (
    ("site", "text"),
    ("kkt", "text"),
    ("hour", "ts"),
    ("unsent_count", "int"),
    ("oldest_unsent_age_h", "real"),
    ("fn_days_left", "int"),
    ("fn_memory_used_pct", "real"),
    ("fn_documents_left", "int"),
)
#: A ``devices`` row as the store writes it: site, kkt, facts, taken_at.
StateRow = tuple[str, str, dict[str, Any], datetime]


class HistoryPoint(BaseModel):
    """One register's facts at one hour (the first state the store got in it)."""

    model_config = ConfigDict(frozen=True)

    #: The start of the hour, UTC.
    at: AwareDatetime
    unsent_count: int | None = None
    oldest_unsent_age_h: float | None = None
    fn_days_left: int | None = None
    fn_memory_used_pct: float | None = None
    fn_documents_left: int | None = None


def hour_of(at: datetime) -> datetime:
    """The UTC hour ``at`` falls in."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def unsent_age_h(facts: dict[str, Scalar], taken_at: datetime) -> float | None:
    """The oldest unsent document's age: as the register reported it, else from
    ``first_unsent_at``; None when nothing is unsent."""
    if not facts.get("unsent_count"):
        return None
    age = facts.get("oldest_unsent_age_h")
    if isinstance(age, int | float) and not isinstance(age, bool):
        return float(age)
    first = parse_time(facts.get("first_unsent_at"))
    return None if first is None else max((taken_at - first).total_seconds() / 3600, 0.0)


def point_values(facts: dict[str, Scalar], taken_at: datetime) -> list[object]:
    """The five history values of a state, each within what its column holds (a value a
    column cannot hold would fail the whole batch's transaction: it is NULL instead)."""
    return [
        _int(facts.get("unsent_count")),
        _real(unsent_age_h(facts, taken_at)),
        _int(facts.get("fn_days_left")),
        _real(facts.get("fn_memory_used_pct")),
        _int(facts.get("fn_documents_left")),
    ]


def _int(value: object) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _INT32
    return value if ok and isinstance(value, int) else None


def _real(value: object) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) and abs(number) <= _REAL_MAX else None


class HourCache:
    """The hours this process has written a point for, per register: a later state of
    the same hour skips the insert (most states: one a minute) instead of probing the
    key. Bounded: full, it starts over (a probe each, then remembered again). Another
    worker's point is not known here: its first state of that hour probes once."""

    def __init__(self, size: int = 500_000) -> None:
        self.size = size
        self._hours: dict[tuple[str, str], datetime] = {}

    def due(self, states: Sequence[StateRow]) -> list[StateRow]:
        """The states of an hour later than the last one written for their register."""
        hours = self._hours
        return [
            s for s in states if (last := hours.get((s[0], s[1]))) is None or hour_of(s[3]) > last
        ]

    def remember(self, states: Sequence[StateRow]) -> None:
        """After the commit: these registers have a point for these hours."""
        if len(self._hours) + len(states) > self.size:
            self._hours.clear()
        for site, kkt, _, taken_at in states:
            hour = hour_of(taken_at)
            if hour > self._hours.get((site, kkt), hour - timedelta(hours=1)):
                self._hours[(site, kkt)] = hour


def record(tx: Tx, states: Sequence[StateRow]) -> None:
    """Add the first state of each hour of each register that ``devices`` holds; an
    hour already written keeps its row."""
    first: dict[tuple[str, str, datetime], StateRow] = {}
    for state in states:
        key = (state[0], state[1], hour_of(state[3]))
        if key not in first or state[3] < first[key][3]:
            first[key] = state
    rows = [
        [site, kkt, hour, *point_values(first[(site, kkt, hour)][2], first[(site, kkt, hour)][3])]
        for site, kkt, hour in sorted(first)
    ]
    names = ", ".join(name for name, _ in _COLUMNS)
    for chunk in chunks(rows, tx.d.rows_max):
        relation, params = tx.rows([kind for _, kind in _COLUMNS], chunk)
        tx.run(
            f"INSERT INTO register_history ({names}) SELECT * FROM ({relation}) AS k"
            " WHERE EXISTS (SELECT 1 FROM devices d"
            "   WHERE d.site = k.column1 AND d.kkt = k.column2)"
            " ON CONFLICT DO NOTHING",
            *params,
        )


def points(tx: Tx, site: str, kkt: str, since: datetime) -> list[HistoryPoint]:
    """One register's hours from ``since`` on, oldest first (a primary-key range)."""
    rows = tx.all(
        "SELECT hour, unsent_count, oldest_unsent_age_h, fn_days_left, fn_memory_used_pct,"
        " fn_documents_left FROM register_history WHERE site = ? AND kkt = ? AND hour >= ?"
        " ORDER BY hour",
        site,
        kkt,
        hour_of(since),
    )
    names = [name for name, _ in _COLUMNS[3:]]
    return [
        HistoryPoint(at=tx.d.read_ts(row[0]), **dict(zip(names, row[1:], strict=True)))
        for row in rows
    ]


def prune_batch(
    tx: Tx, before: datetime, after: tuple[str, str] | None, limit: int = PRUNE_BATCH
) -> tuple[int, tuple[str, str] | None]:
    """Delete the rows older than ``before`` of the next ``limit`` registers after
    ``after`` (key order); the rows deleted and the last register, or None at the end."""
    where, params = ("WHERE (site, kkt) > (?, ?) ", list(after)) if after else ("", [])
    registers = [
        (str(site), str(kkt))
        for site, kkt in tx.all(
            f"SELECT site, kkt FROM devices {where}ORDER BY site, kkt LIMIT ?", *params, limit
        )
    ]
    if not registers:
        return 0, None
    cutoff = hour_of(before)
    if tx.d.arrays:  # PostgreSQL: one statement, a key range per register
        relation, keys = tx.rows(["text", "text"], registers)
        deleted = tx.run(
            f"DELETE FROM register_history AS h USING ({relation}) AS k"
            " WHERE h.site = k.column1 AND h.kkt = k.column2 AND h.hour < ?",
            *keys,
            cutoff,
        )
    else:  # SQLite: no round trips to save
        deleted = sum(
            tx.run(
                "DELETE FROM register_history WHERE site = ? AND kkt = ? AND hour < ?",
                site,
                kkt,
                cutoff,
            )
            for site, kkt in registers
        )
    return deleted, registers[-1] if len(registers) == limit else None


class HistoryPruner:
    """Deletes history older than ``days``: one worker at a time, an hour apart."""

    def __init__(
        self,
        store: TicketStore,
        holder: str,
        days: int,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interval_s: float = PRUNE_INTERVAL_S,
        batch: int = PRUNE_BATCH,
    ) -> None:
        self.store = store
        self.holder = holder
        self.keep = timedelta(days=days)
        self.interval_s = interval_s
        self.batch = batch
        self._clock = clock
        self._next_try = 0.0

    def run_if_due(self) -> int | None:
        """Prune when the interval has passed and this worker gets the lease; the rows
        deleted, or None when it did not run."""
        if time.monotonic() < self._next_try:
            return None
        self._next_try = time.monotonic() + min(self.interval_s, 60.0)
        now = self._clock()
        # Held an interval: whoever takes it next prunes an interval on.
        if not self.store.acquire_lease(LEASE, self.holder, self.interval_s, now):
            return None
        self._next_try = time.monotonic() + self.interval_s
        deleted = self.prune(now)
        # The same hourly turn forgets dedup marks past any redelivery and tickets resolved
        # a year ago, so neither table grows with the fleet's age.
        if forgotten := self.store.prune(now):
            log.info("store: %d old dedup mark(s) and resolved ticket(s) forgotten", forgotten)
        return deleted

    def prune(self, now: datetime) -> int:
        """Delete every register's rows older than ``now - days``, batch by batch; stops
        early when the lease went to another worker. The rows deleted."""
        deleted, after, batches = 0, None, 0
        while True:
            work = partial(prune_batch, before=now - self.keep, after=after, limit=self.batch)
            step = self.store.transact(work)
            deleted, after, batches = deleted + step[0], step[1], batches + 1
            if after is None:
                break
            renewed = self.store.acquire_lease(LEASE, self.holder, self.interval_s, self._clock())
            if not renewed:
                log.info("history pruning handed over to another worker")
                break
        log.log(
            logging.INFO if deleted else logging.DEBUG,
            "history: %d row(s) older than %s deleted in %d batch(es)",
            deleted,
            (now - self.keep).date(),
            batches,
        )
        return deleted

    def run_forever(self, stop: threading.Event, poll_s: float = 60.0) -> None:
        """Prune when due until ``stop``; a failed run is logged and tried again later."""
        while not stop.is_set():
            try:
                self.run_if_due()
            except KktmonError as exc:
                log.warning("history pruning failed; trying again later: %s", exc)
                with contextlib.suppress(KktmonError):
                    self.store.release_lease(LEASE, self.holder)
            stop.wait(poll_s)
