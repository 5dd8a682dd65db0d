"""The JSON API behind every page (``/api/...``), documented at ``/api/docs``.

Each route accepts the session cookie or HTTP Basic with a console user's name and
password, and answers with the store's own pydantic models (the field names of the
health model and of ``kktmon tickets --json``), scoped to the user: for a client user,
another client's register or ticket is a 404 like one that does not exist.

    curl -u ivanov "http://127.0.0.1:8080/api/registers?sort=block_at&per_page=20"
    curl -u ivanov "http://127.0.0.1:8080/api/plan?days=60&page=2&per_page=500"
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Security
from fastapi.security import APIKeyCookie, HTTPBasic, HTTPBasicCredentials

from kktmon.console import queries
from kktmon.console.auth import Principal, api_principal
from kktmon.console.queries import (
    PLAN_PER_PAGE,
    PlanPage,
    PlanPerPage,
    RegisterFilters,
    TicketState,
)
from kktmon.console.sessions import COOKIE
from kktmon.console.state import Console, console_of
from kktmon.ticketing.fleet import (
    Page,
    RegisterDetail,
    RegisterRow,
    TicketDetail,
    TicketView,
)
from kktmon.ticketing.fleet_plan import Plan

_basic = HTTPBasic(auto_error=False, realm="kktmon console", description="a console user")
_cookie = APIKeyCookie(name=COOKIE, auto_error=False, description="the login page's session")


def api_user(
    request: Request,
    _basic_doc: Annotated[HTTPBasicCredentials | None, Security(_basic)],
    _cookie_doc: Annotated[str | None, Security(_cookie)],
) -> Principal:
    """The session's user, else HTTP Basic's (the two ``Security`` parameters put both
    schemes into the OpenAPI document; the checks are :func:`api_principal`'s)."""
    console = console_of(request)
    return api_principal(request, console.sessions, console.accounts)


User = Annotated[Principal, Depends(api_user)]
Ctx = Annotated[Console, Depends(queries.console_dep)]
Site = Annotated[str, Path(description="the site id")]
Kkt = Annotated[str, Path(description="the register's MQTT name, <vendor>-<serial>")]
Days = Annotated[int, Query(ge=1, le=366, description="the horizon: 30, 60 or 90 days")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such register or ticket, or not in your scope"}
}
router = APIRouter(prefix="/api", tags=["api"], responses={401: {"description": "log in"}})


@router.get("/registers", summary="The fleet: filtered, sorted, one page")
def list_registers(query: RegisterFilters, who: User, console: Ctx) -> Page[RegisterRow]:
    return queries.registers(console, who, query)


@router.get(
    "/registers/{site}/{kkt}",
    summary="One register: facts, problems, tickets, history",
    responses=NOT_FOUND,
)
def get_register(site: Site, kkt: Kkt, who: User, console: Ctx) -> RegisterDetail:
    return queries.register(console, who, site, kkt)


@router.get(
    "/registers/{kkt}",
    summary="One register by its name alone (when it is at one site of your scope)",
    responses={**NOT_FOUND, 409: {"description": "the name is at several sites"}},
)
def get_register_by_name(kkt: Kkt, who: User, console: Ctx) -> RegisterDetail:
    return queries.register(console, who, queries.site_of(console, who, kkt), kkt)


@router.get(
    "/plan",
    summary="Fiscal drives running out within N days: by week and site, and one page of them",
)
def get_plan(
    who: User,
    console: Ctx,
    *,
    days: Days = 30,
    client: Annotated[str | None, Query(description="a [[clients]] id")] = None,
    page: PlanPage = 1,
    per_page: PlanPerPage = PLAN_PER_PAGE,
) -> Plan:
    """``by_site`` and ``by_week`` count the whole plan; ``items`` is one page of it
    (soonest first), ``total`` how many there are in all. ``/plan.csv`` has every item."""
    return queries.plan_page(console, who, days, page=page, per_page=per_page, client=client)


@router.get("/tickets", summary="Open (or recent) tickets, soonest deadline first")
def list_tickets(
    who: User,
    console: Ctx,
    *,
    state: Annotated[
        TicketState, Query(description="open, recent (resolved lately) or all")
    ] = "open",
    client: Annotated[str | None, Query(description="a [[clients]] id")] = None,
    site: Annotated[str | None, Query(description="a site id")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[TicketView]:
    return queries.tickets(
        console, who, state, page=page, per_page=per_page, client=client, site=site
    )


@router.get("/tickets/{ticket_id}", summary="One ticket and its history", responses=NOT_FOUND)
def get_ticket(ticket_id: Annotated[int, Path(ge=1)], who: User, console: Ctx) -> TicketDetail:
    return queries.ticket(console, who, ticket_id)


@router.get("/me", summary="Who you are logged in as, and your scope")
def me(who: User) -> dict[str, object]:
    sites = None if who.scope.sites is None else sorted(who.scope.sites)
    return {"name": who.name, "role": who.role, "client": who.client, "sites": sites}
