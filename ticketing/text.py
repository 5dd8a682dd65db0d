"""What a help-desk engineer reads: ticket titles, descriptions and comments (DESIGN.md 6).

The description carries what the engineer needs before leaving for the store
(fiscal-health.md 5, hygiene rule 4): register model, serial and RNM, the fiscal drive's
serial and validity, the OFD backlog, ``block_at`` (the SLA deadline), when the register
was last seen, and for drive problems which replacement drive to bring (1.4).

Facts arrive as two flat dictionaries: the problem's own ``facts`` and
:func:`snapshot_facts` of the register's newest state, both JSON scalars.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from kktmon.protocol.health import HealthSnapshot
from kktmon.protocol.problems import NEW_FN_CODES, ProblemCode, problem_code

Scalar = str | int | float | bool | None

C = ProblemCode
#: Stable titles per code: the message (with its changing numbers) goes to the description.
LABELS: dict[ProblemCode, str] = {
    C.FN_EXPIRING: "Fiscal drive expiring",
    C.FN_URGENT_REPLACEMENT: "Fiscal drive needs urgent replacement",
    C.FN_RESOURCE_EXHAUSTING: "Fiscal drive resource running out",
    C.FN_MEMORY_FULL: "Fiscal drive memory filling up",
    C.FN_CRITICAL_ERROR: "Fiscal drive critical error",
    C.FN_NOT_FISCAL: "Fiscal drive not in fiscal mode",
    C.FN_ARCHIVE_CLOSED: "Fiscal drive closed",
    C.OFD_QUEUE_STALE: "Documents not reaching the OFD",
    C.OFD_TIMEOUT: "OFD confirmations overdue",
    C.SHIFT_TOO_LONG: "Shift open too long",
    C.PAPER_OUT: "Receipt paper out",
    C.COVER_OPEN: "Printer cover open",
    C.PRINTER_FAULT: "Printer fault",
    C.CLOCK_SKEW: "Register clock wrong",
    C.DEVICE_UNREACHABLE: "Register not answering",
    C.DEVICE_BUSY: "Register busy or its driver server blocked",
    C.FN_REPLACED: "Fiscal drive replaced",
    C.REGISTRATION_CHANGED: "Registration changed",
    C.OFD_VIA_HOST: "Register sends to the OFD through the PC",
    C.FN_UNKNOWN_FLAG: "Fiscal drive reports an unknown warning",
    C.AGENT_LOST: "Monitoring agent lost",
}
#: Serial prefixes that name the drive type (fiscal-health.md 1.4, KassArray's table).
_FN_PREFIXES = {
    "99604403": "ФН-1.1М, 15 months",
    "99614403": "ФН-1.1М, 36 months",
}
_NEUTRAL_HINT = (
    "36-month drive for special tax regimes (УСН, ПСН, ЕСХН) and services, 15-month for the "
    "general regime (ОСН); excise goods or autonomous mode shorten either. Check the "
    "registration before choosing"
)
TITLE_MAX = 250
#: The instants the centre believes, as ``EARLIEST <= t < LATEST``. Registers count years
#: in two digits (20YY), so every date a register reports lies inside; an agent's clock
#: outside it is broken, and the store orders events by those times. Within it, every
#: deadline computed from a date (+24 h, +30 days) stays far from ``datetime``'s year 9999.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class TicketFacts(BaseModel):
    """What a ticket remembers of the problem and the register, stored as JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: str = ""
    owner: str | None = None
    problem: dict[str, Scalar] = Field(default_factory=dict)
    snapshot: dict[str, Scalar] = Field(default_factory=dict)


def snapshot_facts(snapshot: HealthSnapshot) -> dict[str, Scalar]:
    """The register facts a ticket shows, flattened from its newest snapshot."""
    d, fn, ofd = snapshot.device, snapshot.fn, snapshot.ofd
    values: dict[str, object] = {
        "vendor": d.vendor,
        "model": d.model,
        "serial": d.serial,
        "firmware": d.firmware,
        "rnm": d.rnm,
        "inn": d.inn,
        "fn_serial": fn.serial,
        "fn_phase": fn.phase.name.value if fn.phase else None,
        "fn_valid_until": fn.valid_until,
        "fn_days_left": fn.days_left,
        "fn_registrations_left": fn.registrations_left,
        "fn_memory_used_pct": fn.memory_used_pct,
        "fn_documents_left": fn.documents_left,
        "unsent_count": ofd.unsent_count,
        "first_unsent_number": ofd.first_unsent_number,
        "first_unsent_at": ofd.first_unsent_at if ofd.unsent_count else None,
        "oldest_unsent_age_h": ofd.oldest_unsent_age_h if ofd.unsent_count else None,
        "shift_state": snapshot.shift.state.value if snapshot.shift.state else None,
        "shift_opened_at": snapshot.shift.opened_at,
        "block_at": snapshot.block_at,
        "block_reason": snapshot.block_reason,
        "taken_at": snapshot.taken_at,
        "last_good_at": snapshot.last_good_at,
        "stale": snapshot.stale,
    }
    return {k: _scalar(v) for k, v in values.items() if v is not None}


def _scalar(value: object) -> Scalar:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def in_range(at: datetime) -> bool:
    """Whether an aware instant lies in ``[EARLIEST, LATEST)``."""
    return EARLIEST <= at < LATEST


def parse_time(value: Scalar) -> datetime | None:
    """An ISO timestamp fact as an aware datetime (naive ones are taken as UTC); None when
    it is not one, or lies outside ``[EARLIEST, LATEST)`` (a register's broken clock)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return parsed if in_range(parsed) else None


def label(code: str) -> str:
    """The code's stable title; a code this version does not know is its own label."""
    known = problem_code(code)
    return LABELS[known] if known is not None else code


def title(site: str, kkt: str, code: str, facts: TicketFacts) -> str:
    """``[site] Label: model serial``; stable while the problem lasts."""
    model = facts.snapshot.get("model")
    where = f"{model} {kkt}" if model else kkt
    return f"[{site}] {label(code)}: {where}"[:TITLE_MAX]


def description(
    *,
    site: str,
    kkt: str,
    code: str,
    severity: str,
    facts: TicketFacts,
    block_at: datetime | None,
    first_seen_at: datetime,
    last_seen_at: datetime,
) -> str:
    """The ticket body: the message first, then one labelled line per known fact."""
    snap, prob = facts.snapshot, facts.problem
    owner = f", fix by {facts.owner}" if facts.owner else ""
    lines = [facts.message or label(code), "", f"Problem: {code} ({severity}{owner})"]
    reason = f" ({snap['block_reason']})" if snap.get("block_reason") else ""
    if block_at is not None:
        lines.append(f"Sales stop (block_at, SLA deadline): {_when(block_at)}{reason}")
    lines.append(f"Site: {site}")
    if snap or code != C.AGENT_LOST:  # a site-wide problem has no register to describe
        lines.append(_register_line(kkt, snap))
    if (fn := _fn_line(snap, prob)) is not None:
        lines.append(fn)
    if (ofd := _ofd_line(snap, prob)) is not None:
        lines.append(ofd)
    seen = parse_time(snap.get("taken_at")) or last_seen_at
    lines.append(f"First seen: {_when(first_seen_at)}; last seen: {_when(seen)}")
    if code in NEW_FN_CODES:  # the engineer brings a new drive
        lines.append(f"Bring: {replacement_hint(snap, prob)}")
    extra = {k: v for k, v in prob.items() if k not in _SHOWN and v is not None}
    if extra:
        lines.append("Facts: " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items())))
    return "\n".join(lines)


_SHOWN = frozenset(
    {"fn_serial", "valid_until", "unsent_count", "first_unsent_at", "ofd_block_at", "fn_model"}
)


def _register_line(kkt: str, snap: dict[str, Scalar]) -> str:
    parts = [f"Register: {snap.get('model') or kkt}"]
    parts += [f"{label} {snap[key]}" for key, label in _REGISTER_KEYS if snap.get(key)]
    return ", ".join(parts)


_REGISTER_KEYS = (("serial", "serial"), ("rnm", "RNM"), ("inn", "INN"), ("firmware", "firmware"))


def _fn_line(snap: dict[str, Scalar], prob: dict[str, Scalar]) -> str | None:
    serial = prob.get("fn_serial") or snap.get("fn_serial")
    valid = prob.get("valid_until") or snap.get("fn_valid_until")
    if not serial and not valid:
        return None
    text = f"Fiscal drive: {serial or 'serial unknown'}"
    if valid:
        text += f", valid until {valid}"
    days = prob.get("days_left", snap.get("fn_days_left"))
    if days is not None:
        text += f" ({days} days left)"
    if snap.get("fn_phase"):
        text += f", phase {snap['fn_phase']}"
    return text


def _ofd_line(snap: dict[str, Scalar], prob: dict[str, Scalar]) -> str | None:
    count = prob.get("unsent_count", snap.get("unsent_count"))
    if count is None:
        return None
    text = f"OFD queue: {count} unsent"
    first = parse_time(prob.get("first_unsent_at") or snap.get("first_unsent_at"))
    if count and first is not None:
        text += f", first unsent {_when(first)}"
    return text


def replacement_hint(snap: dict[str, Scalar], prob: dict[str, Scalar]) -> str:
    """Which drive to bring: a model named in the facts, one read from the serial, or a rule."""
    named = prob.get("fn_model") or snap.get("fn_model")
    if named:
        return f"{named} (as reported by the register)"
    serial = str(prob.get("fn_serial") or snap.get("fn_serial") or "")
    for prefix, kind in _FN_PREFIXES.items():
        if serial.startswith(prefix):
            return f"{kind}, the type now installed (from its serial; check the registration)"
    return _NEUTRAL_HINT


def _when(at: datetime) -> str:
    return at.isoformat(sep=" ", timespec="minutes")


def escalate_comment(old: str, new: str, message: str) -> str:
    return f"Severity raised from {old} to {new}: {message}"


def reopen_comment(at: datetime, severity: str, message: str) -> str:
    return f"The problem came back at {_when(at)} within the grace period ({severity}): {message}"


def resolve_comment(cleared_at: datetime, grace_s: float) -> str:
    return f"Cleared at {_when(cleared_at)}; no recurrence for {_duration(grace_s)}."


def cleared_comment(cleared_at: datetime, grace_s: float) -> str:
    """For ``on_clear = "comment"``: the help desk closes the ticket itself."""
    return (
        f"Cleared at {_when(cleared_at)}; no recurrence for {_duration(grace_s)}. "
        "Close the ticket once the work is done."
    )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
