"""One snapshot -> candidate problems: the per-code checks behind :mod:`kktmon.agent.rules`.

Owners and default severities come from :data:`~kktmon.protocol.problems.PROBLEMS`; graded
severities follow fiscal-health.md section 5 with the thresholds of
:class:`~kktmon.agent.config.RulesConfig`. Everything here is pure: the clock arrives as
``now`` and what earlier polls taught (drive serial, registration, document rate, recent
changes) arrives as a :class:`DeviceHistory`. Hysteresis and ``since`` are the engine's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydantic import BaseModel, Field

from kktmon.agent.config import RulesConfig
from kktmon.protocol.health import (
    OFD_BLOCK_AFTER,
    SHIFT_BLOCK_AFTER,
    BusyReason,
    FnPhase,
    HealthSnapshot,
    LinkState,
    PaperState,
    Problem,
    ShiftState,
    earliest_block,
)
from kktmon.protocol.problems import PROBLEMS, BlockReason, ProblemCode, Severity

Facts = dict[str, str | int | float | bool | None]

C = ProblemCode
#: The codes these checks raise: AGENT_LOST is raised centrally by ticketing.
RAISED = frozenset(ProblemCode) - {C.AGENT_LOST}
#: Codes a failed poll can speak about; every other code needs fresh drive data.
LINK_CODES = frozenset({C.DEVICE_UNREACHABLE, C.DEVICE_BUSY})
#: Informational changes found by comparing with earlier polls.
NOTICE_CODES = frozenset({C.FN_REPLACED, C.REGISTRATION_CHANGED})
RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3, Severity.BLOCKED: 4}
#: Document-rate samples reach back at most this far (domain: average over 7-30 days).
_RATE_HORIZON = timedelta(days=30)
_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)


def is_stale(snapshot: HealthSnapshot) -> bool:
    """True when this poll brought no fresh data about the drive."""
    return snapshot.stale or snapshot.link.state is not LinkState.OK


class DocSample(BaseModel):
    at: datetime
    number: int


class Notice(BaseModel):
    """A one-off change (drive swapped, registration edited), shown for ``notice_hold_h``."""

    at: datetime
    message: str
    facts: Facts = Field(default_factory=dict)


class DeviceHistory(BaseModel):
    """What the rules remember between polls of one register (from good polls only)."""

    fn_serial: str | None = None
    rnm: str | None = None
    inn: str | None = None
    ffd_registered: str | None = None
    #: The drive serial last seen in fiscal phase: a new drive stuck in "ready" is critical.
    last_fiscal_fn_serial: str | None = None
    doc_samples: list[DocSample] = Field(default_factory=list)
    notices: dict[ProblemCode, Notice] = Field(default_factory=dict)
    block_at: datetime | None = None
    block_reason: BlockReason | None = None

    def advanced(self, snap: HealthSnapshot, now: datetime, rules: RulesConfig) -> DeviceHistory:
        """The history after one more poll (unchanged for a stale one)."""
        if is_stale(snap):
            return self
        new = self.model_copy(deep=True)
        hold = timedelta(hours=rules.notice_hold_h)
        new.notices = {k: n for k, n in self.notices.items() if now - n.at < hold}
        changes = self._changes(snap, now)
        new.notices |= changes
        if C.FN_REPLACED in changes:
            new.doc_samples = []  # a new drive counts documents from its own start
        fn, device = snap.fn, snap.device
        seen = {"rnm": device.rnm, "inn": device.inn, "ffd_registered": device.ffd.registered}
        for key, value in {**seen, "fn_serial": fn.serial}.items():
            if value is not None:
                setattr(new, key, value)
        if fn.phase is not None and fn.phase.name is FnPhase.FISCAL and fn.serial:
            new.last_fiscal_fn_serial = fn.serial
        new.doc_samples = _add_sample(new.doc_samples, fn.last_document_number, now, rules)
        return new

    def _changes(self, snap: HealthSnapshot, now: datetime) -> dict[ProblemCode, Notice]:
        """Notices for a drive or registration that differs from the last one seen."""
        notices: dict[ProblemCode, Notice] = {}
        old_fn, new_fn = self.fn_serial, snap.fn.serial
        if old_fn and new_fn and old_fn != new_fn:
            text = f"Fiscal drive replaced: {old_fn} -> {new_fn}"
            facts: Facts = {"old_fn_serial": old_fn, "new_fn_serial": new_fn}
            notices[C.FN_REPLACED] = Notice(at=now, message=text, facts=facts)
        device = snap.device
        pairs = {
            "rnm": (self.rnm, device.rnm),
            "inn": (self.inn, device.inn),
            "ffd_registered": (self.ffd_registered, device.ffd.registered),
        }
        changed = {k: (old, v) for k, (old, v) in pairs.items() if old and v and old != v}
        if changed:
            facts = {}
            for key, (old, value) in changed.items():
                facts[f"old_{key}"], facts[f"new_{key}"] = old, value
            text = ", ".join(f"{k.upper()} {old} -> {v}" for k, (old, v) in changed.items())
            notices[C.REGISTRATION_CHANGED] = Notice(
                at=now, message=f"Registration changed: {text}", facts=facts
            )
        return notices

    def docs_per_day(self, number: int | None, now: datetime, rules: RulesConfig) -> float | None:
        """Fiscal documents per day since the oldest sample, once that spans the window."""
        if number is None or not self.doc_samples:
            return None
        oldest = self.doc_samples[0]
        span = now - oldest.at
        if span < timedelta(hours=rules.doc_rate_min_window_h) or number < oldest.number:
            return None
        return (number - oldest.number) / (span / _DAY)


def _add_sample(
    samples: list[DocSample], number: int | None, now: datetime, rules: RulesConfig
) -> list[DocSample]:
    if number is None:
        return samples
    if samples and number < samples[-1].number:
        samples = []  # the counter went back: another drive or a reset, start again
    # Spaced samples keep the persisted state small (~120 entries) while the window slides.
    if not samples or now - samples[-1].at >= timedelta(hours=rules.doc_rate_min_window_h / 4):
        samples = [*samples, DocSample(at=now, number=number)]
    return [s for s in samples if now - s.at <= _RATE_HORIZON] or samples[-1:]


@dataclass(frozen=True)
class _Poll:
    """Everything one check may look at."""

    s: HealthSnapshot
    r: RulesConfig
    now: datetime
    h: DeviceHistory

    def days_to_full(self) -> float | None:
        rate = self.h.docs_per_day(self.s.fn.last_document_number, self.now, self.r)
        left = self.s.fn.documents_left
        return left / rate if rate and left is not None else None


def _problem(code: ProblemCode, message: str, /, **facts: object) -> Problem:
    """A problem of ``code`` at its default severity."""
    return _graded(code, PROBLEMS[code].severity, message, **facts)


def _graded(code: ProblemCode, severity: Severity, message: str, /, **facts: object) -> Problem:
    """A problem of ``code`` at the severity its check graded; the owner is the table's."""
    clean: Facts = {}
    for key, value in facts.items():
        if isinstance(value, datetime | date):
            clean[key] = value.isoformat()
        elif isinstance(value, float):
            clean[key] = round(value, 2)
        elif value is None or isinstance(value, str | int | bool):
            clean[key] = value
        else:
            clean[key] = str(value)
    return Problem(
        code=code.value,
        severity=severity,
        owner=PROBLEMS[code].owner,
        message=message,
        facts=clean,
    )


def _at_most(value: float | None, steps: list[tuple[float, Severity]]) -> Severity | None:
    """The first severity whose limit ``value`` is at or below (steps: most severe first)."""
    return next((sev for limit, sev in steps if value is not None and value <= limit), None)


def _at_least(value: float | None, steps: list[tuple[float, Severity]]) -> Severity | None:
    return next((sev for limit, sev in steps if value is not None and value >= limit), None)


def worst(levels: list[Severity | None]) -> Severity | None:
    present = [level for level in levels if level is not None]
    return max(present, key=RANK.__getitem__) if present else None


def _fn_phase(p: _Poll) -> Iterator[Problem]:
    phase, serial = (p.s.fn.phase.name if p.s.fn.phase else None), p.s.fn.serial
    raw = p.s.fn.phase.raw if p.s.fn.phase else None
    # The FN serial scopes FN tickets (DESIGN.md section 6), so FN codes always carry it.
    facts = {"phase": phase, "phase_raw": raw, "fn_serial": serial}
    if phase in (FnPhase.POST_FISCAL, FnPhase.ARCHIVE_READ):
        text = f"Fiscal drive {serial} is closed ({phase}): replace and re-register it"
        unsent = p.s.ofd.unsent_count  # the closed drive still has to deliver these
        yield _problem(C.FN_ARCHIVE_CLOSED, text, **facts, unsent_count=unsent)
    elif phase is FnPhase.SETUP:
        text = "Fiscal drive is in factory setup: the register cannot sell"
        yield _graded(C.FN_NOT_FISCAL, Severity.WARNING, text, **facts)
    elif phase is FnPhase.NOT_FISCAL:
        # The source cannot tell setup from ready: grade as setup, the worse of the two.
        text = f"Fiscal drive {serial} is not in fiscal mode: the register cannot sell"
        yield _graded(C.FN_NOT_FISCAL, Severity.WARNING, text, **facts)
    elif phase is FnPhase.READY:
        old = p.h.last_fiscal_fn_serial
        if old and serial and old != serial:
            text = f"New fiscal drive {serial} (was {old}) is not registered: no sales"
            yield _graded(C.FN_NOT_FISCAL, Severity.CRITICAL, text, **facts, old_fn_serial=old)
        else:
            text = f"Fiscal drive {serial} is ready but not fiscalised yet"
            yield _graded(C.FN_NOT_FISCAL, Severity.INFO, text, **facts)


def _fn_expiry(p: _Poll) -> Iterator[Problem]:
    fn, r = p.s.fn, p.r
    if fn.phase is not None and fn.phase.name not in (FnPhase.FISCAL, FnPhase.UNKNOWN):
        return  # not in service (yet or any more): the phase check speaks for the drive
    tz = p.s.taken_at.tzinfo
    today = (p.now.astimezone(tz) if tz is not None else p.now).date()
    counts = [fn.days_left] if fn.days_left is not None else []
    if fn.valid_until is not None:
        counts.append((fn.valid_until - today).days)
    days = min(counts, default=None)  # both come from the drive: believe the more urgent
    severity = _at_most(
        days,
        [
            (0, Severity.BLOCKED),
            (r.fn_expiry_critical_days, Severity.CRITICAL),
            (r.fn_expiry_warning_days, Severity.WARNING),
            (r.fn_expiry_info_days, Severity.INFO),
        ],
    )
    if days is None or severity is None:
        return
    until = f" (valid until {fn.valid_until})" if fn.valid_until else ""
    text = "has expired" if days <= 0 else f"expires in {days} days"
    yield _graded(
        C.FN_EXPIRING,
        severity,
        f"Fiscal drive {text}{until}",
        days_left=days,
        valid_until=fn.valid_until,
        fn_serial=fn.serial,
    )


#: Warning-flag bits and their codes; each is raised at its code's default severity.
_FLAG_CHECKS = (
    (
        "urgent_replacement",
        C.FN_URGENT_REPLACEMENT,
        "Fiscal drive asks for urgent replacement (3 days or less left)",
    ),
    (
        "resource_exhausting",
        C.FN_RESOURCE_EXHAUSTING,
        "Fiscal drive resource is running out (30 days or less left)",
    ),
    ("ofd_timeout", C.OFD_TIMEOUT, "No OFD confirmation for 2 days or more (drive flag)"),
    (
        "critical_error",
        C.FN_CRITICAL_ERROR,
        "Fiscal drive reports a critical error: it probably needs replacing",
    ),
)


#: Warning-flag bits the checks above name (fiscal-health.md 1.3); any other is unknown.
_NAMED_FLAG_BITS = 0x01 | 0x02 | 0x04 | 0x08 | 0x80


def _fn_flags(p: _Poll) -> Iterator[Problem]:
    flags = p.s.fn.warnings
    for attr, code, text in _FLAG_CHECKS:
        if getattr(flags, attr):
            yield _problem(code, text, flags_raw=flags.raw, fn_serial=p.s.fn.serial)
    if unknown := flags.raw & ~_NAMED_FLAG_BITS & 0xFF:
        # A newer drive or firmware may define bits we cannot name: say so, never guess.
        text = f"Fiscal drive sets warning bits we cannot name (0x{unknown:02X})"
        yield _problem(
            C.FN_UNKNOWN_FLAG,
            text,
            flags_raw=flags.raw,
            unknown_bits=unknown,
            fn_serial=p.s.fn.serial,
        )


def _fn_memory(p: _Poll) -> Iterator[Problem]:
    fn, r = p.s.fn, p.r
    pct = fn.memory_used_pct
    if pct is None and fn.documents_left is not None and fn.last_document_number:
        # fiscal-health.md 1.5: used = last number / (last number + documents left)
        pct = 100.0 * fn.last_document_number / (fn.last_document_number + fn.documents_left)
    days = p.days_to_full()
    severity = worst(
        [
            Severity.BLOCKED if fn.documents_left == 0 else None,
            Severity.CRITICAL if fn.warnings.memory_90 else None,
            _at_least(
                pct,
                [
                    (r.memory_critical_pct, Severity.CRITICAL),
                    (r.memory_warning_pct, Severity.WARNING),
                ],
            ),
            _at_most(
                days,
                [
                    (r.memory_days_to_full_critical, Severity.CRITICAL),
                    (r.memory_days_to_full_warning, Severity.WARNING),
                ],
            ),
        ]
    )
    if severity is None:
        return
    parts = [
        f"{pct:.0f}% used" if pct is not None else "",
        f"{fn.documents_left} documents left" if fn.documents_left is not None else "",
        f"full in about {days:.0f} days" if days is not None else "",
        "drive flag: 90% full" if fn.warnings.memory_90 else "",
    ]
    text = "Fiscal drive memory is filling up: " + ", ".join(x for x in parts if x)
    yield _graded(
        C.FN_MEMORY_FULL,
        severity,
        text,
        memory_used_pct=pct,
        documents_left=fn.documents_left,
        days_to_full=days,
        memory_90_flag=fn.warnings.memory_90,
        fn_serial=fn.serial,
    )


def _ofd(p: _Poll) -> Iterator[Problem]:
    q, r = p.s.ofd, p.r
    if q.unsent_count == 0:
        return  # the first-unsent date is garbage when nothing waits (fiscal-health.md 2.2)
    first = q.first_unsent_at
    age_h = (p.now - first) / _HOUR if first is not None else q.oldest_unsent_age_h
    days = age_h / 24 if age_h is not None else None
    severity = _at_least(
        days,
        [
            (OFD_BLOCK_AFTER / _DAY, Severity.BLOCKED),
            (r.ofd_stale_critical_days, Severity.CRITICAL),
            (r.ofd_stale_warning_days, Severity.WARNING),
        ],
    )
    if days is None or severity is None:
        return
    block = first + OFD_BLOCK_AFTER if first is not None else None
    count = q.unsent_count if q.unsent_count is not None else "Some"
    text = f"{count} documents not confirmed by the OFD for {days:.1f} days"
    if block is not None:
        verb = "stopped" if severity is Severity.BLOCKED else "stop"
        text += f"; sales {verb} at {block:%Y-%m-%d %H:%M}"
    yield _graded(
        C.OFD_QUEUE_STALE,
        severity,
        text,
        unsent_count=q.unsent_count,
        first_unsent_number=q.first_unsent_number,
        first_unsent_at=first,
        oldest_unsent_age_h=age_h,
        ofd_block_at=block,
        transport_connected=q.exchange.transport_connected if q.exchange else None,
    )


def _ofd_via_host(p: _Poll) -> Iterator[Problem]:
    if p.s.ofd.via_host:
        text = (
            "Register sends to the OFD through this PC: documents reach the OFD only while "
            "the PC-side sender (ATOL driver / EoU) runs"
        )
        yield _problem(C.OFD_VIA_HOST, text, unsent_count=p.s.ofd.unsent_count)


def _shift(p: _Poll) -> Iterator[Problem]:
    sh = p.s.shift
    if sh.state is None or sh.state is ShiftState.CLOSED:
        return
    hours = (p.now - sh.opened_at) / _HOUR if sh.opened_at is not None else sh.hours_open
    if sh.state is ShiftState.EXPIRED or (hours is not None and hours >= SHIFT_BLOCK_AFTER / _HOUR):
        severity, text = Severity.BLOCKED, f"Shift {sh.number} is over 24 h: close it to sell"
    elif hours is not None and hours >= p.r.shift_warning_h:
        severity = Severity.WARNING
        text = f"Shift {sh.number} open for {hours:.1f} h: close it before 24 h"
    else:
        return
    yield _graded(
        C.SHIFT_TOO_LONG,
        severity,
        text,
        shift_number=sh.number,
        opened_at=sh.opened_at,
        hours_open=hours,
        state=sh.state.value,
    )


def _printer(p: _Poll) -> Iterator[Problem]:
    printer = p.s.printer
    raw = {f"raw_{key}": value for key, value in printer.raw.items()}
    if printer.paper is PaperState.OUT:
        yield _graded(C.PAPER_OUT, Severity.WARNING, "Receipt paper is out", paper="out")
    elif printer.paper is PaperState.NEAR_END:
        yield _graded(C.PAPER_OUT, Severity.INFO, "Receipt paper is running out", paper="near_end")
    if printer.cover_open:
        yield _problem(C.COVER_OPEN, "Printer cover is open", **raw)
    if printer.fault:
        yield _problem(C.PRINTER_FAULT, "Printer reports a fault", **raw)


def _clock(p: _Poll) -> Iterator[Problem]:
    clock, r, last_doc = p.s.clock, p.r, p.s.fn.last_document_at
    behind = clock.device_time is not None and last_doc is not None and clock.device_time < last_doc
    skew = abs(clock.skew_s) if clock.skew_s is not None else None
    severity = worst(
        [
            Severity.CRITICAL if behind else None,
            _at_least(
                skew,
                [
                    (r.clock_skew_critical_s, Severity.CRITICAL),
                    (r.clock_skew_warning_s, Severity.WARNING),
                ],
            ),
        ]
    )
    if severity is None:
        return
    text = (
        "Register clock is wrong"
        if clock.skew_s is None
        else f"Register clock is off by {clock.skew_s:+.0f} s"
    )
    text += " and earlier than the last fiscal document" if behind else ""
    yield _graded(
        C.CLOCK_SKEW,
        severity,
        text,
        skew_s=clock.skew_s,
        device_time=clock.device_time,
        last_document_at=last_doc,
    )


def _link(p: _Poll) -> Iterator[Problem]:
    link, last_good = p.s.link, p.s.last_good_at
    facts = {
        "link_state": link.state.value,
        "last_error": link.last_error,
        "retries": link.retries,
        "last_good_at": last_good,
    }
    silent = last_good is not None and p.now - last_good >= timedelta(
        minutes=p.r.unreachable_critical_min
    )
    if link.state is LinkState.BUSY:
        reason = link.busy_reason or ""
        severity = Severity.INFO
        if reason.startswith(BusyReason.QUEUE_BLOCKED):
            # The server stopped the register's whole queue on an unknown fiscal outcome
            # (link, FN or paper lost mid-receipt): the cashier cannot sell right now.
            severity = Severity.CRITICAL if silent else Severity.WARNING
        facts["busy_reason"] = link.busy_reason
        yield _graded(C.DEVICE_BUSY, severity, busy_text(link.busy_reason), **facts)
    elif link.state in (LinkState.UNREACHABLE, LinkState.GARBLED):
        error = f": {link.last_error}" if link.last_error else ""
        text = f"Register does not answer ({link.state.value}{error})"
        severity = Severity.CRITICAL if silent else Severity.WARNING
        yield _graded(C.DEVICE_UNREACHABLE, severity, text, **facts)


_BUSY_TEXTS = {
    BusyReason.PORT_HELD: "Port busy: another program (usually the POS) holds the register",
    BusyReason.PRINTING: "Register busy printing, or in a mode that refuses reads",
    BusyReason.NO_ANSWER: (
        "Register is alive (answers the link check) but does not answer reads, even re-asked"
    ),
}


def busy_text(reason: str | None) -> str:
    """What a technician reads for a busy register: where to look, by ``busy_reason``."""
    if reason in _BUSY_TEXTS:
        return f"{_BUSY_TEXTS[reason]}; will retry"
    if reason and reason.startswith(BusyReason.QUEUE_BLOCKED):
        why = reason.removeprefix(BusyReason.QUEUE_BLOCKED)
        return f"Driver server stopped the register's queue ({why}): the cashier cannot sell"
    if reason and reason.startswith(BusyReason.SERVER_BUSY):
        why = reason.removeprefix(BusyReason.SERVER_BUSY)
        return f"Register busy at its driver server ({why}); will retry"
    return "Register busy; will retry"


def _notices(p: _Poll) -> Iterator[Problem]:
    hold = timedelta(hours=p.r.notice_hold_h)
    for code, notice in sorted(p.h.notices.items()):
        if p.now - notice.at < hold:
            yield _problem(code, notice.message, **notice.facts, at=notice.at)


Check = Callable[[_Poll], Iterator[Problem]]
_DATA_CHECKS: tuple[Check, ...] = (
    _fn_phase,
    _fn_expiry,
    _fn_flags,
    _fn_memory,
    _ofd,
    _ofd_via_host,
    _shift,
    _printer,
    _clock,
    _notices,
)


def evaluate(
    snapshot: HealthSnapshot,
    rules: RulesConfig,
    *,
    now: datetime,
    history: DeviceHistory | None = None,
) -> list[Problem]:
    """Candidate problems of one snapshot; a stale one yields only link problems.

    ``history`` should already include this snapshot (:meth:`DeviceHistory.advanced`).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    poll = _Poll(snapshot, rules, now, history or DeviceHistory())
    checks: tuple[Check, ...] = (_link,) if is_stale(snapshot) else _DATA_CHECKS
    return [problem for check in checks for problem in check(poll)]


def block_deadline(
    snapshot: HealthSnapshot,
    rules: RulesConfig,
    *,
    now: datetime,
    history: DeviceHistory | None = None,
) -> tuple[datetime, BlockReason] | None:
    """The earliest moment the register stops selling, and why.

    Beyond the snapshot's own deadlines (:func:`~kktmon.protocol.health.earliest_block`):
    a drive out of fiscal mode or full stops it now; memory projected from the document
    rate stops it when ``documents_left`` runs out.
    """
    candidates = [own] if (own := earliest_block(snapshot)) is not None else []
    taken, phase = snapshot.taken_at, snapshot.fn.phase.name if snapshot.fn.phase else None
    if phase in (FnPhase.POST_FISCAL, FnPhase.ARCHIVE_READ):
        candidates.append((taken, BlockReason.FN_ARCHIVE_CLOSED))
    elif phase in (FnPhase.SETUP, FnPhase.READY, FnPhase.NOT_FISCAL):
        candidates.append((taken, BlockReason.FN_NOT_FISCAL))
    if snapshot.shift.state is ShiftState.EXPIRED:
        candidates.append((taken, BlockReason.SHIFT_24_HOURS))
    if snapshot.fn.documents_left == 0:
        candidates.append((taken, BlockReason.FN_MEMORY_FULL))
    elif (
        days := _Poll(snapshot, rules, now, history or DeviceHistory()).days_to_full()
    ) is not None:
        candidates.append((now + timedelta(days=days), BlockReason.FN_MEMORY_FULL))
    return min(candidates) if candidates else None
