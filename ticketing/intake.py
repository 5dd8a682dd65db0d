"""MQTT messages of the contract -> facts for the ticket store (pure translation).

Live traffic (events, states, agent statuses) arrives on shared subscriptions; on start
the reconciler reads the retained alerts and statuses, which brokers never hand to
shared subscribers. Events, alerts and statuses are validated with the contract models;
a register's state, the bulk of the traffic, only for the facts the store keeps of it
(:class:`StoredState`: the rest of a ``HealthSnapshot`` is not read). Then everything is
bounded here, because any store's credentials may publish anything inside their own
subtree and a value one database cannot hold would block a worker's whole batch forever:

* what names or orders a thing must be right, or the message is rejected: the site
  (at most 64 characters, as the agent's config allows), the register id (128), the
  problem code (64), an FN serial (64; the four make the unique key, which must fit
  PostgreSQL's index row), fact names, the envelope's times (:data:`~.text.EARLIEST`
  to :data:`~.text.LATEST`), numbers that JSON can carry but a database column or a
  kktmon agent cannot (NaN, infinities, integers beyond 64 bits, a session beyond
  BIGINT), more than :data:`FACTS_MAX` facts, a payload over ``max_payload_bytes``;
* what only describes is cleaned per field, as DESIGN.md section 3 has the agent do:
  a register's strings may carry NUL (which PostgreSQL cannot store) and are cut to a
  bound, so the event still counts. Times a register reports inside facts stay facts;
  a deadline read from one outside the sane range is unknown (:func:`~.text.parse_time`).

A rejected message comes back as ``Translated(rejected=reason)``, logged once here: it
can never become valid by retrying, so the service acknowledges and dead-letters it.
Nothing here raises for bad input.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, ValidationError

from kktmon.protocol.contract import AgentStatus, Event, EventKind
from kktmon.protocol.health import FnPhase, Problem, ShiftState
from kktmon.protocol.problems import is_fn_scoped
from kktmon.protocol.topics import ParsedTopic, Topics, check_level
from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing.config import TicketingLimits
from kktmon.ticketing.store import RegisterFacts
from kktmon.ticketing.text import EARLIEST, LATEST, Scalar, in_range

log = logging.getLogger(__name__)

Fact = lc.ProblemRaised | lc.ProblemCleared | lc.AgentSeen

SITE_MAX = 64
KKT_MAX = 128
CODE_MAX = 64
FN_SERIAL_MAX = 64
#: Facts of one problem (a kktmon agent sends at most ten) and the length of their names.
FACTS_MAX = 32
FACT_KEY_MAX = 64
#: Longer texts are cut (ending in "…"): a ticket stays a few KiB whatever arrives.
MESSAGE_MAX = 2000
FACT_TEXT_MAX = 256
#: Rejection reasons are cut to this (they go to the log and the dead-letter table).
REASON_MAX = 500
_INT_MAX = 2**63 - 1
#: What :func:`~kktmon.protocol.topics.check_level` refuses (``\s`` is ``str.isspace``).
_NOT_A_LEVEL = re.compile(r"[/+#\x00\s]")


class RejectedError(ValueError):
    """A message that can never be stored; its text is the reason."""


@dataclass(frozen=True)
class Translated:
    """What one message means: a fact for the store, a state to record, nothing, or a
    rejection (``rejected`` says why; dead-letter it, never retry it)."""

    fact: Fact | None = None
    state: RegisterFacts | None = None
    rejected: str | None = None


class Intake:
    """Turns (topic, payload) into store inputs. Stateless: register facts for ticket
    texts come from the store, which every worker's states reach."""

    def __init__(self, prefix: str, limits: TicketingLimits | None = None) -> None:
        self.topics = Topics(prefix, "_")
        self.limits = limits or TicketingLimits()

    def translate(self, topic: str, payload: bytes, received_at: datetime) -> Translated:
        parsed = self.topics.parse(topic)
        if parsed is None:
            return Translated()
        try:
            if len(payload) > self.limits.max_payload_bytes:
                raise RejectedError(
                    f"payload of {len(payload)} bytes, over max_payload_bytes"
                    f" ({self.limits.max_payload_bytes})"
                )
            return self._translate(parsed, payload, received_at)
        except (ValidationError, ValueError, OverflowError) as exc:
            reason = _reason(exc)
            log.warning("rejecting a message on %s: %s", _cut(topic, 200), reason)
            return Translated(rejected=reason)

    def _translate(self, topic: ParsedTopic, payload: bytes, received_at: datetime) -> Translated:
        if topic.kind not in ("event", "state", "status", "alert"):
            return Translated()
        site = _ident(topic.site, SITE_MAX, "site")
        kkt = _ident(topic.kkt, KKT_MAX, "register id") if topic.kkt else None
        if kkt == lc.AGENT_KKT:
            raise RejectedError(f"register id {kkt!r} is reserved for the agent's own tickets")
        if topic.kind == "event" and kkt:
            return Translated(fact=self._event(site, kkt, Event.model_validate_json(payload)))
        if topic.kind == "state" and kkt:
            state = StoredState.model_validate_json(payload)
            taken_at = _when(state.taken_at, "taken_at")
            return Translated(
                state=RegisterFacts(site=site, kkt=kkt, facts=state_facts(state), taken_at=taken_at)
            )
        if topic.kind == "status":
            status = AgentStatus.model_validate_json(payload)
            _when(status.started_at, "started_at")
            if status.session > _INT_MAX:
                raise RejectedError("session beyond 64 bits")
            return Translated(
                fact=lc.AgentSeen(
                    site=site, state=status.state, session=status.session, at=received_at
                )
            )
        if topic.kind == "alert" and kkt and topic.code:
            code = _ident(topic.code, CODE_MAX, "problem code")
            return Translated(fact=self._alert(site, kkt, code, payload, received_at))
        return Translated()

    def _event(self, site: str, kkt: str, event: Event) -> Fact:
        at = _when(event.at, "at")
        problem = _problem(event.problem)
        if event.kind is EventKind.CLEARED:
            serial = problem.facts.get("fn_serial") if is_fn_scoped(problem.code) else None
            return lc.ProblemCleared(
                site=site,
                kkt=kkt,
                code=problem.code,
                fn_serial=str(serial) if serial else None,
                event_id=str(event.id),
                at=at,
            )
        return lc.ProblemRaised(site=site, kkt=kkt, problem=problem, event_id=str(event.id), at=at)

    def _alert(self, site: str, kkt: str, code: str, payload: bytes, at: datetime) -> Fact:
        if not payload:  # an emptied retained alert: the agent cleared it
            return lc.ProblemCleared(site=site, kkt=kkt, code=code, at=at)
        problem = _problem(Problem.model_validate_json(payload))
        if problem.code != code:
            raise RejectedError(f"alert topic of {code} carries a problem of another code")
        return lc.ProblemRaised(site=site, kkt=kkt, problem=problem, at=problem.since or at)


# --- register states: only what the store keeps ---------------------------------------


class _Lean(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Device(_Lean):
    vendor: str
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    rnm: str | None = None
    inn: str | None = None


class _Phase(_Lean):
    name: FnPhase


class _Fn(_Lean):
    serial: str | None = None
    phase: _Phase | None = None
    valid_until: date | None = None
    days_left: int | None = None
    registrations_left: int | None = None
    memory_used_pct: float | None = None
    documents_left: int | None = None


class _Ofd(_Lean):
    unsent_count: int | None = None
    first_unsent_number: int | None = None
    first_unsent_at: datetime | None = None
    oldest_unsent_age_h: float | None = None


class _Shift(_Lean):
    state: ShiftState | None = None
    opened_at: datetime | None = None


class StoredState(_Lean):
    """The fields of a ``HealthSnapshot`` that :func:`~.text.snapshot_facts` keeps, with
    their contract types; the others are not read (a state is one register's news of the
    minute, and reading all of it cost a worker more than storing it)."""

    taken_at: datetime
    device: _Device
    fn: _Fn = _Fn()
    ofd: _Ofd = _Ofd()
    shift: _Shift = _Shift()
    stale: bool = False
    last_good_at: datetime | None = None
    block_at: datetime | None = None
    block_reason: str | None = None


def state_facts(state: StoredState) -> dict[str, Scalar]:
    """What :func:`~.text.snapshot_facts` gives for the full snapshot, bounded as
    :func:`_facts` bounds it (texts cleaned and cut; an integer beyond 64 bits or a
    number that is not finite is refused)."""
    d, fn, ofd = state.device, state.fn, state.ofd
    texts = {
        "vendor": d.vendor,
        "model": d.model,
        "serial": d.serial,
        "firmware": d.firmware,
        "rnm": d.rnm,
        "inn": d.inn,
        "fn_serial": fn.serial,
        "fn_phase": fn.phase.name.value if fn.phase else None,
        "shift_state": state.shift.state.value if state.shift.state else None,
        "block_reason": state.block_reason,
    }
    facts: dict[str, Scalar] = {
        # Printable means no NUL and no lone surrogate: only a long one needs _text.
        k: v if v.isprintable() and len(v) <= FACT_TEXT_MAX else _text(v, FACT_TEXT_MAX)
        for k, v in texts.items()
        if v is not None
    }
    for key, number in (
        ("fn_days_left", fn.days_left),
        ("fn_registrations_left", fn.registrations_left),
        ("fn_documents_left", fn.documents_left),
        ("unsent_count", ofd.unsent_count),
        ("first_unsent_number", ofd.first_unsent_number),
    ):
        if number is not None:
            if abs(number) > _INT_MAX:
                raise RejectedError(f"state.{key}: an integer beyond 64 bits")
            facts[key] = number
    age = ofd.oldest_unsent_age_h if ofd.unsent_count else None
    for key, real in (("fn_memory_used_pct", fn.memory_used_pct), ("oldest_unsent_age_h", age)):
        if real is not None:
            if not math.isfinite(real):
                raise RejectedError(f"state.{key}: {real} is not finite")
            facts[key] = real
    first_unsent = ofd.first_unsent_at if ofd.unsent_count else None
    for key, when in (
        ("fn_valid_until", fn.valid_until),
        ("first_unsent_at", first_unsent),
        ("shift_opened_at", state.shift.opened_at),
        ("block_at", state.block_at),
        ("taken_at", state.taken_at),
        ("last_good_at", state.last_good_at),
    ):
        if when is not None:
            facts[key] = when.isoformat()
    facts["stale"] = state.stale
    return facts


# --- shared bounds -----------------------------------------------------------------------


def _problem(problem: Problem) -> Problem:
    """The problem with its identifiers checked and its texts bounded."""
    code = _ident(problem.code, CODE_MAX, "problem code")
    facts = _facts(problem.facts, "facts")
    serial = facts.get("fn_serial")
    if is_fn_scoped(code) and serial and len(str(serial)) > FN_SERIAL_MAX:
        raise RejectedError(f"fn_serial of {len(str(serial))} characters, over {FN_SERIAL_MAX}")
    since = _when(problem.since, "since") if problem.since is not None else None
    message = _text(problem.message, MESSAGE_MAX)
    return problem.model_copy(update={"message": message, "facts": facts, "since": since})


def _ident(value: str, limit: int, what: str) -> str:
    """An identifier: one topic level's characters, at most ``limit`` of them."""
    if len(value) > limit:
        raise RejectedError(f"{what} of {len(value)} characters, over {limit}")
    try:
        if not value or _NOT_A_LEVEL.search(value):  # check_level's rule, in C
            check_level(value, what)
        value.encode("utf-8")
    except (ValueError, UnicodeError):
        raise RejectedError(
            f"{what} {_cut(value, 40)!r}: empty or with NUL, blanks or / + #"
        ) from None
    return value


def _facts(values: Mapping[str, Scalar], what: str) -> dict[str, Scalar]:
    if len(values) > FACTS_MAX:
        raise RejectedError(f"{what}: {len(values)} facts, over {FACTS_MAX}")
    out: dict[str, Scalar] = {}
    for key, value in values.items():
        if len(key) > FACT_KEY_MAX or _text(key, FACT_KEY_MAX) != key:
            raise RejectedError(f"{what}: a fact name too long or with NUL ({_cut(key, 40)!r})")
        out[key] = _value(value, f"{what}.{key}")
    return out


def _value(value: Scalar, where: str) -> Scalar:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > _INT_MAX:
            raise RejectedError(f"{where}: an integer beyond 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RejectedError(f"{where}: {value} is not a finite number")
        return value
    return _text(value, FACT_TEXT_MAX)


def _text(value: str, limit: int) -> str:
    """NUL (and unpaired surrogates) as U+FFFD, cut to ``limit`` characters."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)
    return _cut(value, limit)


def _when(at: datetime, what: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise RejectedError(f"{what} has no time zone")
    if not in_range(at):
        raise RejectedError(
            f"{what} {_cut(at.isoformat(), 40)} outside {EARLIEST.date()}..{LATEST.date()}"
        )
    return at


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, ValidationError):
        text = f"{exc.title}: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors()[:3]
        )
    return _text(text, REASON_MAX)
