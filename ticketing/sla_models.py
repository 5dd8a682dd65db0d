"""The SLA report's rows and results: what :mod:`.sla` reads and what it answers.

The rows are the few ticket and call columns the figures use (:mod:`.sla_store` reads
them); the results are what ``kktmon report sla --json`` prints and the console shows.
What each figure means is written once, in :mod:`.sla`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from kktmon.ticketing.lifecycle import TicketState

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class ClientScope(Protocol):
    """What the report needs of a ``[[clients]]`` entry."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def sites(self) -> Sequence[str]: ...


class SlaTicket(BaseModel):
    """The columns of one ticket the figures use (a row of :mod:`.sla_store`)."""

    model_config = ConfigDict(frozen=True)

    id: int
    site: str
    kkt: str
    problem: str
    state: TicketState
    first_seen_at: AwareDatetime
    opened_at: AwareDatetime | None = None
    clearing_since: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    block_at: AwareDatetime | None = None
    model: str | None = None
    serial: str | None = None
    rnm: str | None = None

    @property
    def resolved(self) -> datetime | None:
        """When the problem cleared for good (see the module docstring), else None."""
        if self.state is TicketState.CLEARING:
            return self.clearing_since
        if self.state is TicketState.RESOLVED:
            return self.clearing_since or self.resolved_at
        return None


class SlaCall(BaseModel):
    """One help-desk call that failed or is being retried, with its ticket's register."""

    model_config = ConfigDict(frozen=True)

    id: int
    ticket_id: int
    site: str
    kkt: str
    problem: str
    sink: str
    action: str
    state: str
    attempts: int
    last_error: str | None
    created_at: AwareDatetime


class Durations(BaseModel):
    """How many durations, their median and nearest-rank 95th percentile (seconds)."""

    count: int
    median_s: float | None
    p95_s: float | None


class StoppedRegister(BaseModel):
    site: str
    kkt: str
    model: str | None = None
    serial: str | None = None
    rnm: str | None = None
    problems: list[str]
    #: The first moment in the month it could not sell.
    since: AwareDatetime
    stopped_s: float
    #: Still unable to sell at the report's ``now``.
    still_stopped: bool


class SlaFigures(BaseModel):
    """One client's month, or the total (``client_id`` None)."""

    client_id: str | None
    name: str
    sites: list[str]
    opened: int
    opened_by_problem: dict[str, int]
    first_seen_to_opened: Durations
    opened_to_resolved: Durations
    sla_met: int
    sla_missed: int
    sla_pending: int
    #: met / (met + missed); None when no ticket counts.
    sla_met_share: float | None
    stopped_registers: list[StoppedRegister]
    stopped_s: float
    calls_failed: list[SlaCall]
    calls_retrying: int


class SlaReport(BaseModel):
    month: str = Field(pattern=MONTH.pattern)
    generated_at: AwareDatetime
    clients: list[SlaFigures]
    total: SlaFigures
