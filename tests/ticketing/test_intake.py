"""What the intake lets through to a store: bounded, storable, or rejected with a reason.

Every rejection comes back as ``Translated(rejected=...)`` for the service to dead-letter;
nothing here may raise. The store-backed tests run on SQLite and PostgreSQL: whatever
the intake passes on, both stores must write and read back (a message one store cannot
write blocks a worker's batch forever).
"""

from __future__ import annotations

import json
import random
import string
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ticket_facts import T0

from kktmon.protocol.health import (
    DeviceInfo,
    FnHealth,
    FnPhaseInfo,
    HealthSnapshot,
    OfdQueue,
    ShiftInfo,
    ShiftState,
)
from kktmon.ticketing import intake as intake_module
from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing import text
from kktmon.ticketing.config import TicketingLimits
from kktmon.ticketing.intake import Intake, Translated
from kktmon.ticketing.store import TicketStore

ROOT = "kktmon/v1"
KKT = "shtrih-0012345678"
EVENT = f"{ROOT}/store-1/kkt/{KKT}/event"
STATE = f"{ROOT}/store-1/kkt/{KKT}/state"
STATUS = f"{ROOT}/store-1/agent/status"


def _random(alphabet: str, n: int) -> str:
    # Random text does not compress: PostgreSQL cannot squeeze it under its index row limit.
    return "".join(random.Random(n).choices(alphabet, k=n))


def problem_json(
    code: str = "PAPER_OUT",
    message: str = "paper",
    facts: dict[str, Any] | None = None,
    **more: Any,
) -> dict[str, Any]:
    facts = (facts or {}) | more
    return {
        "code": code,
        "severity": "warning",
        "owner": "store",
        "message": message,
        "facts": facts,
    }


def event_payload(
    kind: str = "raised", at: str | None = None, problem: dict[str, Any] | None = None
) -> bytes:
    body = {
        "id": str(uuid.uuid4()),
        "seq": 1,
        "kind": kind,
        "problem": problem or problem_json(),
        "at": at or T0.isoformat(),
    }
    return json.dumps(body).encode()  # json, not pydantic: NaN goes out as NaN


def state_payload(taken_at: str | None = None, **device: Any) -> bytes:
    body = {
        "schema": 1,
        "taken_at": taken_at or T0.isoformat(),
        "device": {"vendor": "shtrih", "model": "ШТРИХ-М-01Ф", "serial": "0012345678"} | device,
    }
    return json.dumps(body).encode()


def status_payload(session: int = 1, started_at: str | None = None) -> bytes:
    body = {
        "state": "online",
        "session": session,
        "version": "1",
        "started_at": started_at or T0.isoformat(),
    }
    return json.dumps(body).encode()


def translate(topic: str, payload: bytes, limits: TicketingLimits | None = None) -> Translated:
    return Intake(ROOT, limits=limits).translate(topic, payload, T0)


#: Messages no store can hold as they are (or that would kill a worker): each a reason.
POISON: dict[str, tuple[str, bytes]] = {
    "nan in problem facts": (EVENT, event_payload(problem=problem_json(x=float("nan")))),
    "infinity in problem facts": (EVENT, event_payload(problem=problem_json(x=float("inf")))),
    "an int beyond BIGINT in facts": (EVENT, event_payload(problem=problem_json(x=10**30))),
    "60,000-character site": (
        f"{ROOT}/{_random(string.ascii_lowercase, 60_000)}/kkt/{KKT}/event",
        event_payload(),
    ),
    "9,000-character problem code": (
        EVENT,
        event_payload(problem=problem_json(code=_random(string.ascii_uppercase, 9_000))),
    ),
    "200-character register id": (
        f"{ROOT}/store-1/kkt/{_random(string.ascii_lowercase, 200)}/event",
        event_payload(),
    ),
    "NUL in a problem code": (EVENT, event_payload(problem=problem_json(code="PAPER\u0000OUT"))),
    "NUL in a fact name": (EVENT, event_payload(problem=problem_json(facts={"a\u0000b": 1}))),
    "500-character FN serial": (
        EVENT,
        event_payload(problem=problem_json(code="FN_EXPIRING", fn_serial="9" * 500)),
    ),
    "too many facts": (
        EVENT,
        event_payload(problem=problem_json(facts={f"fact_{n}": n for n in range(200)})),
    ),
    "event at year 1": (EVENT, event_payload(at="0001-01-01T00:00:00+00:00")),
    "event at year 9999": (EVENT, event_payload(at="9999-12-31T23:00:00+00:00")),
    "event before 2000": (EVENT, event_payload(at="1999-12-31T23:59:59+00:00")),
    "state taken at year 1": (STATE, state_payload(taken_at="0001-01-01T00:00:00+00:00")),
    "state with NaN memory": (STATE, state_payload()[:-2] + b', "fn": {"memory_used_pct": NaN}}'),
    "session beyond BIGINT": (STATUS, status_payload(session=2**70)),
    "status started in year 1": (STATUS, status_payload(started_at="0001-01-01T00:00:00+00:00")),
    "events on the reserved register 'agent'": (
        f"{ROOT}/store-1/kkt/{lc.AGENT_KKT}/event",
        event_payload(kind="cleared", problem=problem_json(code="AGENT_LOST")),
    ),
    "an alert whose code is not its topic's": (
        f"{ROOT}/store-1/kkt/{KKT}/alert/COVER_OPEN",
        json.dumps(problem_json(code="PAPER_OUT")).encode(),
    ),
    "not JSON": (EVENT, b"{not json"),
}


@pytest.mark.parametrize("name", sorted(POISON))
def test_poison_is_rejected_with_a_reason(name: str) -> None:
    topic, payload = POISON[name]
    result = translate(topic, payload)
    assert result.rejected, name
    assert result.fact is None and result.state is None
    assert len(result.rejected) <= intake_module.REASON_MAX
    assert "\x00" not in result.rejected


def test_a_payload_over_the_limit_is_rejected_unread() -> None:
    limits = TicketingLimits(max_payload_bytes=4096)
    big = event_payload(problem=problem_json(message="x" * 5000))
    result = translate(EVENT, big, limits)
    assert result.rejected is not None and "4096" in result.rejected
    assert translate(EVENT, big).rejected is None  # the default: the broker's 64 KiB
    assert TicketingLimits().max_payload_bytes == 64 * 1024
    huge = event_payload(problem=problem_json(message="x" * 70_000))
    assert translate(EVENT, huge).rejected is not None


def test_topics_not_ours_are_ignored_not_rejected() -> None:
    assert translate("other/store-1/kkt/x/event", b"") == Translated()
    assert translate(f"{ROOT}/store-1/agent/health", b"{}") == Translated()


def test_free_text_is_cleaned_and_cut_not_rejected() -> None:
    # A register's strings can carry NUL (a field read unstripped): the event still counts.
    message = "paper\u0000out " + "y" * 10_000
    payload = event_payload(problem=problem_json(message=message, note="a\u0000b" + "z" * 1000))
    result = translate(EVENT, payload)
    assert isinstance(result.fact, lc.ProblemRaised), result
    problem = result.fact.problem
    assert "\x00" not in problem.message and problem.message.startswith("paper\ufffdout")
    assert len(problem.message) == intake_module.MESSAGE_MAX
    note = problem.facts["note"]
    assert isinstance(note, str) and "\x00" not in note
    assert len(note) == intake_module.FACT_TEXT_MAX


def test_state_facts_are_bounded() -> None:
    result = translate(STATE, state_payload(model="M\u0000" + "m" * 5000))
    assert result.state is not None
    model = result.state.facts["model"]
    assert isinstance(model, str) and "\x00" not in model
    assert len(model) == intake_module.FACT_TEXT_MAX


def test_dates_range_from_2000_to_2100() -> None:
    assert translate(EVENT, event_payload(at="2000-01-01T00:00:00+00:00")).fact is not None
    assert translate(EVENT, event_payload(at="2099-12-31T23:59:59+00:00")).fact is not None
    assert translate(EVENT, event_payload(at="2100-01-01T00:00:00+00:00")).rejected
    assert translate(EVENT, event_payload(at="2100-01-01T02:00:00+03:00")).fact  # 23:00 UTC
    assert translate(EVENT, event_payload(at="2099-12-31T23:00:00-03:00")).rejected
    # A time zone far east of UTC on the first day: the instant is in 1999.
    assert translate(EVENT, event_payload(at="2000-01-01T05:00:00+09:00")).rejected


def test_register_times_in_facts_are_left_as_facts() -> None:
    # A register reports its own (maybe broken) clock; the event itself stands, and a
    # time fact outside the sane range gives the ticket no deadline instead of a crash.
    far = problem_json(code="SHIFT_TOO_LONG", opened_at="9999-12-31T23:00:00+00:00")
    result = translate(EVENT, event_payload(problem=far))
    assert isinstance(result.fact, lc.ProblemRaised)
    assert result.fact.problem.facts["opened_at"] == "9999-12-31T23:00:00+00:00"


# --- through a store ----------------------------------------------------------------


def _store_everything(store: TicketStore, results: list[Translated]) -> None:
    facts = [r.fact for r in results if r.fact is not None]
    states = [r.state for r in results if r.state is not None]
    store.record_states(states)
    store.apply_batch(facts, T0)
    store.tick(T0 + timedelta(hours=1))
    store.list_tickets(include_resolved_since=T0 - timedelta(days=1))
    for ticket in store.tickets():
        store.device_facts(ticket.site, ticket.kkt)


def test_poison_and_good_messages_in_one_batch_all_store(store: TicketStore) -> None:
    good = [translate(EVENT, event_payload(problem=problem_json(code="COVER_OPEN")))]
    results = [translate(topic, payload) for topic, payload in POISON.values()] + good
    _store_everything(store, results)
    assert [t.problem for t in store.tickets()] == ["COVER_OPEN"]


def test_nul_in_text_reaches_both_stores_as_a_replacement(store: TicketStore) -> None:
    nul = problem_json(message="a\u0000b", note="c\u0000d")
    results = [
        translate(EVENT, event_payload(problem=nul)),
        translate(STATE, state_payload(firmware="F\u0000W")),
    ]
    _store_everything(store, results)
    (ticket,) = store.tickets()
    assert ticket.facts.message == "a\ufffdb" and ticket.facts.problem["note"] == "c\ufffdd"
    assert (store.device_facts("store-1", KKT) or {})["firmware"] == "F\ufffdW"


def test_a_shift_opened_in_year_9999_is_a_ticket_without_deadline(store: TicketStore) -> None:
    far = problem_json(code="SHIFT_TOO_LONG", opened_at="9999-12-31T23:00:00+00:00")
    _store_everything(store, [translate(EVENT, event_payload(problem=far))])
    (ticket,) = store.tickets()
    assert ticket.problem == "SHIFT_TOO_LONG" and ticket.block_at is None


_TEXT = st.text(st.characters(codec="utf-8"), max_size=80)
_SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | _TEXT
_PROBLEMS = st.fixed_dictionaries(
    {
        "code": st.sampled_from(["PAPER_OUT", "FN_EXPIRING", "SHIFT_TOO_LONG"]) | _TEXT,
        "severity": st.just("warning"),
        "owner": st.just("store"),
        "message": _TEXT,
        "facts": st.dictionaries(_TEXT, _SCALAR, max_size=6),
    }
)
_WHEN = st.datetimes(timezones=st.just(UTC), min_value=datetime(1, 1, 2)).map(
    lambda at: at.isoformat()
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(problem=_PROBLEMS, at=_WHEN, site=_TEXT, kkt=_TEXT)
def test_whatever_the_intake_passes_a_store_writes_and_reads(
    store: TicketStore, problem: dict[str, Any], at: str, site: str, kkt: str
) -> None:
    topic = f"{ROOT}/{site}/kkt/{kkt}/event"
    body = {"id": str(uuid.uuid4()), "seq": 1, "kind": "raised", "problem": problem, "at": at}
    result = translate(topic, json.dumps(body).encode())  # never raises
    assert result.fact is None or not result.rejected
    _store_everything(store, [result])


# --- register states: read for the facts the store keeps -----------------------------


def _full_path(payload: bytes) -> dict[str, Any] | str:
    """What the store kept of a state before issue 12 read it for those facts alone: the
    whole ``HealthSnapshot`` validated, flattened, bounded; or "rejected"."""
    try:
        snapshot = HealthSnapshot.model_validate_json(payload)
        intake_module._when(snapshot.taken_at, "taken_at")
        return intake_module._facts(text.snapshot_facts(snapshot), "state")
    except (ValueError, OverflowError):
        return "rejected"


def _lean_path(payload: bytes) -> dict[str, Any] | str:
    result = translate(STATE, payload)
    return "rejected" if result.state is None else result.state.facts


FULL_STATE = HealthSnapshot(
    taken_at=T0,
    device=DeviceInfo(vendor="shtrih", model="ШТРИХ-М-01Ф", serial="0012345678", rnm="01"),
    fn=FnHealth(
        serial="9961440300112233",
        phase=FnPhaseInfo.from_byte(3),
        valid_until=date(2026, 5, 13),
        days_left=9,
        registrations_left=11,
        memory_used_pct=0.17,
        documents_left=245231,
    ),
    ofd=OfdQueue(unsent_count=12, first_unsent_number=7, first_unsent_at=T0 - timedelta(days=2)),
    shift=ShiftInfo(state=ShiftState.OPEN, number=42, opened_at=T0 - timedelta(hours=3)),
    last_good_at=T0,
).with_block_deadline()


@pytest.mark.parametrize(
    "snapshot",
    [
        FULL_STATE,
        FULL_STATE.model_copy(update={"ofd": OfdQueue(unsent_count=0, first_unsent_at=T0)}),
        FULL_STATE.model_copy(update={"stale": True, "fn": FnHealth(), "block_at": None}),
        HealthSnapshot(taken_at=T0, device=DeviceInfo(vendor="atol", model="")),
    ],
    ids=["full", "nothing unsent", "stale and no drive", "bare"],
)
def test_a_state_keeps_what_the_full_snapshot_gave(snapshot: HealthSnapshot) -> None:
    payload = snapshot.to_json().encode()
    assert _lean_path(payload) == _full_path(payload) != "rejected"


_KEPT = st.fixed_dictionaries(
    {},
    optional={
        "serial": _TEXT | st.none(),
        "days_left": st.integers() | st.sampled_from([2**63 - 1, 2**63, -(2**63) - 1, None]),
        "memory_used_pct": st.floats() | st.sampled_from([float("nan"), float("inf"), None]),
        "valid_until": st.sampled_from(["2026-05-13", "13.05.2026", "0001-01-01"]),
        "phase": st.sampled_from([{"name": "fiscal", "raw": 3}, {"name": "bogus"}, None]),
    },
)


@settings(max_examples=200, deadline=None)
@given(device=_TEXT, fn=_KEPT, unsent=st.integers() | st.none(), taken_at=_WHEN)
def test_a_state_is_kept_or_rejected_as_the_full_snapshot_was(
    device: str, fn: dict[str, Any], unsent: int | None, taken_at: str
) -> None:
    # Over the fields the store keeps, the lean read agrees with the full one: the same
    # facts, or both rejected (a bad type, an integer beyond 64 bits, NaN, a time out of
    # range). json, not pydantic, writes the payload: NaN and huge integers go out as is.
    body = {
        "schema": 1,
        "taken_at": taken_at,
        "device": {"vendor": "shtrih", "model": device},
        "fn": fn,
        "ofd": {"unsent_count": unsent, "first_unsent_at": "2026-05-01T10:30:00+03:00"},
    }
    payload = json.dumps(body).encode()
    assert _lean_path(payload) == _full_path(payload)


def test_a_state_is_not_read_beyond_what_the_store_keeps() -> None:
    # A state is a register's news of the minute: what the store does not keep of it
    # (the printer, the link, problems, unknown fields) is not validated, by design.
    body = json.loads(FULL_STATE.to_json())
    body["printer"] = {"paper": "shredded"}
    body["something_new"] = [1, 2, 3]
    result = translate(STATE, json.dumps(body).encode())
    assert result.state is not None and result.state.facts["model"] == "ШТРИХ-М-01Ф"
    body["fn"]["days_left"] = "many"  # a kept field of the wrong type is refused
    assert translate(STATE, json.dumps(body).encode()).rejected
