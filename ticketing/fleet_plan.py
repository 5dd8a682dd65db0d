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
``devices`` reading eight facts, not whole states), and live drive tickets.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter, itemgetter
from typing import Any, Generic, TypeVar

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
    """Everything due within ``days`` of ``now``, soonest first, and its two groupings.

    ``items`` may be one page of the list (:func:`page_of`): ``total`` counts them all,
    and ``by_site`` and ``by_week`` always group them all (the purchasing department
    buys for the whole plan, whichever page a person reads).
    """

    days: int
    now: AwareDatetime
    items: list[PlanItem]
    by_site: list[PlanSite]
    by_week: list[PlanWeek]
    #: How many registers the whole plan has.
    total: int
    page: int = 1
    #: The size of a page; None when ``items`` is the whole list.
    per_page: int | None = None

    @property
    def pages(self) -> int:
        """How many pages of ``per_page`` the whole list makes (1 when not paged)."""
        if self.per_page is None:
            return 1
        return max(1, -(-self.total // self.per_page))


#: A live ticket asking for a drive: its problem code, its deadline (or None), and the
#: two facts of its problem the drive to bring is read from (``fn_serial``, ``fn_model``).
Drive = tuple[str, datetime | None, str | None, str | None]
#: What the plan reads of a register's facts, in a candidate's order.
FACTS = (
    "vendor",
    "model",
    "serial",
    "fn_serial",
    "fn_model",
    "fn_valid_until",
    "block_at",
    "block_reason",
)
#: One register as the store gave it: site, kkt, the values of its :data:`FACTS` and its
#: drive tickets. Plain tuples of plain values, no dicts and no named tuples: the
#: garbage collector untracks those, so a plan's 13,000 candidates do not set off a
#: full collection of the whole process (which cost as much as the plan's SQL).
Candidate = tuple[str, str, tuple[Any, ...], tuple[Drive, ...]]

#: When a register is due, why, and the drive facts of the ticket that says so.
_Due = tuple[datetime, str, tuple[str | None, str | None]]
#: All an item is built from: site, kkt, facts, due, (client id, name), week.
_ItemKey = tuple[str, str, tuple[Any, ...], _Due, tuple[str | None, str | None], date]

_NOTHING = (None, None)
_UNKNOWN = (None,) * len(FACTS)
_MIDNIGHT = time(tzinfo=UTC)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def build_plan(
    candidates: Iterable[Candidate], days: int, now: datetime, clients: Sequence[ClientConfig]
) -> Plan:
    """The plan from the store's candidates: due within ``days``, grouped.

    Items and site counts come from :class:`_Known` tables, keyed by everything they are
    built from (a plan asked for again builds few of its 13,000 items anew), and dates
    are parsed once per distinct value (:class:`_Days`).
    """
    horizon = now + timedelta(days=days)
    owners = {site: (c.id, c.name) for site, c in clients_by_site(clients).items()}
    days_of = _Days(now)
    items = []
    for site, kkt, facts, tickets in candidates:
        due = _due(facts, tickets, days_of)
        if due is None or due[0] > horizon:
            continue
        key = (site, kkt, facts, due, owners.get(site, _NOBODY), days_of.week(due[0]))
        items.append(_ITEMS.get(key) or _ITEMS.add(key, _item(key, days_of)))
    # (A list of tuples holding the models would stay tracked by the garbage collector:
    # 13,000 of them set off a full collection of the whole process.)
    items.sort(key=attrgetter("block_at", "site", "kkt"))
    per_site = Counter((i.site, i.client, i.suggested_fn_type) for i in items)
    per_week = Counter(i.week for i in items)
    return Plan(
        days=days,
        now=now,
        items=items,
        total=len(items),
        by_site=[
            _SITES.get(key) or _SITES.add(key, dict(zip(_SITE_FIELDS, key, strict=True)))
            for key in sorted(((*k, n) for k, n in per_site.items()), key=itemgetter(0, 2))
        ],
        by_week=[PlanWeek(week=week, count=n) for week, n in sorted(per_week.items())],
    )


def page_of(plan: Plan, page: int, per_page: int) -> Plan:
    """One page of a whole ``plan``'s items (1-based; past the last, none), its groupings
    whole.

    The groupings need every item, so the whole plan is built first; what a page saves
    is encoding 13,000 items to JSON and rendering them as rows (6.9 MB and ~400 ms
    for a whole-fleet 90-day plan). A copy without validation: the items are already
    the plan's.
    """
    start = (page - 1) * per_page
    items = plan.items[start : start + per_page]
    return plan.model_copy(update={"items": items, "page": page, "per_page": per_page})


M = TypeVar("M", bound=BaseModel)


class _Known(Generic[M]):
    """Frozen models by what they are built from: the same inputs give the same model
    object, built and validated once.

    A whole-fleet plan at 100,000 registers has 13,000 items and 10,000 site counts.
    Validating them anew on every request took a third of the plan's time, and the
    garbage collector's full passes over that many fresh objects as much again (a
    plan's other objects are plain tuples it untracks). A plan asked for again (another
    horizon, the CSV after the page) finds its items unchanged but for the registers
    whose drive facts changed. Bounded: emptied at ``limit`` models; 28 MiB for that
    90-day plan.
    """

    def __init__(self, model: type[M], limit: int) -> None:
        self._type = model
        self._limit = limit
        self._known: dict[Hashable, M] = {}

    def get(self, key: Hashable) -> M | None:
        return self._known.get(key)

    def add(self, key: Hashable, fields: dict[str, Any]) -> M:
        """The model of ``fields``, kept under ``key`` (which must determine them)."""
        if len(self._known) >= self._limit:
            self._known.clear()
        found = self._known[key] = self._type.model_validate(fields)
        return found


#: A 90-day plan at 100,000 registers twice over (a year's is more: it is built anew).
_ITEMS = _Known(PlanItem, 30_000)
_SITES = _Known(PlanSite, 30_000)
_SITE_FIELDS = ("site", "client", "fn_type", "count")
_NOBODY = (None, None)


class _Days:
    """Dates of one plan, each parsed or computed once: a drive's end date (its fact's
    text as a date and as the instant it ends) and the Monday of a deadline's week."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.this_week = monday(now.astimezone(UTC).date())
        self._ends: dict[str, tuple[date, datetime] | None] = {}
        self._mondays: dict[date, date] = {}

    def fn_end(self, text: object) -> tuple[date, datetime] | None:
        """``fn_valid_until`` as a date and as its first instant (UTC); None if no date."""
        if not isinstance(text, str):
            return None
        try:
            return self._ends[text]
        except KeyError:
            day = as_date(text)
            end = self._ends[text] = (
                None if day is None else (day, datetime.combine(day, _MIDNIGHT))
            )
            return end

    def week(self, block_at: datetime) -> date:
        """The Monday of the week to go in: the deadline's, this week's when overdue."""
        if block_at <= self.now:
            return self.this_week
        day = block_at.astimezone(UTC).date()
        found = self._mondays.get(day)
        if found is None:
            found = self._mondays[day] = monday(day)
        return found


def _due(facts: tuple[Any, ...], tickets: tuple[Drive, ...], days_of: _Days) -> _Due | None:
    """The earliest drive deadline of a register, its reason, and the drive facts of the
    ticket it came from (``fn_serial``, ``fn_model``; None, None from the state)."""
    *_, valid_until, block_at, reason = facts
    due: _Due | None = None
    if isinstance(reason, str) and reason in DRIVE_REASONS:
        at = parse_time(block_at)
        if at is not None:
            due = (at, reason, _NOTHING)
    end = days_of.fn_end(valid_until)
    if end is not None and (due is None or end[1] < due[0]):
        due = (end[1], BlockReason.FN_EXPIRY, _NOTHING)
    for code, deadline, fn_serial, fn_model in tickets:
        at = deadline or days_of.now
        if due is None or at < due[0]:
            due = (at, code, (fn_serial, fn_model))
    return due


def _item(key: _ItemKey, days_of: _Days) -> dict[str, Any]:
    """A :class:`PlanItem`'s fields from its key (all it is built from)."""
    site, kkt, facts, due, (client, client_name), week = key
    vendor, model, serial, fn_serial, fn_model, valid_until, _, _ = facts
    block_at, reason, (drive_serial, drive_model) = due
    fn_serial = as_text(fn_serial)
    end = days_of.fn_end(valid_until)
    # What replacement_hint reads of the register's facts and of the ticket's problem.
    snap: dict[str, Scalar] = {"fn_model": as_text(fn_model), "fn_serial": fn_serial}
    problem: dict[str, Scalar] = {"fn_model": drive_model, "fn_serial": drive_serial}
    return {
        "site": site,
        "kkt": kkt,
        "client": client,
        "client_name": client_name,
        "vendor": as_text(vendor),
        "model": as_text(model),
        "serial": as_text(serial),
        "fn_serial": drive_serial or fn_serial,
        "fn_valid_until": end[0] if end else None,
        "block_at": block_at,
        "block_reason": str(reason),
        "week": week,
        "suggested_fn_type": replacement_hint(snap, problem),
    }


# --- what the store gives -----------------------------------------------------------------


def read_candidates(tx: Tx, sites: frozenset[str] | None, horizon: date) -> list[Candidate]:
    """Registers whose drive's validity or drive deadline ends by ``horizon`` (a UTC
    date), and registers with live tickets asking for a drive (in no order)."""
    d = tx.d
    in_sites, site_params = sites_in("d.site", sites)
    reasons = ", ".join("?" for _ in DRIVE_REASONS)
    columns = ", ".join(d.fact(name, "text") for name in FACTS)
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
    drives = _drive_tickets(tx, sites)
    found: list[Candidate] = [(r[0], r[1], r[2:], drives.pop((r[0], r[1]), ())) for r in rows]
    # Registers with a drive ticket whose facts the scan did not pick (a ticket's
    # deadline can be nearer than the state's).
    facts = devices_facts(tx, sorted(drives))
    for (site, kkt), tickets in drives.items():
        known = facts.get((site, kkt))
        values = _UNKNOWN if known is None else tuple(known.get(name) for name in FACTS)
        found.append((site, kkt, values, tickets))
    return found


def _drive_tickets(
    tx: Tx, sites: frozenset[str] | None
) -> dict[tuple[str, str], tuple[Drive, ...]]:
    """The live tickets asking for a new drive, by register."""
    drives: dict[tuple[str, str], tuple[Drive, ...]] = {}
    in_sites, params = sites_in("site", sites)
    codes = sorted(NEW_FN_CODES)
    # Two facts of the problem, from its JSON text (both stores give an object's text),
    # not the whole ticket's facts with its snapshot: a third of the plan's time went there.
    for site, kkt, code, block_at, problem in tx.all(
        f"SELECT site, kkt, problem, block_at, {tx.d.fact('problem', 'text', 'facts')}"
        " FROM tickets WHERE state <> 'resolved'"
        f" AND problem IN ({', '.join('?' for _ in codes)}) AND {in_sites}",
        *codes,
        *params,
    ):
        facts = _json_object(problem)
        drive = (
            str(code),
            tx.ts_or_none(block_at),
            as_text(facts.get("fn_serial")),
            as_text(facts.get("fn_model")),
        )
        drives[(site, kkt)] = (*drives.get((site, kkt), ()), drive)
    return drives


def _json_object(text: object) -> dict[str, Any]:
    """An object's JSON text as a dict; anything else (NULL, a scalar, garbage) as {}."""
    if not isinstance(text, str):
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def sites_in(column: str, sites: frozenset[str] | None) -> tuple[str, list[object]]:
    """``column IN (?, ...)`` of ``sites``, or TRUE for every site."""
    if sites is None:
        return "TRUE", []
    return f"{column} IN ({', '.join('?' for _ in sites)})", list(sorted(sites))
