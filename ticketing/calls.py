"""Outgoing help-desk calls: the transactional outbox between the ticket store and sinks.

The ticket store writes a :class:`HelpdeskCall` in the same database transaction that
changes a ticket, so a crash can never record a ticket change without its call (or the
reverse). A dispatcher claims pending calls, hands each to a :class:`Sink`, and records
the outcome. Each call carries an idempotency key derived from (ticket, action, revision),
so a call retried after a crash between "help desk accepted" and "we recorded it" is
recognised by the help desk (or by our own reference check) instead of opening a second
ticket there.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict

from kktmon.protocol.errors import KktmonError


class CallAction(StrEnum):
    OPEN = "open"  # create the help-desk issue
    COMMENT = "comment"  # add a comment (recurrence, new facts)
    ESCALATE = "escalate"  # raise priority and comment
    REOPEN = "reopen"  # recurrence within the grace period
    RESOLVE = "resolve"  # the problem is gone


class TicketView(BaseModel):
    """What a sink needs to know about the ticket a call is about."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ticket_id: int
    site: str
    kkt: str
    problem: str
    fn_serial: str | None = None
    severity: str
    priority: str  # low / normal / high / critical
    title: str
    description: str
    block_at: AwareDatetime | None = None
    external_ref: str | None = None  # the help desk's id, once opened
    device_serial: str | None = None  # for the help desk's equipment registry


class HelpdeskCall(BaseModel):
    """One pending outgoing call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    action: CallAction
    idempotency_key: str
    ticket: TicketView
    comment: str | None = None
    attempts: int = 0
    created_at: AwareDatetime


class SinkError(KktmonError):
    """A sink could not deliver; ``retryable`` says whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Sink(Protocol):
    """A help desk (or a webhook) that receives calls."""

    name: str

    def deliver(self, call: HelpdeskCall) -> str | None:
        """Perform the call; return the help desk's reference for OPEN (else None)."""
        ...


class CallStore(Protocol):
    """The part of the ticket store the dispatcher uses."""

    def claim_calls(self, sink: str, limit: int, now: datetime) -> list[HelpdeskCall]:
        """Pending calls for ``sink`` whose retry time has come, oldest first, claimed
        so a second worker does not take them (a claim expires if the worker dies)."""
        ...

    def complete_call(self, call_id: int, external_ref: str | None, now: datetime) -> None:
        """Record success; for OPEN, store ``external_ref`` on the ticket."""
        ...

    def fail_call(self, call_id: int, error: str, retry_at: datetime | None) -> None:
        """Record a failure; ``retry_at`` None means give up (kept for inspection)."""
        ...
