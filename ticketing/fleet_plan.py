"""The fiscal-drive replacement plan: what to buy, where to go, what to bring.

A register is in the plan for ``days`` when its drive must be replaced by then: its
validity ends (``fn_valid_until``, or ``block_at`` for ``fn_expiry``), its newest state
names a drive deadline (``block_reason`` ``fn_memory_full`` or ``fn_archive_closed``
with its ``block_at``), or a live ticket asks for a new drive (the codes of
:data:`~kktmon.protocol.problems.NEW_FN_CODES`: its ``block_at``, else now). The
earliest of these is the item's ``block_at`` and ``block_reason`` (a block reason, or the
ticket's problem code). An overdue item is planned for the current week.

Each item carries the drive to bring exactly as a ticket's text suggests it
(:func:`~.text.replacement_hint`: the model the register names, else the type read
from the serial, else the rule for choosing), and that suggestion is the type the
per-site counts group by: the purchasing department buys what the engineers are told.

:func:`read_candidates` asks the store (one transaction, the same SQL on both stores):
registers whose drive date or drive deadline may fall in the horizon (a scan of
``devices`` reading seven facts, not whole states), and live drive tickets.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from kktmon.protocol.problems import NEW_FN_CODES, BlockReason
from kktmon.ticketing.fleet import as_date, as_text, clients_by_site
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.store_batch import devices_facts
from kktmon.ticketing.store_db import Tx
from kktmon.ticketing.text import Scalar, parse_time, replacement_hint

#: Block reasons that a new drive ends (besides the drive's end date).
DRIVE_REASONS = (BlockReason.FN_EXPIRY, BlockReason.FN_MEMORY_FULL, BlockReason.FN_ARCHIVE_CLOSED)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PlanItem(_Frozen):
    """One register whose drive is due, and the drive to bring."""

    site: str
    kkt: str
    client: str | None = None
    client_name: str | None = None
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    fn_serial: str | None = None
    fn_valid_until: date | None = None
    #: When the register stops selling without a new drive.
    block_at: AwareDatetime
    block_reason: str
    #: Monday of the ISO week to go in (this week's for an overdue drive).
    week: date
    suggested_fn_type: str


class PlanSite(_Frozen):
    """Drives of one type to bring to one site."""

    site: str
    client: str | None = None
    fn_type: str
    count: int


class PlanWeek(_Frozen):
    week: date
    count: int


class Plan(_Frozen):
    """Everything due within ``days`` of ``now``, soonest first, and its two groupings."""

    days: int
    now: AwareDatetime
    items: list[PlanItem]
    by_site: list[PlanSite]
    by_week: list[PlanWeek]


@dataclass(frozen=True)
class Candidate:
    """What the store gave for one register: its state's facts and its drive tickets
    (problem code, the ticket's deadline or None, the problem's facts)."""

    site: str
    kkt: str
    facts: Mapping[str, Any]
    tickets: Sequence[tuple[str, datetime | None, Mapping[str, Scalar]]] = ()


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def build_plan(
    candidates: Iterable[Candidate], days: int, now: datetime, clients: Sequence[ClientConfig]
) -> Plan:
    """The plan from the store's candidates: due within ``days``, grouped."""
    horizon = now + timedelta(days=days)
    owners = clients_by_site(clients)
    items = []
    for candidate in candidates:
        due = _due(candidate, now)
        if due is not None and due[0] <= horizon:
            items.append(_item(candidate, due, now, owners.get(candidate.site)))
    items.sort(key=lambda i: (i.block_at, i.site, i.kkt))
    per_site = Counter((i.site, i.client, i.suggested_fn_type) for i in items)
    per_week = Counter(i.week for i in items)
    return Plan(
        days=days,
        now=now,
        items=items,
        by_site=[
            PlanSite(site=site, client=client, fn_type=kind, count=n)
            for (site, client, kind), n in sorted(per_site.items(), key=lambda kv: kv[0][::2])
        ],
        by_week=[PlanWeek(week=week, count=n) for week, n in sorted(per_week.items())],
    )


def _due(candidate: Candidate, now: datetime) -> tuple[datetime, str, Mapping[str, Scalar]] | None:
    """The earliest drive deadline of a register, its reason, and the facts it came with."""
    facts = candidate.facts
    found: list[tuple[datetime, str, Mapping[str, Scalar]]] = []
    reason = as_text(facts.get("block_reason"))
    block_at = parse_time(facts.get("block_at"))
    if reason in DRIVE_REASONS and block_at is not None:
        found.append((block_at, reason, {}))
    valid_until = as_date(facts.get("fn_valid_until"))
    if valid_until is not None:
        found.append((datetime.combine(valid_until, time(), UTC), BlockReason.FN_EXPIRY, {}))
    for code, deadline, problem in candidate.tickets:
        found.append((deadline or now, code, problem))
    return min(found, key=lambda f: f[0]) if found else None


def _item(
    candidate: Candidate,
    due: tuple[datetime, str, Mapping[str, Scalar]],
    now: datetime,
    client: ClientConfig | None,
) -> PlanItem:
    facts, (block_at, reason, problem) = candidate.facts, due
    # What replacement_hint reads of the register's facts.
    snap = {key: as_text(facts.get(key)) for key in ("fn_model", "fn_serial")}
    return PlanItem(
        site=candidate.site,
        kkt=candidate.kkt,
        client=client.id if client else None,
        client_name=client.name if client else None,
        vendor=as_text(facts.get("vendor")),
        model=as_text(facts.get("model")),
        serial=as_text(facts.get("serial")),
        fn_serial=as_text(problem.get("fn_serial")) or snap["fn_serial"],
        fn_valid_until=as_date(facts.get("fn_valid_until")),
        block_at=block_at,
        block_reason=str(reason),
        week=monday(max(block_at, now).astimezone(UTC).date()),
        suggested_fn_type=replacement_hint(dict(snap), dict(problem)),
    )


# --- what the store gives -----------------------------------------------------------------


def read_candidates(tx: Tx, sites: frozenset[str] | None, horizon: date) -> list[Candidate]:
    """Registers whose drive's validity or drive deadline ends by ``horizon`` (a UTC
    date), and registers with live tickets asking for a drive."""
    d = tx.d
    in_sites, site_params = sites_in("d.site", sites)
    reasons = ", ".join("?" for _ in DRIVE_REASONS)
    names = ("vendor", "model", "serial", "fn_serial", "fn_valid_until", "block_at")
    columns = ", ".join(d.fact(name, "text") for name in (*names, "block_reason"))
    # block_at by its date's text, a day wider than the horizon (its offset may move the
    # instant across midnight): build_plan keeps what is due by the horizon's instant.
    rows = tx.all(
        f"SELECT d.site, d.kkt, {columns} FROM devices d WHERE {in_sites}"
        f" AND ({d.fact('fn_valid_until', 'text')} <= ?"
        f" OR ({d.fact('block_reason', 'text')} IN ({reasons})"
        f" AND SUBSTR({d.fact('block_at', 'text')}, 1, 10) <= ?))",
        *site_params,
        horizon.isoformat(),
        *DRIVE_REASONS,
        (horizon + timedelta(days=1)).isoformat(),
    )
    facts = {
        (str(r[0]), str(r[1])): dict(zip((*names, "block_reason"), r[2:], strict=True))
        for r in rows
    }
    drives: dict[tuple[str, str], list[tuple[str, datetime | None, dict[str, Any]]]]
    drives = defaultdict(list)
    in_ticket_sites, ticket_params = sites_in("site", sites)
    codes = sorted(NEW_FN_CODES)
    for site, kkt, code, block_at, problem_facts in tx.all(
        "SELECT site, kkt, problem, block_at, facts FROM tickets WHERE state <> 'resolved'"
        f" AND problem IN ({', '.join('?' for _ in codes)}) AND {in_ticket_sites}",
        *codes,
        *ticket_params,
    ):
        problem = tx.d.read_json(problem_facts).get("problem", {})
        drives[(str(site), str(kkt))].append((str(code), tx.ts_or_none(block_at), problem))
    facts |= devices_facts(tx, sorted(set(drives) - set(facts)))
    keys = sorted(set(facts) | set(drives))
    return [Candidate(s, k, facts.get((s, k), {}), drives.get((s, k), [])) for s, k in keys]


def sites_in(column: str, sites: frozenset[str] | None) -> tuple[str, list[object]]:
    """``column IN (?, ...)`` of ``sites``, or TRUE for every site."""
    if sites is None:
        return "TRUE", []
    return f"{column} IN ({', '.join('?' for _ in sites)})", list(sorted(sites))
