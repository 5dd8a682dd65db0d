"""The console's queries: the fleet, a register, the plan, tickets (issue 14).

The same SQL on SQLite and PostgreSQL (facts read through the dialect's
:meth:`~.store_db.Dialect.fact`), each page in one read-only transaction
(:meth:`~.store.TicketStore.read`): a snapshot, so a page and its count agree, that
holds no writer back. Every value a request brings is a parameter; what is spliced
into SQL comes from fixed tables here (sort columns, fact names). Lists are one
statement with ``LIMIT``/``OFFSET`` and one ``COUNT`` over the same filter.

Scope first: a client's scope narrows every query to its sites, and a register or
ticket of another site is None, as one that does not exist.

Sizes, measured on PostgreSQL with 100,000 registers over 2,000 clients (5 sites each),
2,160 hours of history for the register asked for (``benchmarks/console.py`` fills every
register's: 216 million rows), p50 on a shared 2-core VM:

* a client's fleet (filter or scope: ~50 registers found through the ``devices`` key,
  site first): 3 ms; a register's page with 90 days of hours: 12 ms (key ranges of
  ``tickets_by_key`` and ``register_history``);
* the whole fleet by ``block_at``, first page: 70 ms, page 100: 120 ms; searched: 130 ms.
  These read every row's facts: no index serves a sort or a substring on a JSON fact
  without making each of the ~1,700 state writes a second a non-HOT update with a
  second index entry, which the write path cannot spare;
* the plan for 90 days over the whole fleet (12,967 registers due): 190-260 ms (the scan
  of ``devices`` ~90 ms, the drive tickets ~25, the rest in Python with the items of the
  previous plan reused: :mod:`fleet_plan`; the first plan after a start ~400 ms); a
  client's: 1 ms.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from kktmon.protocol.problems import Severity
from kktmon.ticketing import history
from kktmon.ticketing.console_config import ConsoleSection
from kktmon.ticketing.fleet import (
    PER_PAGE_MAX,
    ActiveProblem,
    Page,
    RegisterDetail,
    RegisterQuery,
    RegisterRow,
    Scope,
    clients_by_site,
    register_row,
    ticket_view,
)
from kktmon.ticketing.fleet_plan import Plan, build_plan, read_candidates, sites_in
from kktmon.ticketing.fleet_tickets import get_ticket, list_tickets, register_tickets
from kktmon.ticketing.lifecycle import TicketState
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.store import TicketStore
from kktmon.ticketing.store_db import Tx, chunks

__all__ = ["get_register", "get_ticket", "iter_registers", "list_registers", "list_tickets", "plan"]

DEFAULTS = ConsoleSection()
#: The SQL of each sort key: ``(kind, fact)`` for a fact, else a column of ``devices``.
_SORTS: dict[str, tuple[str, str] | str] = {
    "block_at": ("ts", "block_at"),
    "site": "d.site",
    "kkt": "d.kkt",
    "last_seen": "d.taken_at",
    "fn_valid_until": ("text", "fn_valid_until"),
    "unsent_count": ("num", "unsent_count"),
}
#: ``LIKE`` patterns escape their wildcards with this.
_ESCAPE = "!"


def list_registers(
    store: TicketStore,
    query: RegisterQuery,
    scope: Scope,
    clients: Sequence[ClientConfig],
    now: datetime,
    *,
    console: ConsoleSection = DEFAULTS,
) -> Page[RegisterRow]:
    """One page of the fleet: filtered, searched, sorted (nulls last), counted."""
    sites = _sites(scope, clients, query.client, query.site)
    if sites is not None and not sites:
        return Page[RegisterRow](items=[], total=0, page=query.page, per_page=query.per_page)

    def work(tx: Tx) -> Page[RegisterRow]:
        where, params = _register_filter(tx, query, sites)
        total = tx.one(f"SELECT COUNT(*) FROM devices d WHERE {where}", *params)
        rows = tx.all(
            f"SELECT d.site, d.kkt, d.facts, d.taken_at FROM devices d WHERE {where}"
            f" ORDER BY {_order(tx, query)} LIMIT ? OFFSET ?",
            *params,
            query.per_page,
            (query.page - 1) * query.per_page,
        )
        items = _rows(tx, rows, clients_by_site(clients), now, console)
        count = int(total[0]) if total is not None else 0
        return Page[RegisterRow](items=items, total=count, page=query.page, per_page=query.per_page)

    return store.read(work)


def iter_registers(
    store: TicketStore,
    query: RegisterQuery,
    scope: Scope,
    clients: Sequence[ClientConfig],
    now: datetime,
    *,
    console: ConsoleSection = DEFAULTS,
) -> Iterator[RegisterRow]:
    """Every register the query finds, page by page (for the CSV export)."""
    page = 1
    while True:
        step = query.model_copy(update={"page": page, "per_page": PER_PAGE_MAX})
        found = list_registers(store, step, scope, clients, now, console=console)
        yield from found.items
        if page >= found.pages:
            return
        page += 1


def get_register(  # noqa: PLR0917 - the order the console's interface names
    store: TicketStore,
    site: str,
    kkt: str,
    scope: Scope,
    clients: Sequence[ClientConfig],
    now: datetime,
    *,
    console: ConsoleSection = DEFAULTS,
    tickets_max: int = 50,
) -> RegisterDetail | None:
    """A register's page (its facts, newest tickets, hourly history over
    ``history_days``); None when it is unknown or outside ``scope``."""
    if not scope.allows(site):
        return None

    def work(tx: Tx) -> RegisterDetail | None:
        row = tx.one(
            "SELECT d.site, d.kkt, d.facts, d.taken_at FROM devices d"
            " WHERE d.site = ? AND d.kkt = ?",
            site,
            kkt,
        )
        if row is None:
            return None
        owners = clients_by_site(clients)
        (summary,) = _rows(tx, [row], owners, now, console)
        tickets = register_tickets(tx, site, kkt, tickets_max)
        since = now - timedelta(days=console.history_days)
        return RegisterDetail(
            **dict(summary),
            facts=tx.d.read_json(row[2]),
            tickets=[ticket_view(t, owners=owners, now=now, console=console) for t in tickets],
            history=history.points(tx, site, kkt, since),
        )

    return store.read(work)


def plan(
    store: TicketStore,
    days: int,
    scope: Scope,
    clients: Sequence[ClientConfig],
    now: datetime,
    *,
    client: str | None = None,
) -> Plan:
    """Registers whose drive is due within ``days`` (:mod:`fleet_plan`), in scope."""
    sites = _sites(scope, clients, client, None)
    if sites is not None and not sites:
        return build_plan([], days, now, clients)
    horizon = (now + timedelta(days=days)).astimezone(UTC).date()
    found = store.read(lambda tx: read_candidates(tx, sites, horizon))
    return build_plan(found, days, now, clients)


# --- pieces ------------------------------------------------------------------------------


def _sites(
    scope: Scope, clients: Sequence[ClientConfig], client: str | None, site: str | None
) -> frozenset[str] | None:
    """The sites a query may read: the scope's, narrowed to a client's and a site; None
    for every site."""
    sites = scope.sites
    if client is not None:
        owner = next((c for c in clients if c.id == client), None)
        mine = frozenset(owner.sites if owner is not None else ())
        sites = mine if sites is None else sites & mine
    if site is not None:
        sites = frozenset({site}) if sites is None else sites & {site}
    return sites


def _register_filter(
    tx: Tx, query: RegisterQuery, sites: frozenset[str] | None
) -> tuple[str, list[object]]:
    where, params = sites_in("d.site", sites)
    clauses, values = [where], list(params)
    if query.vendor is not None:
        clauses.append(f"{tx.d.fact('vendor', 'text')} = ?")
        values.append(query.vendor)
    if query.problem is not None:
        clauses.append(
            "EXISTS (SELECT 1 FROM tickets t WHERE t.site = d.site AND t.kkt = d.kkt"
            " AND t.problem = ? AND t.state <> 'resolved')"
        )
        values.append(query.problem)
    if query.search is not None:
        pattern = "%" + _escape(query.search.lower()) + "%"
        columns = ("d.kkt", tx.d.fact("serial", "text"), tx.d.fact("fn_serial", "text"))
        clauses.append(
            "(" + " OR ".join(f"LOWER({c}) LIKE ? ESCAPE '{_ESCAPE}'" for c in columns) + ")"
        )
        values += [pattern] * len(columns)
    return " AND ".join(clauses), values


def _escape(text: str) -> str:
    for char in (_ESCAPE, "%", "_"):
        text = text.replace(char, _ESCAPE + char)
    return text


def _order(tx: Tx, query: RegisterQuery) -> str:
    sort = _SORTS[query.sort]
    expression = tx.d.fact(sort[1], sort[0]) if isinstance(sort, tuple) else sort
    direction = "DESC" if query.descending else "ASC"
    return f"{expression} {direction} NULLS LAST, d.site, d.kkt"


def _rows(
    tx: Tx,
    rows: Sequence[tuple[Any, ...]],
    owners: Mapping[str, ClientConfig],
    now: datetime,
    console: ConsoleSection,
) -> list[RegisterRow]:
    problems = _problems(tx, [(str(r[0]), str(r[1])) for r in rows])
    return [
        register_row(
            str(site),
            str(kkt),
            tx.d.read_json(facts),
            tx.d.read_ts(taken_at),
            problems=problems.get((str(site), str(kkt)), []),
            client=owners.get(str(site)),
            now=now,
            console=console,
        )
        for site, kkt, facts, taken_at in rows
    ]


def _problems(
    tx: Tx, registers: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[ActiveProblem]]:
    """The live tickets of ``registers``: one statement per page."""
    found: dict[tuple[str, str], list[ActiveProblem]] = defaultdict(list)
    for chunk in chunks(registers, tx.d.rows_max):
        relation, params = tx.rows(["text", "text"], chunk)
        for site, kkt, code, severity, ticket_id, state, block_at in tx.all(
            "SELECT t.site, t.kkt, t.problem, t.severity, t.id, t.state, t.block_at"
            f" FROM ({relation}) AS k JOIN tickets t"
            " ON t.site = k.column1 AND t.kkt = k.column2 WHERE t.state <> 'resolved'",
            *params,
        ):
            found[(str(site), str(kkt))].append(
                ActiveProblem(
                    code=code,
                    severity=Severity(severity),
                    ticket_id=int(ticket_id),
                    state=TicketState(state),
                    block_at=tx.ts_or_none(block_at),
                )
            )
    return found
