"""What one transaction of facts reads up front: a few statements per batch, not per fact.

Applied one by one, every fact would cost its transaction a lock, an insert into
``seen_events``, a read of its problem's tickets and, for a new ticket, two counts for
the caps: a round trip each, most of what a fact costs on PostgreSQL. :class:`Batch`
does each once for all the facts of a transaction (:meth:`TicketStore.apply_batch`):

1. the problems' locks, in one statement, in one sorted order (PostgreSQL's advisory
   locks; two workers take them in the same order, and cannot deadlock on them);
2. the events' ids, into ``seen_events`` in one statement that returns the new ones
   (an id already there is a duplicate);
3. the problems' tickets: every live one and the newest of each drive serial, locked
   (``FOR UPDATE``);
4. the first time a new ticket must pass the caps, the live tickets of the batch's
   sites, counted in one statement.

Reading many problems at once joins their keys with the table: on PostgreSQL one
statement (the keys as arrays, :meth:`~.store_db.Tx.rows`). SQLite has no round trips
to save, and a join with a list of keys is where its planner, given statistics
(``ANALYZE``), may first scan a whole index to build a Bloom filter: there the
problems' tickets (and registers' facts) are read one key at a time.

The facts are then decided one by one from what was read, and every write the
transaction makes is recorded here (:meth:`Batch.written`), so a later fact of the same
problem sees the ticket an earlier one left, as a fresh read would. New tickets are
inserted as they are decided (their ids are needed at once); changed ones are written
together, one statement per batch, before the commit (:meth:`Batch.flush`), each with
the revision it was read at, as one ``UPDATE`` each would have been. Nothing outside the
transaction changes what was read: the problems' locks are held to the commit (on
SQLite, ``BEGIN IMMEDIATE`` holds every other writer off). The caps' counts are read
once per batch instead of per new ticket: other workers' tickets committed meanwhile
are not in them, which the caps already allow for (:mod:`store_guards`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from kktmon.ticketing.lifecycle import Ticket, TicketState
from kktmon.ticketing.store_db import (
    SELECT_TICKET,
    LostRaceError,
    Tx,
    chunks,
    ticket_from_row,
    update_tickets,
)

#: One problem of one register: site, kkt, problem code.
Key = tuple[str, str, str]
_KEY = ("text", "text", "text")
_ON_KEY = "t.site = k.column1 AND t.kkt = k.column2 AND t.problem = k.column3"


def lock_name(key: Key) -> str:
    """The text a problem's lock is taken on (PostgreSQL hashes it to an advisory lock)."""
    return "\x1f".join(key)


class Batch:
    """The tickets, event ids and live counts one transaction needs, read once."""

    def __init__(
        self,
        tx: Tx,
        keys: Iterable[Key],
        event_ids: Iterable[str] = (),
        now: datetime | None = None,
    ) -> None:
        self.tx = tx
        self._tickets: dict[Key, list[Ticket]] = {}
        self._asked: set[str] = set()
        self._new_ids: set[str] = set()
        self._per_register: Counter[tuple[str, str]] = Counter()
        self._per_site: Counter[str] = Counter()
        self._counted: set[str] = set()
        #: ticket id -> (the ticket as this transaction left it, its revision in the store)
        self._updates: dict[int, tuple[Ticket, int]] = {}
        self.read(keys)
        ids = sorted(set(event_ids))
        if ids:
            assert now is not None, "event ids are marked seen at a time"
            self._new_ids = first_sightings(tx, ids, now)
            self._asked.update(ids)

    def read(self, keys: Iterable[Key]) -> None:
        """Lock the problems not locked yet, and read their tickets."""
        new = sorted({key for key in keys if key not in self._tickets}, key=lock_name)
        if not new:
            return
        if self.tx.d.key_locks:
            self.tx.all(self.tx.d.key_locks, [lock_name(key) for key in new])
        for key in new:
            self._tickets[key] = []
        for ticket in read_tickets(self.tx, new):
            self._tickets[(ticket.site, ticket.kkt, ticket.problem)].append(ticket)

    def first_sighting(self, event_id: str, now: datetime) -> bool:
        """Whether this event id is new to the store (True once per id)."""
        if event_id not in self._asked:  # an id the batch did not name: ask alone
            self._asked.add(event_id)
            self._new_ids |= first_sightings(self.tx, [event_id], now)
        if event_id in self._new_ids:
            self._new_ids.discard(event_id)
            return True
        return False

    def newest(self, site: str, kkt: str, code: str, serial: str) -> Ticket | None:
        """The live ticket of this problem and drive, else its newest resolved one."""
        tickets = [t for t in self._of((site, kkt, code)) if t.fn_serial == serial]
        live = [t for t in tickets if t.state is not TicketState.RESOLVED]
        return max(live or tickets, key=_id, default=None)

    def live(self, site: str, kkt: str, code: str) -> list[Ticket]:
        """The problem's live tickets (one per drive serial), oldest first."""
        tickets = self._of((site, kkt, code))
        return sorted((t for t in tickets if t.state is not TicketState.RESOLVED), key=_id)

    def live_counts(self, site: str, kkt: str) -> tuple[int, int]:
        """Live tickets of the register and of its site, this transaction's included."""
        if site not in self._counted:
            sites = sorted({key[0] for key in self._tickets} - self._counted | {site})
            self._count(sites)
        return self._per_register[(site, kkt)], self._per_site[site]

    def written(self, ticket: Ticket) -> None:
        """Record a ticket this transaction just wrote (inserted or updated)."""
        tickets = self._tickets.setdefault((ticket.site, ticket.kkt, ticket.problem), [])
        before = next((i for i, t in enumerate(tickets) if t.id == ticket.id), None)
        was_live = before is not None and tickets[before].state is not TicketState.RESOLVED
        if before is None:
            tickets.append(ticket)
        else:
            tickets[before] = ticket
        change = int(ticket.state is not TicketState.RESOLVED) - int(was_live)
        if change and ticket.site in self._counted:
            self._per_register[(ticket.site, ticket.kkt)] += change
            self._per_site[ticket.site] += change

    def update_later(self, ticket: Ticket) -> None:
        """Record a changed ticket (its ``revision`` already counted up) for
        :meth:`flush` to write; :meth:`written` learns it at once."""
        assert ticket.id is not None
        earlier = self._updates.get(ticket.id)
        stored = ticket.revision - 1 if earlier is None else earlier[1]
        self._updates[ticket.id] = (ticket, stored)
        self.written(ticket)

    def flush(self) -> None:
        """Write the changed tickets, one statement for all; :class:`LostRaceError` when
        one moved on meanwhile (it cannot while the problems' locks are held)."""
        if not self._updates:
            return
        updates, self._updates = list(self._updates.values()), {}
        written = update_tickets(self.tx, updates)
        lost = {_id(ticket) for ticket, _ in updates} - written
        if lost:
            raise LostRaceError(f"ticket(s) {sorted(lost)} changed meanwhile")

    def _of(self, key: Key) -> list[Ticket]:
        if key not in self._tickets:  # a problem the batch did not name: lock and read it
            self.read([key])
        return self._tickets[key]

    def _count(self, sites: Sequence[str]) -> None:
        self.flush()  # the counts are read from the store
        tx = self.tx
        for chunk in chunks(sites, tx.d.rows_max):
            relation, params = tx.rows(["text"], [(site,) for site in chunk])
            rows = tx.all(
                "SELECT site, kkt, COUNT(*) FROM tickets WHERE state <> 'resolved'"
                f" AND site IN ({relation}) GROUP BY site, kkt",
                *params,
            )
            for site, kkt, count in rows:
                self._per_register[(str(site), str(kkt))] = int(count)
                self._per_site[str(site)] += int(count)
        self._counted.update(sites)


def _id(ticket: Ticket) -> int:
    return ticket.id or 0


def read_tickets(tx: Tx, keys: Sequence[Key]) -> list[Ticket]:
    """The live tickets of ``keys`` and the newest of each drive serial, locked."""
    # Two index lookups per key (UNION ALL): an OR in one WHERE reads the whole table.
    if not tx.d.arrays:  # SQLite: see module docstring
        where = "t.site = ? AND t.kkt = ? AND t.problem = ?"
        sql = _TICKETS.format(tickets="tickets AS t", where=where, lock="")
        rows = [row for key in keys for row in tx.all(sql, *key, *key)]
        return [ticket_from_row(tx, row) for row in rows]
    tickets: list[Ticket] = []
    for chunk in chunks(keys, tx.d.rows_max):
        relation, params = tx.rows(_KEY, chunk)
        joined = f"({relation}) AS k JOIN tickets AS t ON {_ON_KEY}"
        sql = _TICKETS.format(tickets=joined, where="TRUE", lock=tx.d.for_update)
        tickets += [ticket_from_row(tx, row) for row in tx.all(sql, *params, *params)]
    return tickets


_TICKETS = (
    SELECT_TICKET + " WHERE id IN (SELECT t.id FROM {tickets} WHERE {where}"
    " AND t.state <> 'resolved' UNION ALL SELECT MAX(t.id) FROM {tickets} WHERE {where}"
    " GROUP BY t.site, t.kkt, t.problem, t.fn_serial) ORDER BY id{lock}"
)


def first_sightings(tx: Tx, event_ids: Sequence[str], now: datetime) -> set[str]:
    """Mark ``event_ids`` seen; the ones that were not seen before."""
    new: set[str] = set()
    for chunk in chunks(event_ids, tx.d.rows_max):
        relation, params = tx.rows(["text", "ts"], [(event_id, now) for event_id in chunk])
        rows = tx.all(
            f"INSERT INTO seen_events (event_id, seen_at) {relation}"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            *params,
        )
        new.update(str(row[0]) for row in rows)
    return new


def devices_facts(tx: Tx, registers: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The newest state facts of each register that has any."""
    found: dict[tuple[str, str], Any] = {}
    if not tx.d.arrays:  # SQLite: see module docstring
        for site, kkt in registers:
            row = tx.one("SELECT facts FROM devices WHERE site = ? AND kkt = ?", site, kkt)
            if row is not None:
                found[(site, kkt)] = tx.d.read_json(row[0])
        return found
    for chunk in chunks(registers, tx.d.rows_max):
        relation, params = tx.rows(["text", "text"], chunk)
        rows = tx.all(
            f"SELECT d.site, d.kkt, d.facts FROM ({relation}) AS k JOIN devices AS d"
            " ON d.site = k.column1 AND d.kkt = k.column2",
            *params,
        )
        for site, kkt, facts in rows:
            found[(str(site), str(kkt))] = tx.d.read_json(facts)
    return found
