"""The reads every page, API route and CSV shares: the store's read side, scoped.

Each function takes the asking :class:`~kktmon.console.auth.Principal` and passes its
scope to :mod:`kktmon.ticketing.fleet_store`, which applies it in SQL: a page, its JSON
and its CSV cannot disagree on what a client may see. Not found and out of scope are the
same :class:`NotFound` (a 404). The console writes no SQL of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from kktmon.console.auth import Principal
from kktmon.console.state import Console, console_of
from kktmon.ticketing import fleet_store
from kktmon.ticketing.fleet import (
    Page,
    RegisterDetail,
    RegisterQuery,
    RegisterRow,
    SortKey,
    TicketDetail,
    TicketView,
)
from kktmon.ticketing.fleet_plan import Plan, page_of

TicketState = Literal["open", "recent", "all"]
PLAN_DAYS = (30, 60, 90)
#: The plan's items per page (a whole-fleet 90-day plan has 13,000: no page for a person,
#: 6.9 MB of JSON), and the most one page may ask for.
PLAN_PER_PAGE = 200
PLAN_PER_PAGE_MAX = 1000
PlanPage = Annotated[int, Query(ge=1, le=100_000, description="the page of items, from 1")]
PlanPerPage = Annotated[
    int, Query(ge=1, le=PLAN_PER_PAGE_MAX, description="items per page (the groupings are whole)")
]


class NotFound(HTTPException):
    def __init__(self, what: str) -> None:
        super().__init__(404, f"{what} not found")


class Ambiguous(HTTPException):
    def __init__(self, kkt: str, sites: list[str]) -> None:
        super().__init__(409, f"{kkt} is at several sites ({', '.join(sites)}): name the site")


def register_query(
    *,
    client: Annotated[str | None, Query(description="a [[clients]] id")] = None,
    site: Annotated[str | None, Query(description="a site id")] = None,
    vendor: Annotated[str | None, Query(description="the register family (device.vendor)")] = None,
    problem: Annotated[str | None, Query(description="an active problem code")] = None,
    search: Annotated[str | None, Query(max_length=100, description="part of a serial")] = None,
    sort: Annotated[SortKey, Query(description="the column to sort by")] = "block_at",
    descending: bool = False,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RegisterQuery:
    """The fleet's filters as query parameters (blank form fields count as unset)."""
    values: dict[str, Any] = {
        "client": client or None,
        "site": site or None,
        "vendor": vendor or None,
        "problem": problem or None,
        "search": search or None,
        "sort": sort,
        "descending": descending,
        "page": page,
        "per_page": per_page,
    }
    try:
        return RegisterQuery(**values)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


RegisterFilters = Annotated[RegisterQuery, Depends(register_query)]


def registers(console: Console, who: Principal, query: RegisterQuery) -> Page[RegisterRow]:
    return fleet_store.list_registers(
        console.store,
        query,
        who.scope,
        console.config.clients,
        console.now(),
        console=console.config.console,
    )


def all_registers(console: Console, who: Principal, query: RegisterQuery) -> Iterator[RegisterRow]:
    """Every register the query matches, page by page (for the CSV export)."""
    return fleet_store.iter_registers(
        console.store,
        query,
        who.scope,
        console.config.clients,
        console.now(),
        console=console.config.console,
    )


def register(console: Console, who: Principal, site: str, kkt: str) -> RegisterDetail:
    found = fleet_store.get_register(
        console.store,
        site,
        kkt,
        who.scope,
        console.config.clients,
        console.now(),
        console=console.config.console,
    )
    if found is None:
        raise NotFound(f"register {kkt} at {site}")
    return found


def site_of(console: Console, who: Principal, kkt: str) -> str:
    """The one site in ``who``'s scope where a register called ``kkt`` is."""
    query = RegisterQuery(search=kkt[:64])
    sites = sorted({r.site for r in all_registers(console, who, query) if r.kkt == kkt})
    if not sites:
        raise NotFound(f"register {kkt}")
    if len(sites) > 1:
        raise Ambiguous(kkt, sites)
    return sites[0]


def plan(console: Console, who: Principal, days: int, client: str | None = None) -> Plan:
    """The whole plan: every item (the CSV, the page's timeline) and both groupings."""
    clients = console.config.clients
    return fleet_store.plan(
        console.store, days, who.scope, clients, console.now(), client=client or None
    )


def plan_page(
    console: Console,
    who: Principal,
    days: int,
    *,
    page: int = 1,
    per_page: int = PLAN_PER_PAGE,
    client: str | None = None,
) -> Plan:
    """One page of the plan's items with its groupings whole (:func:`fleet_plan.page_of`)."""
    return page_of(plan(console, who, days, client), page, per_page)


def tickets(
    console: Console,
    who: Principal,
    state: TicketState,
    *,
    page: int = 1,
    per_page: int = 50,
    client: str | None = None,
    site: str | None = None,
) -> Page[TicketView]:
    return fleet_store.list_tickets(
        console.store,
        who.scope,
        console.now(),
        state=state,
        page=page,
        per_page=per_page,
        client=client or None,
        site=site or None,
        clients=console.config.clients,
        console=console.config.console,
    )


def ticket(console: Console, who: Principal, ticket_id: int) -> TicketDetail:
    found = fleet_store.get_ticket(
        console.store,
        ticket_id,
        who.scope,
        now=console.now(),
        clients=console.config.clients,
        console=console.config.console,
    )
    if found is None:
        raise NotFound(f"ticket {ticket_id}")
    return found


def console_dep(request: Request) -> Console:
    return console_of(request)
