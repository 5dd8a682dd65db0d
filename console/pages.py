"""The server-rendered pages: fleet, replacement plan, tickets, a ticket, a register.

Each page reads exactly what its ``/api/...`` twin returns (:mod:`.queries`) and renders
it with Jinja2; charts are SVG strings from :mod:`.charts`, deadlines countdowns from
:mod:`.formatting`. A page asked for without a session sends the browser to the login
form and back. The CSV exports (``/registers.csv``, ``/plan.csv``) take the fleet's and
the plan's parameters and also accept HTTP Basic, for scripts.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from kktmon.console import charts, export, login, queries
from kktmon.console.auth import (
    LoginRequiredError,
    Principal,
    api_principal,
    from_session,
    session_of,
)
from kktmon.console.formatting import countdown, inside_margin
from kktmon.console.queries import (
    PLAN_DAYS,
    PLAN_PER_PAGE,
    PlanPage,
    PlanPerPage,
    RegisterFilters,
    TicketState,
)
from kktmon.console.state import Console, console_of
from kktmon.protocol.problems import ProblemCode
from kktmon.ticketing.fleet import HistoryPoint, RegisterQuery
from kktmon.ticketing.fleet_plan import Plan, page_of

router = APIRouter(include_in_schema=False)
router.include_router(login.router)


def page_user(request: Request) -> Principal:
    console = console_of(request)
    who = from_session(request, console.sessions, console.accounts)
    if who is None:
        raise LoginRequiredError
    return who


def export_user(request: Request) -> Principal:
    console = console_of(request)
    return api_principal(request, console.sessions, console.accounts)


User = Annotated[Principal, Depends(page_user)]
Exporter = Annotated[Principal, Depends(export_user)]
Ctx = Annotated[Console, Depends(queries.console_dep)]
Days = Annotated[int, Query(ge=1, le=366)]


def render(request: Request, name: str, who: Principal, nav: str, **context: Any) -> HTMLResponse:
    """A page in the console's frame: who is logged in, the logout form's token, the clock."""
    console = console_of(request)
    session = session_of(request, console.sessions)
    now = console.now()
    html = console.templates.get_template(name).render(
        user=who,
        csrf=session.csrf if session else "",
        nav=nav,
        now=now,
        countdown=lambda deadline: countdown(deadline, now),
        red=lambda deadline: inside_margin(deadline, now, console.config.console.sla_margin_h),
        **context,
    )
    return HTMLResponse(html)


def _clients(console: Console, who: Principal) -> list[tuple[str, str]]:
    """The clients the fleet's filter offers: all for an engineer, their own for a client."""
    mine = [c for c in console.config.clients if who.is_engineer or c.id == who.client]
    return [(c.id, c.name) for c in mine]


def _link(query: RegisterQuery, **changes: Any) -> str:
    """The fleet page's URL for ``query`` with ``changes`` (sort headers, paging)."""
    values = query.model_dump() | changes
    kept = {k: v for k, v in values.items() if v not in (None, "", False)}
    kept.pop("per_page", None) if kept.get("per_page") == 50 else None
    return "/?" + urlencode(kept)


@router.get("/", response_class=HTMLResponse)
def fleet(request: Request, query: RegisterFilters, who: User, console: Ctx) -> HTMLResponse:
    found = queries.registers(console, who, query)
    last_page = max(1, -(-found.total // query.per_page))
    return render(
        request,
        "fleet.html",
        who,
        "fleet",
        found=found,
        query=query,
        last_page=last_page,
        link=lambda **changes: _link(query, **changes),
        csv="/registers.csv?" + urlencode(_filters(query)),
        clients=_clients(console, who),
        problems=[code.value for code in ProblemCode],
    )


def _filters(query: RegisterQuery) -> dict[str, str]:
    values = query.model_dump(include={"client", "site", "vendor", "problem", "search", "sort"})
    return {k: str(v) for k, v in values.items() if v}


@router.get("/registers.csv")
def fleet_csv(query: RegisterFilters, who: Exporter, console: Ctx) -> Response:
    rows = list(queries.all_registers(console, who, query))
    return export.csv_response(export.registers_csv(rows), "registers.csv")


@router.get("/registers/{site}/{kkt}", response_class=HTMLResponse)
def register_page(request: Request, site: str, kkt: str, who: User, console: Ctx) -> HTMLResponse:
    detail = queries.register(console, who, site, kkt)
    return render(
        request, "register.html", who, "fleet", r=detail, charts=history_charts(detail.history)
    )


@router.get("/registers/{kkt}")
def register_by_name(kkt: str, who: User, console: Ctx) -> Response:
    site = queries.site_of(console, who, kkt)
    return RedirectResponse(f"/registers/{site}/{kkt}", status_code=303)


def history_charts(history: list[HistoryPoint]) -> list[Markup]:
    """The register page's charts: the OFD backlog, its age, the drive's days and memory."""

    def series(name: str, field: str, css: str = "s0") -> charts.Series:
        return charts.Series(name, [(p.at, getattr(p, field)) for p in history], css)

    drawn = [
        charts.line_chart(
            [series("unsent", "unsent_count")], title="Unsent OFD documents", whole=True
        ),
        charts.line_chart(
            [series("oldest", "oldest_unsent_age_h", "s1")],
            title="Oldest unsent document, hours",
            unit="h",
        ),
        charts.line_chart(
            [series("days", "fn_days_left", "s2")], title="FN days left", unit="d", whole=True
        ),
        charts.line_chart(
            [series("memory", "fn_memory_used_pct", "s3")], title="FN memory used, %", unit="%"
        ),
    ]
    return [Markup(svg) for svg in drawn]


@router.get("/plan", response_class=HTMLResponse)
def plan_page(
    request: Request,
    who: User,
    console: Ctx,
    *,
    days: Days = 30,
    page: PlanPage = 1,
    per_page: PlanPerPage = PLAN_PER_PAGE,
) -> HTMLResponse:
    """The plan's summaries and timeline over every item, and one page of its rows (13,000
    rows are no page for a person, and took ~400 ms to render)."""
    whole = queries.plan(console, who, days)
    today = console.now().date()
    svg = charts.timeline(
        [i.block_at for i in whole.items if i.block_at],
        today,
        days,
        title="Registers stopping, per day",
    )
    plan = page_of(whole, page, per_page)
    return render(
        request,
        "plan.html",
        who,
        "plan",
        plan=plan,
        days=days,
        choices=PLAN_DAYS,
        weeks=by_week(plan),
        week_counts={w.week: w.count for w in plan.by_week},
        link=lambda **changes: _plan_link(
            {"days": days, "page": page, "per_page": per_page} | changes
        ),
        timeline=Markup(svg),
    )


def _plan_link(values: dict[str, int]) -> str:
    """The plan page's URL of ``values`` (days, page, per_page), the defaults left out."""
    if values["per_page"] == PLAN_PER_PAGE:
        del values["per_page"]
    if values["page"] == 1:
        del values["page"]
    return "/plan?" + urlencode(values)


def by_week(plan: Plan) -> list[tuple[date, list[Any]]]:
    """The plan's registers (of its page) under the Monday of the week each one stops."""
    weeks: dict[date, list[Any]] = {}
    for item in plan.items:
        weeks.setdefault(item.week, []).append(item)
    return sorted(weeks.items())


@router.get("/plan.csv")
def plan_csv(who: Exporter, console: Ctx, days: Days = 30) -> Response:
    plan = queries.plan(console, who, days)
    return export.csv_response(export.plan_csv(plan), f"plan-{days}d.csv")


@router.get("/tickets", response_class=HTMLResponse)
def tickets_page(
    request: Request,
    who: User,
    console: Ctx,
    state: TicketState = "open",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    found = queries.tickets(console, who, state, page=page)
    last_page = max(1, -(-found.total // found.per_page))
    return render(
        request, "tickets.html", who, "tickets", found=found, state=state, last_page=last_page
    )


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(
    request: Request, ticket_id: Annotated[int, Path(ge=1)], who: User, console: Ctx
) -> HTMLResponse:
    detail = queries.ticket(console, who, ticket_id)
    return render(request, "ticket.html", who, "tickets", t=detail)
