"""Builders of ticketing facts and the test policy, shared by the ticketing tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kktmon.protocol.health import Owner, Problem, Severity
from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing.config import TicketingSection
from kktmon.ticketing.store import TicketStore

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)  # a Monday noon, outside any closed hours
SINKS = ("desk", "hook")
DEVICE = {"model": "ШТРИХ-М-01Ф", "serial": "0012345678"}
#: ``make_store(**policy_changes)``: the conftest fixture's type.
StoreFactory = Callable[..., TicketStore]


def policy(**changes: Any) -> TicketingSection:
    """The test policy: 5-minute hold-down, 30-minute grace, 15-minute lost agent."""
    base: dict[str, Any] = {"open_after_s": 300, "resolve_after_s": 1800}
    return TicketingSection.model_validate(base | changes)


def problem(
    code: str = "PAPER_OUT",
    severity: Severity = Severity.WARNING,
    message: str = "Receipt paper is out",
    **facts: Any,
) -> Problem:
    return Problem(code=code, severity=severity, owner=Owner.SERVICE, message=message, facts=facts)


def raised(
    at: datetime = T0,
    *,
    code: str = "PAPER_OUT",
    severity: Severity = Severity.WARNING,
    site: str = "store-001",
    kkt: str = "shtrih-0012345678",
    event_id: str | None = "auto",
    snapshot: dict[str, Any] | None = None,
    **facts: Any,
) -> lc.ProblemRaised:
    return lc.ProblemRaised(
        site=site,
        kkt=kkt,
        problem=problem(code, severity, f"{code} is {severity}", **facts),
        event_id=uuid.uuid4().hex if event_id == "auto" else event_id,
        at=at,
        snapshot_facts=DEVICE if snapshot is None else snapshot,
    )


def cleared(
    at: datetime,
    *,
    code: str = "PAPER_OUT",
    site: str = "store-001",
    kkt: str = "shtrih-0012345678",
    fn_serial: str | None = None,
    event_id: str | None = "auto",
) -> lc.ProblemCleared:
    return lc.ProblemCleared(
        site=site,
        kkt=kkt,
        code=code,
        fn_serial=fn_serial,
        event_id=uuid.uuid4().hex if event_id == "auto" else event_id,
        at=at,
    )
