"""The console's read model: what the fleet, register, ticket and plan pages show.

Pure models and the conversions into them; the queries that fill them are in
:mod:`fleet_store` (the same SQL on SQLite and PostgreSQL), the replacement plan's
grouping in :mod:`fleet_plan`. Field names are those of the health model's facts (as the
store keeps them, :func:`~.text.snapshot_facts`) and of ``kktmon tickets --json``, so the
console's JSON API and the CLI speak alike.

Who asks decides what exists: a :class:`Scope` of a client's sites sees only those; a
register or ticket outside it is looked up as None (the console answers 404, the same
as for one that does not exist, so a client cannot probe other clients' sites).

Facts are read tolerantly: a value of an unexpected type is shown as unknown (None),
never an error, because a store holds states from every agent version there is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from kktmon.protocol.problems import Severity
from kktmon.ticketing.console_config import ConsoleSection, ConsoleUser
from kktmon.ticketing.history import HistoryPoint
from kktmon.ticketing.lifecycle import Ticket, TicketState
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.store import TicketRow
from kktmon.ticketing.text import Scalar, parse_time

__all__ = [
    "ActiveProblem",
    "HistoryPoint",
    "Page",
    "RegisterDetail",
    "RegisterQuery",
    "RegisterRow",
    "Scope",
    "TicketDetail",
    "TicketEvent",
    "TicketView",
]

T = TypeVar("T")
SortKey = Literal["block_at", "site", "kkt", "last_seen", "fn_valid_until", "unsent_count"]
PER_PAGE_MAX = 500
_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Scope(_Frozen):
    """Who asks: ``sites`` None sees everything (an engineer); else a client's sites."""

    sites: frozenset[str] | None = None

    def allows(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    @classmethod
    def of(cls, user: ConsoleUser, clients: Sequence[ClientConfig]) -> Scope:
        """An engineer's scope (everything) or a client user's (their client's sites)."""
        if user.role == "engineer":
            return cls()
        client = next((c for c in clients if c.id == user.client), None)
        return cls(sites=frozenset(client.sites if client is not None else ()))


class RegisterQuery(_Frozen):
    """The fleet page's filters, search, sort and page (query parameters, validated)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client: str | None = Field(None, min_length=1, max_length=64)
    site: str | None = Field(None, min_length=1, max_length=64)
    vendor: str | None = Field(None, min_length=1, max_length=64)
    #: A problem code: registers with a live ticket of it.
    problem: str | None = Field(None, min_length=1, max_length=64)
    #: A substring of the serial, the FN serial or the register id (case-insensitive).
    search: str | None = Field(None, min_length=1, max_length=64)
    sort: SortKey = "block_at"
    descending: bool = False
    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(50, ge=1, le=PER_PAGE_MAX)


class ActiveProblem(_Frozen):
    """A live ticket (pending, open or clearing) of a register."""

    code: str
    severity: Severity
    ticket_id: int
    state: TicketState
    block_at: AwareDatetime | None = None


class RegisterRow(_Frozen):
    """One register of the fleet: its newest state's facts and its live problems."""

    site: str
    kkt: str
    client: str | None = None
    client_name: str | None = None
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    rnm: str | None = None
    fn_serial: str | None = None
    fn_valid_until: date | None = None
    #: Days from today to ``fn_valid_until`` (else as the register last reported them).
    fn_days_left: int | None = None
    fn_memory_used_pct: float | None = None
    fn_documents_left: int | None = None
    unsent_count: int | None = None
    first_unsent_at: AwareDatetime | None = None
    #: The oldest unsent document's age now (hours).
    oldest_unsent_age_h: float | None = None
    shift_state: str | None = None
    shift_opened_at: AwareDatetime | None = None
    #: When the newest state was taken (``taken_at``).
    last_seen_at: AwareDatetime
    #: The agent could not read the register, or its newest state is too old.
    stale: bool = False
    block_at: AwareDatetime | None = None
    block_reason: str | None = None
    #: Most severe first.
    problems: list[ActiveProblem] = Field(default_factory=list)


class Page(BaseModel, Generic[T]):
    """One page of a list, and how many items the whole list has."""

    model_config = ConfigDict(frozen=True)

    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


class TicketView(TicketRow):
    """A ticket as ``kktmon tickets --json`` shows it, with its client and SLA countdown."""

    helpdesk_ref: str | None = None
    client: str | None = None
    client_name: str | None = None
    #: The SLA deadline: the register stops selling then (``block_at``).
    sla_deadline: AwareDatetime | None = None
    #: A live ticket whose deadline is closer than ``[console] sla_margin_h`` (or passed).
    inside_margin: bool = False


class TicketEvent(_Frozen):
    """One line of a ticket's history: a state change, or a help-desk call and its answer."""

    at: AwareDatetime
    kind: Literal["state", "comment", "helpdesk_call"]
    text: str
    #: The state the ticket entered (kind ``state``).
    state: str | None = None
    #: For calls: the sink, the action, the call's state and what the help desk answered
    #: (its reference on success, its error while retrying or failed).
    sink: str | None = None
    action: str | None = None
    call_state: str | None = None
    call_answer: str | None = None


class TicketDetail(TicketView):
    """A ticket's page: its text, its facts and its history, oldest first."""

    description: str
    facts: dict[str, Scalar] = Field(default_factory=dict)
    snapshot: dict[str, Scalar] = Field(default_factory=dict)
    history: list[TicketEvent] = Field(default_factory=list)


class RegisterDetail(RegisterRow):
    """A register's page: every fact of its newest state, its tickets and its history."""

    facts: dict[str, Scalar] = Field(default_factory=dict)
    tickets: list[TicketView] = Field(default_factory=list)
    history: list[HistoryPoint] = Field(default_factory=list)


# --- conversions -------------------------------------------------------------------------


def client_of(site: str, clients: Iterable[ClientConfig]) -> ClientConfig | None:
    """The client whose ``sites`` lists ``site``."""
    return next((c for c in clients if site in c.sites), None)


def clients_by_site(clients: Iterable[ClientConfig]) -> dict[str, ClientConfig]:
    """Each listed site's client (a site has at most one: the config is checked)."""
    return {site: client for client in clients for site in client.sites}


def register_row(
    site: str,
    kkt: str,
    facts: Mapping[str, Any],
    taken_at: datetime,
    *,
    problems: Sequence[ActiveProblem],
    client: ClientConfig | None,
    now: datetime,
    console: ConsoleSection,
) -> RegisterRow:
    """A ``devices`` row as the fleet shows it, ages and days counted to ``now``."""
    valid_until = as_date(facts.get("fn_valid_until"))
    days_left = as_int(facts.get("fn_days_left"))
    if valid_until is not None:
        days_left = (valid_until - now.date()).days
    unsent = as_int(facts.get("unsent_count"))
    first_unsent = parse_time(facts.get("first_unsent_at")) if unsent else None
    stale = facts.get("stale") is True
    stale = stale or now - taken_at > timedelta(minutes=console.stale_after_min)
    return RegisterRow(
        site=site,
        kkt=kkt,
        client=client.id if client else None,
        client_name=client.name if client else None,
        vendor=as_text(facts.get("vendor")),
        model=as_text(facts.get("model")),
        serial=as_text(facts.get("serial")),
        rnm=as_text(facts.get("rnm")),
        fn_serial=as_text(facts.get("fn_serial")),
        fn_valid_until=valid_until,
        fn_days_left=days_left,
        fn_memory_used_pct=as_float(facts.get("fn_memory_used_pct")),
        fn_documents_left=as_int(facts.get("fn_documents_left")),
        unsent_count=unsent,
        first_unsent_at=first_unsent,
        oldest_unsent_age_h=_age_h(facts, unsent, first_unsent, taken_at, now),
        shift_state=as_text(facts.get("shift_state")),
        shift_opened_at=parse_time(facts.get("shift_opened_at")),
        last_seen_at=taken_at,
        stale=stale,
        block_at=parse_time(facts.get("block_at")),
        block_reason=as_text(facts.get("block_reason")),
        problems=sorted(problems, key=lambda p: (-_SEVERITY_RANK[p.severity], p.ticket_id)),
    )


def ticket_view(
    ticket: Ticket,
    *,
    owners: Mapping[str, ClientConfig],
    now: datetime,
    console: ConsoleSection,
) -> TicketView:
    """A stored ticket as the console lists it (``owners``: :func:`clients_by_site`)."""
    client = owners.get(ticket.site)
    margin = timedelta(hours=console.sla_margin_h)
    live = ticket.state is not TicketState.RESOLVED
    inside = live and ticket.block_at is not None and ticket.block_at - now < margin
    row = TicketRow.of(ticket).model_dump()
    return TicketView(
        **row,
        helpdesk_ref=ticket.external_ref,
        client=client.id if client else None,
        client_name=client.name if client else None,
        sla_deadline=ticket.block_at,
        inside_margin=inside,
    )


def _age_h(
    facts: Mapping[str, Any],
    unsent: int | None,
    first_unsent: datetime | None,
    taken_at: datetime,
    now: datetime,
) -> float | None:
    if not unsent:
        return None
    if first_unsent is not None:
        return max((now - first_unsent).total_seconds() / 3600, 0.0)
    reported = as_float(facts.get("oldest_unsent_age_h"))
    if reported is None:
        return None
    return reported + max((now - taken_at).total_seconds() / 3600, 0.0)


# Facts read as their type or not at all: a store holds every agent version's states.


def as_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def as_date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
