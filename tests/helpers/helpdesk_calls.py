"""Builders of :class:`HelpdeskCall` values for sink and dispatcher tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kktmon.ticketing.calls import CallAction, HelpdeskCall, TicketView

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def ticket(ticket_id: int = 7, **changes: Any) -> TicketView:
    fields: dict[str, Any] = {
        "ticket_id": ticket_id,
        "site": "store-12",
        "kkt": "shtrih-0012345678",
        "problem": "FN_EXPIRING",
        "fn_serial": "9960440300112233",
        "severity": "warning",
        "priority": "high",
        "title": "store-12 / shtrih-0012345678: ФН expires in 9 days",
        "description": "Model ШТРИХ-М-01Ф, serial 0012345678\nФН valid until 2026-05-13",
        "block_at": datetime(2026, 5, 13, 0, 0, tzinfo=UTC),
        "device_serial": "0012345678",
    }
    fields.update(changes)
    return TicketView(**fields)


def call(
    action: CallAction = CallAction.OPEN,
    *,
    call_id: int = 1,
    key: str | None = None,
    attempts: int = 0,
    comment: str | None = None,
    **ticket_changes: Any,
) -> HelpdeskCall:
    view = ticket(**ticket_changes)
    return HelpdeskCall(
        id=call_id,
        action=action,
        idempotency_key=key or f"t{view.ticket_id}:{action.value}:{call_id}",
        ticket=view,
        comment=comment,
        attempts=attempts,
        created_at=T0,
    )
