"""The ticket store: one interface, SQLite (default) or PostgreSQL, opened by URL.

    store = open_store("sqlite:////var/lib/kktmon/tickets.sqlite3", policy=..., sinks=[...])
    store.apply(ProblemRaised(...), now)       # an event, an alert, an agent status
    store.tick(now)                            # hold-downs, grace periods, lost agents
    store.list_tickets(include_resolved_since=now - timedelta(days=1))

Every method that changes something is one database transaction: the ticket change, the
event's dedup mark and the help-desk calls it causes (one per sink named at open) commit
together or not at all. Exactly one live ticket per problem is the database's doing: a
partial unique index over (site, kkt, problem, fn_serial) among unresolved tickets, an
``INSERT ... ON CONFLICT DO NOTHING`` that loses a race is retried from a fresh read, and
rows being changed are locked (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite). Events carrying an id are deduplicated in the same transaction.

Caps on what one site may add, dead letters and leases: :mod:`store_guards`.

The clock comes in as ``now``; the store never reads it, so tests and replays decide time.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from kktmon.protocol.contract import AgentState
from kktmon.protocol.errors import ConfigError, KktmonError, TicketStoreError
from kktmon.protocol.problems import ProblemCode, Severity, is_fn_scoped
from kktmon.ticketing import history, store_batch, store_calls, store_guards
from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing.calls import CallAction, HelpdeskCall
from kktmon.ticketing.config import TicketingSection
from kktmon.ticketing.store_batch import Batch
from kktmon.ticketing.store_calls import CallRecord
from kktmon.ticketing.store_db import (
    SELECT_TICKET,
    LostRaceError,
    Tx,
    insert_ticket,
    migrate,
    ticket_from_row,
    update_ticket,
)
from kktmon.ticketing.store_guards import DeadLetter, Refusal
from kktmon.ticketing.text import Scalar

log = logging.getLogger(__name__)

T = TypeVar("T")
Fact = lc.ProblemRaised | lc.ProblemCleared | lc.AgentSeen
TicketNotices = Callable[[Tx, lc.Ticket, Sequence[CallAction], datetime], object]
_ATTEMPTS = 8  # lost races and busy databases retry this often before giving up

__all__ = [
    "Applied",
    "CallRecord",
    "DeadLetter",
    "Fact",
    "Outcome",
    "OutcomeStatus",
    "Refusal",
    "RegisterFacts",
    "TicketRow",
    "TicketStore",
    "open_store",
]


class TicketRow(BaseModel):
    """One line of ``kktmon tickets`` (and an item of its ``--json`` array)."""

    model_config = ConfigDict(frozen=True)

    id: int
    site: str
    kkt: str
    problem: str
    fn_serial: str | None
    state: lc.TicketState
    severity: Severity
    priority: lc.Priority
    title: str
    first_seen_at: AwareDatetime
    opened_at: AwareDatetime | None
    clearing_since: AwareDatetime | None
    resolved_at: AwareDatetime | None
    last_seen_at: AwareDatetime
    block_at: AwareDatetime | None
    external_ref: str | None

    @classmethod
    def of(cls, ticket: lc.Ticket) -> TicketRow:
        values = ticket.model_dump(include=set(cls.model_fields))
        return cls.model_validate(values | {"fn_serial": ticket.fn_serial or None})


@dataclass(frozen=True, slots=True)
class RegisterFacts:
    """One register's newest state facts (a row of ``devices``), as the subscriber batches
    them (a plain dataclass: intake made them, thousands a second, already checked)."""

    site: str
    kkt: str
    facts: dict[str, Scalar]
    taken_at: datetime


class OutcomeStatus(StrEnum):
    CHANGED = "changed"  # a ticket (or an agent record) was written
    DUPLICATE = "duplicate"  # the event id was seen before
    STALE = "stale"  # older than what the store already knows
    UNCHANGED = "unchanged"  # nothing to do
    REFUSED = "refused"  # a new ticket over a limit: counted, not written


class Applied(BaseModel):
    """One ticket written, and the help-desk actions decided with it (each becomes one
    call per configured sink; with no sinks they are recorded nowhere else)."""

    model_config = ConfigDict(frozen=True)

    ticket_id: int
    site: str
    kkt: str
    problem: str
    state: lc.TicketState
    calls: list[CallAction] = Field(default_factory=list)


class Outcome(BaseModel):
    """What one fact did."""

    model_config = ConfigDict(frozen=True)

    status: OutcomeStatus
    changes: list[Applied] = Field(default_factory=list)

    @property
    def calls(self) -> list[CallAction]:
        return [action for change in self.changes for action in change.calls]


def _fact_key(fact: Fact) -> tuple[str, str, str]:
    if isinstance(fact, lc.AgentSeen):
        return (fact.site, lc.AGENT_KKT, ProblemCode.AGENT_LOST)
    code = fact.problem.code if isinstance(fact, lc.ProblemRaised) else fact.code
    return (fact.site, fact.kkt, code)


class TicketStore(abc.ABC):
    """The shared logic; subclasses bring a connection and a :class:`Dialect`."""

    url: str
    #: How messages name the store (no password).
    label: str

    def __init__(
        self,
        policy: TicketingSection | None = None,
        sinks: Sequence[str] = (),
        *,
        claim_ttl_s: float | None = None,
    ) -> None:
        #: Replace on config reload; read at the start of every decision.
        self.policy = policy or TicketingSection()
        self.sinks = list(sinks)
        self.claim_ttl_s = claim_ttl_s if claim_ttl_s is not None else self.policy.claim_ttl_s
        self._lock = threading.RLock()
        self._instance = ""
        #: Writes client notices about a ticket change in its transaction, given the
        #: ticket as written and its help-desk actions (:mod:`notify_store`); None: none.
        self.ticket_notices: TicketNotices | None = None
        self._history_hours = history.HourCache()

    # --- what a backend provides -------------------------------------------------

    @abc.abstractmethod
    def _transaction(self, read_only: bool = False) -> AbstractContextManager[Tx]:
        """Begin (taking the write lock where the database has one), commit or roll back;
        ``read_only``: one consistent snapshot that takes no write lock."""

    @abc.abstractmethod
    def _retryable(self, exc: Exception) -> bool:
        """Whether the failed transaction may succeed when run again (busy, deadlock)."""

    @abc.abstractmethod
    def _database_error(self) -> type[Exception] | tuple[type[Exception], ...]:
        """The driver's error base classes, translated to :class:`TicketStoreError`."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> TicketStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the transaction runner --------------------------------------------------

    def _run(self, work: Callable[[Tx], T], read_only: bool = False) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._lock, self._transaction(read_only) as tx:
                    return work(tx)
            except LostRaceError:
                log.debug("lost a race on a ticket key; reading again (attempt %d)", attempt)
            except KktmonError:
                raise
            except self._database_error() as exc:
                if not self._retryable(exc) or attempt == _ATTEMPTS:
                    raise TicketStoreError(f"{self.label}: {exc}") from exc
                time.sleep(0.01 * attempt)
        raise TicketStoreError(f"{self.label}: still contended after {_ATTEMPTS} attempts")

    def _setup(self, now: datetime) -> None:
        self._instance = self._run(lambda tx: migrate(tx, now))

    @property
    def instance(self) -> str:
        """This database's own id, part of every key a message leaves with."""
        return self._instance

    def transact(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one transaction, retried on lost races and busy databases: for
        modules that keep their own tables (:mod:`notify_store`)."""
        return self._run(work)

    def read(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one read-only transaction: a consistent snapshot for all its
        statements that holds no writer back (the console's pages, :mod:`fleet_store`)."""
        return self._run(work, read_only=True)

    # --- facts -------------------------------------------------------------------

    def apply(self, fact: Fact, now: datetime) -> Outcome:
        """Apply one fact in its own transaction."""
        return self.apply_batch([fact], now)[0]

    def apply_batch(self, facts: Sequence[Fact], now: datetime) -> list[Outcome]:
        """Apply several facts in one transaction (one commit: cheaper under load).

        The transaction reads what the facts' problems need in a few statements for
        all of them (:class:`~.store_batch.Batch`: their locks, taken in one order, so
        two workers cannot deadlock on them; their dedup marks; their tickets), then
        applies the facts grouped by problem (stable, so one problem keeps its order).
        Outcomes come back in the order of ``facts``.
        """
        order = sorted(range(len(facts)), key=lambda i: _fact_key(facts[i]))
        keys = [_fact_key(fact) for fact in facts]
        ids = [f.event_id for f in facts if not isinstance(f, lc.AgentSeen) and f.event_id]

        def work(tx: Tx) -> list[Outcome]:
            batch = Batch(tx, keys, ids, now)
            outcomes: dict[int, Outcome] = {}
            for index in order:
                outcomes[index] = self._apply(batch, facts[index], now)
            batch.flush()
            return [outcomes[index] for index in range(len(facts))]

        return self._run(work)

    def _apply(self, batch: Batch, fact: Fact, now: datetime) -> Outcome:
        if isinstance(fact, lc.AgentSeen):
            return self._agent_seen(batch, fact, now)
        if fact.event_id is not None and not batch.first_sighting(fact.event_id, now):
            return Outcome(status=OutcomeStatus.DUPLICATE)
        if isinstance(fact, lc.ProblemRaised):
            current = batch.newest(fact.site, fact.kkt, fact.problem.code, fact.fn_serial)
            change = lc.on_raised(current, fact, now, self.policy)
            if change is not None and change.ticket.id is None:  # a new live ticket
                what = f"a new ticket ({fact.problem.code} on {fact.kkt})"
                live = batch.live_counts(fact.site, fact.kkt)
                limits = self.policy.limits
                if store_guards.refused(batch.tx, fact.site, what, live, limits=limits, now=now):
                    return Outcome(status=OutcomeStatus.REFUSED)
            return self._outcome(batch.tx, change, now, batch)
        return self._cleared(batch, fact, now)

    def _cleared(self, batch: Batch, fact: lc.ProblemCleared, now: datetime) -> Outcome:
        serial = fact.fn_serial
        if serial is None and not is_fn_scoped(fact.code):
            serial = ""
        if serial is not None:
            current = batch.newest(fact.site, fact.kkt, fact.code, serial)
            scoped = fact.model_copy(update={"fn_serial": serial})
            change = lc.on_cleared(current, scoped, now, self.policy)
            return self._outcome(batch.tx, change, now, batch)
        # An emptied alert topic does not name the drive: clear whichever is live.
        live = batch.live(fact.site, fact.kkt, fact.code)
        changes = [lc.on_cleared(ticket, fact, now, self.policy) for ticket in live]
        outcomes = [self._outcome(batch.tx, change, now, batch) for change in changes]
        applied = [item for outcome in outcomes for item in outcome.changes]
        status = OutcomeStatus.CHANGED if applied else OutcomeStatus.STALE
        return Outcome(status=status, changes=applied)

    def _outcome(
        self, tx: Tx, change: lc.Change | None, now: datetime, batch: Batch | None = None
    ) -> Outcome:
        if change is None:
            return Outcome(status=OutcomeStatus.STALE)
        return Outcome(status=OutcomeStatus.CHANGED, changes=[self._write(tx, change, now, batch)])

    def _write(
        self, tx: Tx, change: lc.Change, now: datetime, batch: Batch | None = None
    ) -> Applied:
        """Write the decided ticket (and its calls); ``batch``, when the decision was
        made from one, learns the ticket as written."""
        ticket = change.ticket
        if ticket.id is None:
            new_id = insert_ticket(tx, ticket)
            if new_id is None:
                raise LostRaceError
            ticket = ticket.model_copy(update={"id": new_id, "revision": 1})
        elif batch is not None:  # the batch writes it with the others, before the commit
            ticket = ticket.model_copy(update={"revision": ticket.revision + 1})
            batch.update_later(ticket)
        elif update_ticket(tx, ticket):
            ticket = ticket.model_copy(update={"revision": ticket.revision + 1})
        else:
            raise LostRaceError
        if batch is not None:
            batch.written(ticket)
        sinks, instance = self.sinks, self._instance
        store_calls.enqueue(tx, ticket, change.calls, now, sinks=sinks, instance=instance)
        if self.ticket_notices is not None and change.calls:
            self.ticket_notices(tx, ticket, [intent.action for intent in change.calls], now)
        assert ticket.id is not None
        return Applied(
            ticket_id=ticket.id,
            site=ticket.site,
            kkt=ticket.kkt,
            problem=ticket.problem,
            state=ticket.state,
            calls=[intent.action for intent in change.calls],
        )

    # --- agents ------------------------------------------------------------------

    def _agent_seen(self, batch: Batch, fact: lc.AgentSeen, now: datetime) -> Outcome:
        tx = batch.tx
        current = self._agent(tx, fact.site, tx.d.for_update)
        record = lc.on_agent_seen(current, fact)
        if record is None:
            same = current is not None and current.session == fact.session
            return Outcome(status=OutcomeStatus.UNCHANGED if same else OutcomeStatus.STALE)
        if current is None:
            inserted = tx.one(
                "INSERT INTO agents (site, session, state, last_status_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING RETURNING site",
                record.site,
                record.session,
                record.state,
                record.last_status_at,
            )
            if inserted is None:
                raise LostRaceError
        else:
            tx.run(
                "UPDATE agents SET session = ?, state = ?, last_status_at = ? WHERE site = ?",
                record.session,
                record.state,
                record.last_status_at,
                record.site,
            )
        applied: list[Applied] = []
        if record.state is not AgentState.LOST:
            for ticket in batch.live(fact.site, lc.AGENT_KKT, ProblemCode.AGENT_LOST):
                # The agent record already ruled this status the newest; the ticket's own
                # time is the moment its grace ran out, which a late status may precede.
                back = lc.agent_back_fact(fact, not_before=ticket.last_event_at)
                change = lc.on_cleared(ticket, back, now, self.policy)
                applied += self._outcome(tx, change, now, batch).changes
        return Outcome(status=OutcomeStatus.CHANGED, changes=applied)

    def _agent(self, tx: Tx, site: str, lock: str) -> lc.AgentRecord | None:
        row = tx.one(
            "SELECT site, session, state, last_status_at FROM agents WHERE site = ?" + lock, site
        )
        if row is None:
            return None
        return lc.AgentRecord(
            site=row[0],
            session=int(row[1]),
            state=AgentState(row[2]),
            last_status_at=tx.d.read_ts(row[3]),
        )

    # --- the periodic tick ---------------------------------------------------------

    def tick(self, now: datetime) -> list[Applied]:
        """Open tickets whose hold-down passed, resolve those whose grace passed, and
        raise AGENT_LOST for sites lost past their grace. One transaction per ticket;
        rows another worker is handling are skipped (it will finish them)."""
        applied: list[Applied] = []
        for ticket_id in self._run(lambda tx: self._due_tickets(tx, now)):
            applied += self._run(partial(self._tick_ticket, ticket_id=ticket_id, now=now))
        for site in self._run(lambda tx: self._lost_sites(tx, now)):
            applied += self._run(partial(self._tick_agent, site=site, now=now))
        return applied

    def _due_tickets(self, tx: Tx, now: datetime) -> list[int]:
        p = self.policy
        notified = [s.value for s in p.notify_severities] or [""]
        hold = timedelta(seconds=p.open_after_s)
        rows = tx.all(
            "SELECT id FROM tickets WHERE (state = 'pending'"
            f" AND severity IN ({', '.join('?' for _ in notified)})"
            " AND (first_seen_at <= ? OR severity = 'blocked' OR problem = ? OR block_at <= ?))"
            " OR (state = 'clearing' AND clearing_since <= ?) ORDER BY id",
            *notified,
            now - hold,
            ProblemCode.AGENT_LOST,
            now + hold,
            now - timedelta(seconds=p.resolve_after_s),
        )
        return [int(row[0]) for row in rows]

    def _tick_ticket(self, tx: Tx, ticket_id: int, now: datetime) -> list[Applied]:
        row = tx.one(SELECT_TICKET + " WHERE id = ?" + tx.d.skip_locked, ticket_id)
        if row is None:
            return []
        change = lc.on_tick(ticket_from_row(tx, row), now, self.policy)
        return [] if change is None else [self._write(tx, change, now)]

    def _lost_sites(self, tx: Tx, now: datetime) -> list[str]:
        rows = tx.all(
            "SELECT site FROM agents a WHERE state = 'lost' AND last_status_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.site = a.site AND t.kkt = ?"
            "   AND t.problem = ? AND t.state IN ('pending', 'open'))"
            " ORDER BY site",
            now - timedelta(seconds=self.policy.agent_lost_after_s),
            lc.AGENT_KKT,
            ProblemCode.AGENT_LOST,
        )
        return [str(row[0]) for row in rows]

    def _tick_agent(self, tx: Tx, site: str, now: datetime) -> list[Applied]:
        agent = self._agent(tx, site, tx.d.skip_locked)
        due = lc.agent_lost_due(agent, self.policy) if agent is not None else None
        if agent is None or due is None or due > now:
            return []
        batch = Batch(tx, [(site, lc.AGENT_KKT, ProblemCode.AGENT_LOST)])
        current = batch.newest(site, lc.AGENT_KKT, ProblemCode.AGENT_LOST, "")
        if current is not None and current.state in (lc.TicketState.PENDING, lc.TicketState.OPEN):
            return []
        change = lc.on_raised(current, lc.agent_lost_fact(agent, due), now, self.policy)
        changes = self._outcome(tx, change, now, batch).changes
        batch.flush()
        return changes

    # --- the dispatcher's side (CallStore) ---------------------------------------

    def claim_calls(self, sink: str, limit: int, now: datetime) -> list[HelpdeskCall]:
        """Pending calls for ``sink`` whose time has come, oldest first, leased for
        ``claim_ttl_s``; a call waits while an earlier one of its ticket and sink is open."""
        return self._run(lambda tx: store_calls.claim(tx, sink, limit, now, self.claim_ttl_s))

    def complete_call(self, call_id: int, external_ref: str | None, now: datetime) -> None:
        """Record success; for OPEN, keep the help desk's reference."""
        self._run(lambda tx: store_calls.complete(tx, call_id, external_ref, now))

    def fail_call(self, call_id: int, error: str, retry_at: datetime | None) -> None:
        """Record a failure; ``retry_at`` None gives the call up (kept as ``failed``)."""
        self._run(lambda tx: store_calls.fail(tx, call_id, error, retry_at))

    # --- queries -----------------------------------------------------------------

    def record_states(self, states: Sequence[RegisterFacts]) -> None:
        """Upsert the newest facts of many registers in one transaction; older ones lose,
        and a register new to a site at ``limits.registers_per_site`` is refused. The
        first state of an hour also goes to the register's history (:mod:`history`)."""
        if states:
            rows = [(st.site, st.kkt, st.facts, st.taken_at) for st in states]
            limit = self.policy.limits.registers_per_site
            hourly = self._history_hours.due(rows)

            def work(tx: Tx) -> None:
                store_guards.record_devices(tx, rows, limit)
                if hourly:
                    history.record(tx, hourly)

            self._run(work)
            self._history_hours.remember(hourly)

    def device_facts(self, site: str, kkt: str) -> dict[str, Any] | None:
        """The newest recorded state facts of one register, if any worker recorded them."""
        return self.devices_facts([(site, kkt)]).get((site, kkt))

    def devices_facts(
        self, registers: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The newest recorded state facts of each of ``registers`` that has any."""
        wanted = sorted(set(registers))
        return self._run(lambda tx: store_batch.devices_facts(tx, wanted)) if wanted else {}

    def list_tickets(self, include_resolved_since: datetime | None = None) -> list[TicketRow]:
        """Live tickets, plus those resolved since the given time that had reached the
        help desk; by ``block_at`` (soonest first, none last), then age."""
        where = "state <> 'resolved'"
        params: list[object] = []
        if include_resolved_since is not None:
            where += " OR (opened_at IS NOT NULL AND resolved_at >= ?)"
            params.append(include_resolved_since)
        order = "block_at IS NULL, block_at, first_seen_at, id"
        sql = f"{SELECT_TICKET} WHERE {where} ORDER BY {order}"
        tickets = self._run(lambda tx: [ticket_from_row(tx, r) for r in tx.all(sql, *params)])
        return [TicketRow.of(ticket) for ticket in tickets]

    def tickets(self, site: str | None = None) -> list[lc.Ticket]:
        """Every stored ticket (tombstones included), of one site or all, in id order."""
        where, params = (" WHERE site = ?", [site]) if site is not None else ("", [])
        sql = f"{SELECT_TICKET}{where} ORDER BY id"
        return self._run(lambda tx: [ticket_from_row(tx, r) for r in tx.all(sql, *params)])

    def ticket(self, ticket_id: int) -> lc.Ticket | None:
        def work(tx: Tx) -> lc.Ticket | None:
            row = tx.one(SELECT_TICKET + " WHERE id = ?", ticket_id)
            return None if row is None else ticket_from_row(tx, row)

        return self._run(work)

    def calls(self, ticket_id: int | None = None) -> list[CallRecord]:
        """The outbox rows, of one ticket or all, in id order."""
        return self._run(lambda tx: store_calls.records(tx, ticket_id))

    def agents(self) -> list[lc.AgentRecord]:
        def work(tx: Tx) -> list[lc.AgentRecord]:
            sites = [str(row[0]) for row in tx.all("SELECT site FROM agents ORDER BY site")]
            found = [self._agent(tx, site, "") for site in sites]
            return [agent for agent in found if agent is not None]

        return self._run(work)

    # --- guards: dead letters, refusals, leases --------------------------------------

    def record_dead_letter(self, topic: str, payload: bytes, reason: str, now: datetime) -> None:
        """Keep a bounded, escaped copy of a message that can never be stored; count it."""
        keep = self.policy.limits.dead_letters_kept
        letter = partial(store_guards.dead_letter, topic=topic, payload=payload, reason=reason)
        self._run(lambda tx: letter(tx, now=now, keep=keep))

    def dead_letter_count(self) -> int:
        """Every dead letter ever recorded in this store, trimmed ones included."""
        return self._run(store_guards.dead_letter_count)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return self._run(lambda tx: store_guards.dead_letters(tx, limit))

    def refusals(self) -> list[Refusal]:
        return self._run(store_guards.refusals)

    def acquire_lease(self, name: str, holder: str, ttl_s: float, now: datetime) -> bool:
        """Whether ``holder`` now holds lease ``name``: taken because free or expired, or
        renewed (to ``now + ttl_s``) because it held it. Atomic: racing holders get one True."""
        return self._run(lambda tx: store_guards.acquire_lease(tx, name, holder, ttl_s, now))

    def release_lease(self, name: str, holder: str) -> bool:
        """Free lease ``name`` if ``holder`` holds it; whether it did."""
        return self._run(lambda tx: store_guards.release_lease(tx, name, holder))

    def prune(self, now: datetime, *, events_days: float = 30, resolved_days: float = 365) -> int:
        """Forget old dedup marks and long-resolved tickets (their calls go with them)."""

        def work(tx: Tx) -> int:
            gone = tx.run(
                "DELETE FROM seen_events WHERE seen_at < ?", now - timedelta(days=events_days)
            )
            gone += tx.run(
                "DELETE FROM tickets WHERE state = 'resolved' AND resolved_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM helpdesk_calls c WHERE c.ticket_id = tickets.id"
                "   AND c.state IN ('pending', 'claimed'))",
                now - timedelta(days=resolved_days),
            )
            return gone

        return self._run(work)


def open_store(
    url: str,
    *,
    policy: TicketingSection | None = None,
    sinks: Sequence[str] = (),
    now: datetime | None = None,
    claim_ttl_s: float | None = None,
) -> TicketStore:
    """Open (creating or migrating) the store at ``url``.

    ``sqlite:////abs/path`` or ``sqlite:///relative/path`` -> SQLite (WAL);
    ``postgresql://...`` or ``postgres://...`` -> PostgreSQL through psycopg 3.
    """
    options: dict[str, Any] = {"policy": policy, "sinks": sinks, "claim_ttl_s": claim_ttl_s}
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        from kktmon.ticketing.store_sqlite import SqliteTicketStore

        return SqliteTicketStore(url, now=now, **options)
    if url.startswith(("postgresql://", "postgres://")):
        from kktmon.ticketing.store_postgres import PostgresTicketStore

        return PostgresTicketStore(url, now=now, **options)
    raise ConfigError(f"ticket store URL {url!r}: use sqlite:///path or postgresql://...")
