"""What the demo shows: ticket changes as the store records them, and the final summary.

Everything printed here is read back from the ticket store (``store.tickets()``,
``store.calls()``), the same rows ``kktmon tickets`` shows, so the demo proves what the
service centre would see rather than what the script hoped to cause.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime

from kktmon.demo.script import SCRIPT, Expect, Outcome
from kktmon.protocol.health import Severity
from kktmon.ticketing.calls import CallAction
from kktmon.ticketing.lifecycle import Ticket, TicketState
from kktmon.ticketing.store import CallRecord, TicketStore

RANK = {severity: rank for rank, severity in enumerate(Severity)}


class TicketWatch:
    """Polls the store; :meth:`poll` prints every ticket change and help-desk call once."""

    def __init__(
        self, store: TicketStore, names: Mapping[str, str], say: Callable[[str], None]
    ) -> None:
        self.store = store
        self.names = dict(names)  # kkt id -> till name
        self.say = say
        self.tickets: dict[int, Ticket] = {}
        self.calls: list[CallRecord] = []
        self._told_calls: set[int] = set()

    def name(self, ticket: Ticket) -> str:
        return self.names.get(ticket.kkt, ticket.kkt)

    def poll(self) -> None:
        for ticket in self.store.tickets():
            if ticket.id is None:
                continue
            before = self.tickets.get(ticket.id)
            self.tickets[ticket.id] = ticket
            change = _change(before, ticket)
            if change:
                self.say(
                    f"   ticket #{ticket.id} {ticket.problem} on {self.name(ticket)}: {change}"
                )
        self.calls = self.store.calls()
        for call in self.calls:
            if call.state == "done" and call.id not in self._told_calls:
                self._told_calls.add(call.id)
                ref = f" -> {call.external_ref}" if call.external_ref else ""
                self.say(f"   help desk <- {call.action.value} ticket #{call.ticket_id}{ref}")

    def newest(self, kkt: str, problem: str) -> Ticket | None:
        found = [t for t in self.tickets.values() if (t.kkt, t.problem) == (kkt, problem)]
        return max(found, key=lambda t: t.id or 0, default=None)

    def met(self, expect: Expect, kkt: str) -> bool:
        ticket = self.newest(kkt, expect.problem)
        if ticket is None or ticket.opened_at is None:
            return False
        if expect.outcome is Outcome.RESOLVED:
            return ticket.state is TicketState.RESOLVED
        return expect.severity is None or ticket.severity is expect.severity

    def calls_pending(self) -> bool:
        return any(call.state in ("pending", "claimed") for call in self.calls)


def _change(before: Ticket | None, now: Ticket) -> str | None:
    severity, message = now.severity.value, now.facts.message
    if before is None:
        return _first_sight(now)
    if before.state is not now.state:
        return {
            TicketState.OPEN: f"REOPENED ({severity})"
            if before.state is TicketState.CLEARING
            else _opened(now),
            TicketState.CLEARING: "problem gone, clearing (grace period before resolving)",
            TicketState.RESOLVED: "RESOLVED" if before.opened_at else "gone before it was sent",
            TicketState.PENDING: "pending",
        }[now.state]
    if RANK[now.severity] > RANK[before.severity] and now.state is TicketState.OPEN:
        return f"ESCALATED {before.severity.value} -> {severity}: {message}"
    if now.severity is not before.severity:
        return f"severity {before.severity.value} -> {severity}: {message}"
    return None


def _first_sight(ticket: Ticket) -> str | None:
    severity, message = ticket.severity.value, ticket.facts.message
    if ticket.state is TicketState.PENDING:
        kept = ", kept here: info is not sent" if ticket.severity is Severity.INFO else ""
        return f"pending ({severity}{kept}): {message}"
    if ticket.state is TicketState.OPEN:
        return f"{_opened(ticket)}: {message}"
    return None  # a tombstone or a problem already gone: nothing happened to see


def _opened(ticket: Ticket) -> str:
    return f"OPENED ({ticket.severity.value}), sent to the help desk"


# ------------------------------------------------------------------ summary


def summary(watch: TicketWatch, started: datetime, took_s: float) -> str:
    """The table of tickets opened, escalated and resolved, and the totals."""
    per_ticket = Counter((call.ticket_id, call.action) for call in watch.calls)
    shown = [
        t
        for t in sorted(watch.tickets.values(), key=lambda t: t.id or 0)
        if t.opened_at is not None or t.state is TicketState.PENDING
    ]
    header = (
        f"{'#':>3}  {'register':<10}  {'problem':<18}  {'severity':<8}  "
        f"{'opened':>7}  {'escalated':>9}  {'resolved':>8}  help desk"
    )
    lines = [header, "-" * (len(header) + 8)]
    for t in shown:
        escalated = per_ticket[(t.id or 0, CallAction.ESCALATE)]
        ref = t.external_ref or ("not sent (info)" if t.opened_at is None else "-")
        lines.append(
            f"{t.id:>3}  {watch.name(t):<10}  {t.problem:<18}  {t.severity.value:<8}  "
            f"{_at(t.opened_at, started):>7}  {f'{escalated}x' if escalated else '-':>9}  "
            f"{_at(t.resolved_at, started):>8}  {ref}"
        )
    opened = [t for t in shown if t.opened_at is not None]
    resolved = sum(1 for t in opened if t.state is TicketState.RESOLVED)
    escalations = sum(n for (_, action), n in per_ticket.items() if action is CallAction.ESCALATE)
    delivered = sum(1 for call in watch.calls if call.state == "done")
    totals = (
        f"{len(opened)} tickets opened, {escalations} escalations, {resolved} resolved; "
        f"{delivered} help-desk calls delivered; the demo took {took_s:.1f} s"
    )
    return "\n".join([*lines, "", totals])


def _at(moment: datetime | None, started: datetime) -> str:
    return "-" if moment is None else f"+{(moment - started).total_seconds():.1f}s"


def verify(watch: TicketWatch, kkt_of: Callable[[str], str]) -> list[str]:
    """What the store lacks for the script to count as done (empty: all there)."""
    missing = []
    for step in SCRIPT:
        for expect in step.expect:
            ticket = watch.newest(kkt_of(expect.till), expect.problem)
            where = f"{expect.problem} on {expect.where}"
            if ticket is None or ticket.opened_at is None:
                missing.append(f"{where}: no ticket was opened")
            elif expect.outcome is Outcome.RESOLVED and ticket.state is not TicketState.RESOLVED:
                missing.append(f"{where}: the ticket is {ticket.state.value}, not resolved")
    escalations = Counter(
        (kkt_of(e.till), e.problem)
        for step in SCRIPT
        for e in step.expect
        if e.outcome is Outcome.ESCALATED
    )
    actions = Counter((call.ticket_id, call.action) for call in watch.calls if call.state == "done")
    for (kkt, problem), wanted in escalations.items():
        ticket = watch.newest(kkt, problem)
        got = actions[(ticket.id or 0, CallAction.ESCALATE)] if ticket else 0
        if got < wanted:
            missing.append(f"{problem}: {got} escalation(s) reached the help desk, {wanted} due")
    return missing
