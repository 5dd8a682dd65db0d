"""When a client is told: deadlines, thresholds and digest times, as pure functions.

A register's deadlines come from its newest state (the ``devices`` table's facts): the
fiscal drive's end date (``fn_expiry``), its memory projected full (``fn_memory_full``,
when the agent names it as the register's ``block_reason``) and the OFD's 30 days after
the first unsent document (``ofd_30_days``). The shift's 24 hours are not a client matter
of days and are left to tickets.

Each deadline has a *subject*, what it is about: the drive's serial for the drive's
deadlines (a new drive starts its thresholds afresh), the first unsent document's number
for the OFD's (a queue that drained and went stale again months later is news again).

With ``days = [30, 14, 7, 3]`` a deadline 10 days away has crossed 30 and 14; the client
is told once, for 14 (the nearest crossed threshold), never for 30 afterwards: a message
is due for threshold ``t`` only while no message of the same deadline went to the same
recipient for ``t`` or a nearer one (:func:`is_news`). So a worker that was down for a
week sends the one message that is still true, not a backlog, and a projected date that
wobbles back out never repeats an earlier warning. A deadline already past is not
announced: a ticket is about it (``notify_tickets``).

:class:`Audience` is the config's side of it: which client hears about a site, on which
channels, and when a new message is due (at once, or in the next store-local digest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from kktmon.protocol.health import OFD_BLOCK_AFTER
from kktmon.protocol.problems import BlockReason, deadline_of
from kktmon.ticketing import text
from kktmon.ticketing.notify_config import ClientConfig

#: Deadlines a client is warned of, days ahead.
DEADLINE_CAUSES = (BlockReason.FN_EXPIRY, BlockReason.FN_MEMORY_FULL, BlockReason.OFD_30_DAYS)
TICKET_OPEN, TICKET_REOPEN, TICKET_RESOLVE = "ticket_open", "ticket_reopen", "ticket_resolve"
TICKET_CAUSES = (TICKET_OPEN, TICKET_REOPEN, TICKET_RESOLVE)
#: Register facts a message quotes, copied from the state into the notification row.
REGISTER_FACTS = (
    "vendor",
    "model",
    "serial",
    "rnm",
    "fn_serial",
    "fn_valid_until",
    "unsent_count",
    "first_unsent_at",
    "first_unsent_number",
)


@dataclass(frozen=True, slots=True)
class Deadline:
    """One moment a register stops selling, for one cause."""

    site: str
    kkt: str
    cause: str
    subject: str
    block_at: datetime


def deadlines(site: str, kkt: str, facts: Mapping[str, Any]) -> list[Deadline]:
    """The register's client-facing deadlines, from its newest state facts."""
    found: list[Deadline] = []
    drive = str(facts.get("fn_serial") or "")
    reason, block_at = facts.get("block_reason"), text.parse_time(facts.get("block_at"))
    expiry = _fn_expiry(facts)
    if reason == BlockReason.FN_EXPIRY and block_at is not None:
        expiry = block_at  # the agent's own figure, when it is the register's nearest
    if expiry is not None:
        found.append(Deadline(site, kkt, BlockReason.FN_EXPIRY, drive, expiry))
    if reason == BlockReason.FN_MEMORY_FULL and block_at is not None:
        found.append(Deadline(site, kkt, BlockReason.FN_MEMORY_FULL, drive, block_at))
    first = text.parse_time(facts.get("first_unsent_at"))
    if first is not None and _positive(facts.get("unsent_count")):
        number = facts.get("first_unsent_number")
        subject = str(number) if number is not None else first.isoformat()
        found.append(Deadline(site, kkt, BlockReason.OFD_30_DAYS, subject, first + OFD_BLOCK_AFTER))
    return found


def _fn_expiry(facts: Mapping[str, Any]) -> datetime | None:
    """Midnight of the drive's end date in the register's zone (the agent's rule: the
    drive may refuse from the first minute of that day)."""
    raw = facts.get("fn_valid_until")
    if not isinstance(raw, str):
        return None
    try:
        day = date.fromisoformat(raw[:10])
    except ValueError:
        return None
    taken = text.parse_time(facts.get("taken_at"))
    zone = taken.tzinfo if taken is not None else UTC
    return datetime.combine(day, time(), zone)


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def threshold_due(block_at: datetime, now: datetime, days: Sequence[int]) -> int | None:
    """The nearest threshold ``block_at`` has come within, or None (none yet, or past)."""
    left = block_at - now
    if left <= timedelta(0):
        return None
    crossed = [d for d in days if left <= timedelta(days=d)]
    return min(crossed) if crossed else None


def is_news(threshold: int, recorded: Iterable[int]) -> bool:
    """Whether a message for ``threshold`` says something the recipient was not told:
    no message of this deadline went to them for it or a nearer one."""
    return all(done > threshold for done in recorded)


def next_digest(now: datetime, zone: tzinfo, at: time) -> tuple[datetime, str]:
    """The next digest instant after ``now`` (``at`` store-local) and its local date,
    which names the digest (every message due that day goes into it)."""
    local = now.astimezone(zone)
    day = local.date()
    for _ in range(3):  # today, tomorrow, and one more if a DST gap swallowed ``at``
        moment = datetime.combine(day, at, zone)
        if moment.astimezone(UTC) > now:
            return moment.astimezone(UTC), day.isoformat()
        day += timedelta(days=1)
    raise AssertionError("unreachable: a day later is always later")  # pragma: no cover


def ticket_cause(action: str) -> str | None:
    """The message a help-desk action makes for a client who asked for ticket news."""
    return {"open": TICKET_OPEN, "reopen": TICKET_REOPEN, "resolve": TICKET_RESOLVE}.get(action)


def matches_cause(problem: str, cause: str) -> bool:
    """Whether a ticket on ``problem`` is the service centre's work on deadline ``cause``."""
    reason = deadline_of(problem)
    return reason is not None and reason.value == cause


def register_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a register's facts a message quotes."""
    return {key: facts[key] for key in REGISTER_FACTS if facts.get(key) is not None}


@dataclass(frozen=True)
class Audience:
    """Who is told about which site, and when: the config's clients, thresholds and
    digest hour, with the site's zone (``[ticketing.closed_hours]``)."""

    clients: Sequence[ClientConfig]
    days: Sequence[int]
    digest_at: time
    zone_for: Callable[[str], tzinfo]

    def client(self, site: str) -> ClientConfig | None:
        return next((c for c in self.clients if site in c.sites and c.recipients()), None)

    def sites(self) -> list[str]:
        """Sites whose client has someone to tell."""
        return sorted(site for c in self.clients if c.recipients() for site in c.sites)

    def schedule(self, client: ClientConfig, site: str, now: datetime) -> tuple[datetime, Any]:
        """When a new row is due and the digest it goes into (None: sent on its own)."""
        if not client.digest:
            return now, None
        return next_digest(now, self.zone_for(site), self.digest_at)
