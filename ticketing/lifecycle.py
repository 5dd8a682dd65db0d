"""Ticket lifecycle decisions, pure: (ticket or None, fact, now, policy) -> change + calls.

The store reads the newest ticket for a key inside a transaction, asks these functions
what to do, and writes the answer with the calls it causes in the same transaction::

    raised ──> pending ──(hold-down passed, severity notified)──> open ──cleared──> clearing
                 │  (blocked, or block_at nearer than the hold-down: at once)   │    │
                 └─cleared─> resolved (silently, never reached the help desk)   │    │
       open ──raised higher──> open + ESCALATE          clearing ──raised──> open + REOPEN
       clearing ──(grace passed)──> resolved + RESOLVE (or COMMENT when on_clear = comment)

Out-of-order facts: a fact older than the ticket's ``last_event_at`` changes nothing, so
a late ``raised`` cannot undo a newer ``cleared`` (and the reverse). A ``cleared`` for a
key without a ticket leaves a resolved tombstone carrying its time for the same reason.
Problems whose severity is not in ``notify_severities`` stay ``pending``: recorded here,
never sent. AGENT_LOST opens at once, because the lost grace already was its hold-down.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from kktmon.protocol.contract import AgentState
from kktmon.protocol.health import SHIFT_BLOCK_AFTER, Problem
from kktmon.protocol.problems import (
    PROBLEMS,
    BlockReason,
    Owner,
    ProblemCode,
    Severity,
    deadline_of,
    is_fn_scoped,
)
from kktmon.ticketing import text
from kktmon.ticketing.calls import CallAction
from kktmon.ticketing.config import TicketingSection
from kktmon.ticketing.hours import open_deadline
from kktmon.ticketing.text import Scalar, TicketFacts

#: The ``kkt`` of site-wide tickets (AGENT_LOST); a register id always has a dash.
AGENT_KKT = "agent"


class TicketState(StrEnum):
    PENDING = "pending"
    OPEN = "open"
    CLEARING = "clearing"
    RESOLVED = "resolved"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


PRIORITY = {
    Severity.INFO: Priority.LOW,
    Severity.WARNING: Priority.NORMAL,
    Severity.CRITICAL: Priority.HIGH,
    Severity.BLOCKED: Priority.CRITICAL,
}
PRIORITY_RANK = {p: i for i, p in enumerate(Priority)}


class _Fact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("event_id", mode="before", check_fields=False)
    @classmethod
    def _event_id_text(cls, value: object) -> object:
        return str(value) if isinstance(value, UUID) else value


class ProblemRaised(_Fact):
    """A ``raised``/``changed`` event, or a retained alert found on start (no event id)."""

    site: str
    kkt: str
    problem: Problem
    event_id: str | None = None
    at: AwareDatetime
    snapshot_facts: dict[str, Scalar] = Field(default_factory=dict)

    @property
    def fn_serial(self) -> str:
        serial = self.problem.facts.get("fn_serial")
        return str(serial) if is_fn_scoped(self.problem.code) and serial else ""


class ProblemCleared(_Fact):
    """A ``cleared`` event or an emptied retained alert.

    ``fn_serial`` None means "whichever drive": an emptied alert topic does not say.
    """

    site: str
    kkt: str
    code: str
    fn_serial: str | None = None
    event_id: str | None = None
    at: AwareDatetime


class AgentSeen(_Fact):
    """An agent's retained status: birth, clean goodbye or last will."""

    site: str
    state: AgentState
    session: int = Field(ge=0)
    at: AwareDatetime


class Ticket(BaseModel):
    """One row of the tickets table; ``id`` None until inserted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int | None = None
    site: str
    kkt: str
    problem: str
    fn_serial: str = ""
    state: TicketState
    severity: Severity
    priority: Priority
    title: str
    description: str
    facts: TicketFacts = Field(default_factory=TicketFacts)
    block_at: AwareDatetime | None = None
    first_seen_at: AwareDatetime
    opened_at: AwareDatetime | None = None
    clearing_since: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    last_event_at: AwareDatetime
    last_seen_at: AwareDatetime
    external_ref: str | None = None
    revision: int = 0


class CallIntent(BaseModel):
    """A help-desk call to write beside the change, once per configured sink."""

    model_config = ConfigDict(frozen=True)

    action: CallAction
    comment: str | None = None


class Change(BaseModel):
    """A decision: the ticket as it should be stored, and the calls it causes."""

    model_config = ConfigDict(frozen=True)

    ticket: Ticket
    calls: list[CallIntent] = Field(default_factory=list)


def on_raised(
    current: Ticket | None, fact: ProblemRaised, now: datetime, policy: TicketingSection
) -> Change | None:
    """``current`` is the newest ticket of the key (resolved ones included) or None."""
    if current is not None and fact.at < current.last_event_at:
        return None  # stale: something newer already happened to this problem
    if current is None or current.state is TicketState.RESOLVED:
        return _urgent_open(_new_ticket(fact), now, policy)
    ticket = _refreshed(current, fact)
    if current.state is TicketState.PENDING:
        return _urgent_open(ticket, now, policy)
    raised = PRIORITY_RANK[ticket.priority] > PRIORITY_RANK[current.priority]
    if current.state is TicketState.CLEARING:
        reopened = ticket.model_copy(update={"state": TicketState.OPEN, "clearing_since": None})
        comment = text.reopen_comment(fact.at, fact.problem.severity, fact.problem.message)
        return _call(reopened, CallAction.REOPEN, comment)
    if raised:
        comment = text.escalate_comment(
            current.severity, fact.problem.severity, fact.problem.message
        )
        return _call(ticket, CallAction.ESCALATE, comment)
    return Change(ticket=ticket)


def on_cleared(
    current: Ticket | None, fact: ProblemCleared, now: datetime, policy: TicketingSection
) -> Change | None:
    """``current`` as for :func:`on_raised`; ``fact.fn_serial`` must be resolved already."""
    del policy  # the grace period is the tick's business
    if current is None:
        return Change(ticket=_tombstone(fact))
    if fact.at < current.last_event_at:
        return None
    update: dict[str, object] = {"last_event_at": fact.at}
    if current.state is TicketState.PENDING:
        update |= {"state": TicketState.RESOLVED, "resolved_at": now}
    elif current.state is TicketState.OPEN:
        update |= {"state": TicketState.CLEARING, "clearing_since": fact.at}
    return Change(ticket=current.model_copy(update=update))


def on_tick(current: Ticket, now: datetime, policy: TicketingSection) -> Change | None:
    """Open pending tickets whose hold-down passed; resolve those whose grace passed."""
    if current.state is TicketState.PENDING:
        return _open_if(current, True, now) if open_due(current, now, policy) else None
    if current.state is TicketState.CLEARING and current.clearing_since is not None:
        grace = timedelta(seconds=policy.resolve_after_s)
        if now < current.clearing_since + grace:
            return None
        resolved = current.model_copy(update={"state": TicketState.RESOLVED, "resolved_at": now})
        if policy.on_clear == "comment":
            note = text.cleared_comment(current.clearing_since, policy.resolve_after_s)
            return _call(resolved, CallAction.COMMENT, note)
        note = text.resolve_comment(current.clearing_since, policy.resolve_after_s)
        return _call(resolved, CallAction.RESOLVE, note)
    return None


def is_urgent(ticket: Ticket, now: datetime, policy: TicketingSection) -> bool:
    """Opens without waiting for the hold-down: sales stopped or about to stop."""
    if ticket.severity is Severity.BLOCKED or ticket.problem == ProblemCode.AGENT_LOST:
        return True
    hold = timedelta(seconds=policy.open_after_s)
    return ticket.block_at is not None and ticket.block_at - now <= hold


def open_due(ticket: Ticket, now: datetime, policy: TicketingSection) -> bool:
    """Whether a pending ticket should reach the help desk now."""
    if ticket.severity not in policy.notify_severities:
        return False
    hold = timedelta(seconds=policy.open_after_s)
    return now >= ticket.first_seen_at + hold or is_urgent(ticket, now, policy)


def _open_if(ticket: Ticket, due: bool, now: datetime) -> Change:
    if not due:
        return Change(ticket=ticket)
    opened = ticket.model_copy(update={"state": TicketState.OPEN, "opened_at": now})
    return _call(opened, CallAction.OPEN)


def _call(ticket: Ticket, action: CallAction, comment: str | None = None) -> Change:
    return Change(ticket=ticket, calls=[CallIntent(action=action, comment=comment)])


def _urgent_open(ticket: Ticket, now: datetime, policy: TicketingSection) -> Change:
    # A fact opens a ticket only when it is urgent; an ordinary hold-down expiry waits for
    # the tick, so a replayed burst of raise-then-clear never reaches the help desk.
    notified = ticket.severity in policy.notify_severities
    return _open_if(ticket, notified and is_urgent(ticket, now, policy), now)


def _facts(fact: ProblemRaised) -> TicketFacts:
    owner = fact.problem.owner.value if isinstance(fact.problem.owner, Owner) else None
    return TicketFacts(
        message=fact.problem.message,
        owner=owner,
        problem=dict(fact.problem.facts),
        snapshot=dict(fact.snapshot_facts),
    )


def problem_deadline(problem: Problem, snapshot: dict[str, Scalar]) -> datetime | None:
    """When this problem stops sales: the SLA deadline of its ticket.

    The problem's own facts first, then the register's ``block_at`` when the register
    names the problem's own cause (its deadline in :data:`~kktmon.protocol.problems.PROBLEMS`).
    A problem with no legal clock (paper, cover, a silent link) has none: it must not
    inherit, say, the shift's 24-hour limit.
    """
    own = text.parse_time(problem.facts.get("ofd_block_at"))
    if own is None and problem.code == ProblemCode.SHIFT_TOO_LONG:
        opened = text.parse_time(problem.facts.get("opened_at"))
        own = opened + SHIFT_BLOCK_AFTER if opened is not None else None
    if own is not None:
        return own
    reason = deadline_of(problem.code)
    if reason is not None and snapshot.get("block_reason") == reason:
        return text.parse_time(snapshot.get("block_at"))
    if reason is BlockReason.FN_EXPIRY:  # the register's earliest deadline is another one
        return text.parse_time(problem.facts.get("valid_until"))
    return None


def _new_ticket(fact: ProblemRaised) -> Ticket:
    severity = fact.problem.severity
    base = Ticket(
        site=fact.site,
        kkt=fact.kkt,
        problem=fact.problem.code,
        fn_serial=fact.fn_serial,
        state=TicketState.PENDING,
        severity=severity,
        priority=PRIORITY[severity],
        title="",
        description="",
        first_seen_at=fact.at,
        last_event_at=fact.at,
        last_seen_at=fact.at,
    )
    return _with_facts(base, fact)


def _refreshed(current: Ticket, fact: ProblemRaised) -> Ticket:
    """The ticket with the fact's severity and facts; priority never drops by itself."""
    priority = max(current.priority, PRIORITY[fact.problem.severity], key=PRIORITY_RANK.__getitem__)
    update = {
        "severity": fact.problem.severity,
        "priority": priority,
        "last_event_at": fact.at,
        "last_seen_at": max(current.last_seen_at, fact.at),
    }
    return _with_facts(current.model_copy(update=update), fact)


def _with_facts(ticket: Ticket, fact: ProblemRaised) -> Ticket:
    facts = _facts(fact)
    if not facts.snapshot:  # an event without a state keeps the register facts it had
        facts = facts.model_copy(update={"snapshot": ticket.facts.snapshot})
    block_at = problem_deadline(fact.problem, facts.snapshot)
    body = text.description(
        site=ticket.site,
        kkt=ticket.kkt,
        code=ticket.problem,
        severity=ticket.severity,
        facts=facts,
        block_at=block_at,
        first_seen_at=ticket.first_seen_at,
        last_seen_at=ticket.last_seen_at,
    )
    return ticket.model_copy(
        update={
            "facts": facts,
            "block_at": block_at,
            "title": text.title(ticket.site, ticket.kkt, ticket.problem, facts),
            "description": body,
        }
    )


def _tombstone(fact: ProblemCleared) -> Ticket:
    code = fact.code
    return Ticket(
        site=fact.site,
        kkt=fact.kkt,
        problem=code,
        fn_serial=fact.fn_serial or "",
        state=TicketState.RESOLVED,
        severity=Severity.INFO,
        priority=Priority.LOW,
        title=text.title(fact.site, fact.kkt, code, TicketFacts()),
        description="Cleared before any raise was seen (events arrived out of order).",
        first_seen_at=fact.at,
        resolved_at=fact.at,
        last_event_at=fact.at,
        last_seen_at=fact.at,
    )


class AgentRecord(BaseModel):
    """One row of the agents table: the newest status accepted for a site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site: str
    session: int
    state: AgentState
    last_status_at: AwareDatetime


def on_agent_seen(current: AgentRecord | None, fact: AgentSeen) -> AgentRecord | None:
    """The site's new record, or None when the status is stale or changes nothing.

    A status of an older session (a will left by a process that has since restarted)
    never undoes a newer one; within a session, the later status wins. A repeat of the
    current state keeps its original time, so a retained ``lost`` seen again on restart
    does not push the AGENT_LOST deadline back.
    """
    if current is not None:
        if (fact.session, fact.at) < (current.session, current.last_status_at):
            return None
        if (fact.session, fact.state) == (current.session, current.state):
            return None
    return AgentRecord(
        site=fact.site, session=fact.session, state=fact.state, last_status_at=fact.at
    )


def agent_lost_due(agent: AgentRecord, policy: TicketingSection) -> datetime | None:
    """When a lost agent's silence becomes a ticket: its grace counted outside closed hours."""
    if agent.state is not AgentState.LOST:
        return None
    window = policy.closed_hours.window_for(agent.site)
    return open_deadline(agent.last_status_at, policy.agent_lost_after_s, window)


def agent_lost_fact(agent: AgentRecord, due: datetime) -> ProblemRaised:
    """The AGENT_LOST problem of a site whose grace passed at ``due``."""
    since = agent.last_status_at
    code = ProblemCode.AGENT_LOST
    problem = Problem(
        code=code,
        severity=PROBLEMS[code].severity,
        owner=PROBLEMS[code].owner,
        message=(
            f"The monitoring agent of {agent.site} was lost at {since.isoformat()} "
            f"(session {agent.session}) and has not come back"
        ),
        since=since,
        facts={"session": agent.session, "lost_since": since.isoformat()},
    )
    return ProblemRaised(site=agent.site, kkt=AGENT_KKT, problem=problem, at=due)


def agent_back_fact(fact: AgentSeen, *, not_before: datetime | None = None) -> ProblemCleared:
    """An agent that is online again, or stopped cleanly, is not lost."""
    at = max(fact.at, not_before) if not_before is not None else fact.at
    return ProblemCleared(site=fact.site, kkt=AGENT_KKT, code=ProblemCode.AGENT_LOST, at=at)
