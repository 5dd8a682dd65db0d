"""The transactional outbox of help-desk calls, as functions over an open transaction.

:func:`enqueue` runs inside the transaction that changes a ticket, so the change and its
calls commit together. The dispatcher side (:func:`claim`, :func:`complete`, :func:`fail`)
keeps two promises:

* a claim is a lease: ``claimed_until`` passes and the call is due again, so a worker that
  died mid-delivery loses nothing (the sink recognises the repeat by its idempotency key);
* per ticket and sink, calls go out in the order they were written: a call waits while an
  earlier one for the same ticket and sink is pending or claimed, so RESOLVE never
  overtakes the OPEN that gives it the help desk's reference. A call given up
  (``failed``) no longer blocks the ones behind it.

``attempts`` counts claims; a claimed call reports the attempts before this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from kktmon.protocol.errors import TicketStoreError
from kktmon.ticketing.calls import CallAction, HelpdeskCall, TicketView
from kktmon.ticketing.lifecycle import CallIntent, Ticket
from kktmon.ticketing.store_db import TICKET_COLUMNS, Tx, ticket_from_row

#: Longer error texts are cut: the column is for a human reading the failure.
ERROR_MAX = 2000


class CallRecord(BaseModel):
    """One row of the outbox, for inspection (``kktmon tickets``, tests, the demo)."""

    model_config = ConfigDict(frozen=True)

    id: int
    ticket_id: int
    sink: str
    action: CallAction
    idempotency_key: str
    comment: str | None
    state: str
    attempts: int
    claimed_until: AwareDatetime | None
    retry_at: AwareDatetime | None
    last_error: str | None
    created_at: AwareDatetime
    completed_at: AwareDatetime | None
    external_ref: str | None


def idempotency_key(instance: str, ticket: Ticket, action: CallAction, sink: str) -> str:
    """Unique per database, ticket revision, action and sink; stable across retries."""
    return f"kktmon-{instance}-{ticket.id}-r{ticket.revision}-{action.value}-{sink}"


def enqueue(
    tx: Tx,
    ticket: Ticket,
    intents: Sequence[CallIntent],
    now: datetime,
    *,
    sinks: Sequence[str],
    instance: str,
) -> None:
    """One pending call per intent and sink, for ``ticket`` as just written."""
    for intent in intents:
        for sink in sinks:
            tx.run(
                "INSERT INTO helpdesk_calls"
                " (ticket_id, sink, action, idempotency_key, comment, state, attempts, created_at)"
                " VALUES (?, ?, ?, ?, ?, 'pending', 0, ?)",
                ticket.id,
                sink,
                intent.action,
                idempotency_key(instance, ticket, intent.action, sink),
                intent.comment,
                now,
            )


_DUE = """
SELECT c.id FROM helpdesk_calls c
WHERE c.sink = ?
  AND ((c.state = 'pending' AND (c.retry_at IS NULL OR c.retry_at <= ?))
       OR (c.state = 'claimed' AND c.claimed_until <= ?))
  AND NOT EXISTS (
      SELECT 1 FROM helpdesk_calls e
      WHERE e.ticket_id = c.ticket_id AND e.sink = c.sink AND e.id < c.id
        AND e.state IN ('pending', 'claimed'))
ORDER BY c.id LIMIT ?"""

_CLAIMED = (
    "SELECT c.id, c.action, c.idempotency_key, c.comment, c.attempts, c.created_at,"
    " (SELECT o.external_ref FROM helpdesk_calls o"
    "  WHERE o.ticket_id = c.ticket_id AND o.sink = c.sink AND o.action = 'open'"
    "    AND o.state = 'done' AND o.external_ref IS NOT NULL"
    "  ORDER BY o.id DESC LIMIT 1), "
    + ", ".join(f"t.{column}" for column in TICKET_COLUMNS)
    + " FROM helpdesk_calls c JOIN tickets t ON t.id = c.ticket_id WHERE c.id = ?"
)


def claim(tx: Tx, sink: str, limit: int, now: datetime, ttl_s: float) -> list[HelpdeskCall]:
    """Lease up to ``limit`` due calls of ``sink``, oldest first."""
    rows = tx.all(_DUE + tx.d.skip_locked, sink, now, now, limit)
    ids = [int(row[0]) for row in rows]
    until = now + timedelta(seconds=ttl_s)
    calls = []
    for call_id in ids:
        tx.run(
            "UPDATE helpdesk_calls SET state = 'claimed', claimed_until = ?,"
            " attempts = attempts + 1 WHERE id = ?",
            until,
            call_id,
        )
        row = tx.one(_CLAIMED, call_id)
        assert row is not None
        calls.append(_helpdesk_call(tx, row))
    return calls


def _helpdesk_call(tx: Tx, row: tuple[Any, ...]) -> HelpdeskCall:
    call_id, action, key, comment, attempts, created_at, sink_ref = row[:7]
    ticket = ticket_from_row(tx, row[7:])
    serial = ticket.facts.snapshot.get("serial")
    view = TicketView(
        ticket_id=ticket.id or 0,
        site=ticket.site,
        kkt=ticket.kkt,
        problem=ticket.problem,
        fn_serial=ticket.fn_serial or None,
        severity=ticket.severity.value,
        priority=ticket.priority.value,
        title=ticket.title,
        description=ticket.description,
        block_at=ticket.block_at,
        external_ref=sink_ref,
        device_serial=str(serial) if serial else None,
    )
    return HelpdeskCall(
        id=int(call_id),
        action=CallAction(action),
        idempotency_key=key,
        ticket=view,
        comment=comment,
        attempts=int(attempts) - 1,  # this claim is not a past attempt yet
        created_at=tx.d.read_ts(created_at),
    )


def complete(tx: Tx, call_id: int, external_ref: str | None, now: datetime) -> None:
    """Mark delivered; an OPEN's reference also lands on the ticket (the first one wins)."""
    row = tx.one("SELECT ticket_id, action, state FROM helpdesk_calls WHERE id = ?", call_id)
    if row is None:
        raise TicketStoreError(f"no help-desk call {call_id}")
    ticket_id, action, state = row
    if state == "done":
        return  # a repeat after an expired claim: the first record stands
    tx.run(
        "UPDATE helpdesk_calls SET state = 'done', claimed_until = NULL, retry_at = NULL,"
        " completed_at = ?, external_ref = ?, last_error = NULL WHERE id = ?",
        now,
        external_ref,
        call_id,
    )
    if action == CallAction.OPEN.value and external_ref is not None:
        tx.run(
            "UPDATE tickets SET external_ref = COALESCE(external_ref, ?) WHERE id = ?",
            external_ref,
            ticket_id,
        )


def fail(tx: Tx, call_id: int, error: str, retry_at: datetime | None) -> None:
    """Record a failed delivery: due again at ``retry_at``, or given up when None.

    Only a claimed call changes: a late failure report must not undo a success that
    another worker recorded after this one's claim expired.
    """
    row = tx.one("SELECT state FROM helpdesk_calls WHERE id = ?", call_id)
    if row is None:
        raise TicketStoreError(f"no help-desk call {call_id}")
    if row[0] != "claimed":
        return
    tx.run(
        "UPDATE helpdesk_calls SET state = ?, retry_at = ?, claimed_until = NULL,"
        " last_error = ? WHERE id = ?",
        "pending" if retry_at is not None else "failed",
        retry_at,
        error[:ERROR_MAX],
        call_id,
    )


_RECORD_COLUMNS = (
    "id, ticket_id, sink, action, idempotency_key, comment, state, attempts, claimed_until,"
    " retry_at, last_error, created_at, completed_at, external_ref"
)


def records(tx: Tx, ticket_id: int | None) -> list[CallRecord]:
    """Calls in id order, of one ticket or all."""
    where = " WHERE ticket_id = ?" if ticket_id is not None else ""
    params = (ticket_id,) if ticket_id is not None else ()
    rows = tx.all(f"SELECT {_RECORD_COLUMNS} FROM helpdesk_calls{where} ORDER BY id", *params)
    names = [name.strip() for name in _RECORD_COLUMNS.split(",")]
    out = []
    for row in rows:
        values = dict(zip(names, row, strict=True))
        for column in ("claimed_until", "retry_at", "created_at", "completed_at"):
            values[column] = tx.ts_or_none(values[column])
        out.append(CallRecord.model_validate(values))
    return out
