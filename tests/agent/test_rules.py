"""Rules: every problem code and its boundaries, hysteresis, stale links, block_at.

Hand-built snapshots test single checks; the JSON timelines in ``snapshots/`` replay a
register's history through the engine (like NUT's dummy-ups ``.seq`` files).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kktmon.agent.config import RulesConfig
from kktmon.agent.rules import (
    OWNERS,
    RAISED,
    DeviceHistory,
    Evaluation,
    ProblemCode,
    RuleEngine,
    TransitionKind,
    block_deadline,
    evaluate,
)
from kktmon.protocol.health import HealthSnapshot, Problem, Severity
from kktmon.protocol.problems import PROBLEMS, is_fn_scoped

MSK = timezone(timedelta(hours=3))
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=MSK)
RULES = RulesConfig()
SNAPSHOTS = Path(__file__).parent / "snapshots"

HEALTHY: dict[str, Any] = {
    "schema": 1,
    "taken_at": NOW.isoformat(),
    "device": {
        "vendor": "shtrih",
        "serial": "0012345678",
        "rnm": "0000000001012345",
        "inn": "7701234567",
        "ffd": {"registered": "1.2"},
    },
    "fn": {
        "serial": "9961440300112233",
        "phase": {"name": "fiscal", "raw": 3},
        "valid_until": "2027-06-01",
        "days_left": 396,
        "warnings": {"raw": 0},
        "last_document_number": 1200,
        "last_document_at": "2026-05-01T09:58:00+03:00",
    },
    "ofd": {"unsent_count": 0},
    "shift": {"state": "closed", "number": 41},
    "printer": {"paper": "ok", "cover_open": False, "fault": False},
    "clock": {"device_time": "2026-05-01T10:00:03+03:00", "skew_s": 3.0},
    "link": {"state": "ok"},
}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge; ``None`` in the override removes the key (the model default applies)."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def snap(override: dict[str, Any] | None = None) -> HealthSnapshot:
    return HealthSnapshot.model_validate(merge(HEALTHY, override or {}))


def problems(override: dict[str, Any], rules: RulesConfig = RULES) -> dict[str, Problem]:
    found = evaluate(snap(override), rules, now=NOW)
    codes = [p.code for p in found]
    assert len(codes) == len(set(codes)), f"a code appears twice: {codes}"
    return {p.code: p for p in found}


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat()


def in_days(days: int) -> str:
    return (NOW.date() + timedelta(days=days)).isoformat()


def test_a_healthy_register_has_no_problems() -> None:
    assert problems({}) == {}


FN = "fn"
CASES: list[tuple[str, dict[str, Any], str, Severity | None]] = [
    # FN expiry from the drive's day count: INFO 45 / WARNING 30 / CRITICAL 7 / BLOCKED 0
    ("days 46", {FN: {"days_left": 46, "valid_until": None}}, "FN_EXPIRING", None),
    ("days 45", {FN: {"days_left": 45, "valid_until": None}}, "FN_EXPIRING", Severity.INFO),
    ("days 31", {FN: {"days_left": 31, "valid_until": None}}, "FN_EXPIRING", Severity.INFO),
    ("days 30", {FN: {"days_left": 30, "valid_until": None}}, "FN_EXPIRING", Severity.WARNING),
    ("days 8", {FN: {"days_left": 8, "valid_until": None}}, "FN_EXPIRING", Severity.WARNING),
    ("days 7", {FN: {"days_left": 7, "valid_until": None}}, "FN_EXPIRING", Severity.CRITICAL),
    ("days 1", {FN: {"days_left": 1, "valid_until": None}}, "FN_EXPIRING", Severity.CRITICAL),
    ("days 0", {FN: {"days_left": 0, "valid_until": None}}, "FN_EXPIRING", Severity.BLOCKED),
    ("days -3", {FN: {"days_left": -3, "valid_until": None}}, "FN_EXPIRING", Severity.BLOCKED),
    # ... or from the end date against `now`, the more urgent of both winning
    ("until +5", {FN: {"days_left": None, "valid_until": in_days(5)}}, "FN_EXPIRING",
     Severity.CRITICAL),
    ("until +40 vs days 3", {FN: {"days_left": 3, "valid_until": in_days(40)}}, "FN_EXPIRING",
     Severity.CRITICAL),
    ("until today", {FN: {"days_left": None, "valid_until": in_days(0)}}, "FN_EXPIRING",
     Severity.BLOCKED),
    # warning-flag bits
    ("bit 0", {FN: {"warnings": {"urgent_replacement": True, "raw": 1}}},
     "FN_URGENT_REPLACEMENT", Severity.CRITICAL),
    ("bit 1", {FN: {"warnings": {"resource_exhausting": True, "raw": 2}}},
     "FN_RESOURCE_EXHAUSTING", Severity.WARNING),
    ("bit 2", {FN: {"warnings": {"memory_90": True, "raw": 4}}}, "FN_MEMORY_FULL",
     Severity.CRITICAL),
    ("bit 3", {FN: {"warnings": {"ofd_timeout": True, "raw": 8}}}, "OFD_TIMEOUT",
     Severity.WARNING),
    ("bit 7", {FN: {"warnings": {"critical_error": True, "raw": 128}}}, "FN_CRITICAL_ERROR",
     Severity.CRITICAL),
    # memory: 80 % / 90 %, derived from counters when the model gives no percentage
    ("mem 79.9", {FN: {"memory_used_pct": 79.9}}, "FN_MEMORY_FULL", None),
    ("mem 80", {FN: {"memory_used_pct": 80.0}}, "FN_MEMORY_FULL", Severity.WARNING),
    ("mem 90", {FN: {"memory_used_pct": 90.0}}, "FN_MEMORY_FULL", Severity.CRITICAL),
    ("mem derived 85", {FN: {"last_document_number": 8500, "documents_left": 1500}},
     "FN_MEMORY_FULL", Severity.WARNING),
    ("mem no docs left", {FN: {"documents_left": 0}}, "FN_MEMORY_FULL", Severity.BLOCKED),
    # phases
    ("setup", {FN: {"phase": {"name": "setup", "raw": 0}}}, "FN_NOT_FISCAL", Severity.WARNING),
    ("ready", {FN: {"phase": {"name": "ready", "raw": 1}}}, "FN_NOT_FISCAL", Severity.INFO),
    # a source that can only say "not fiscal" (kkmserver's FN_IsFiscal false)
    ("not fiscal", {FN: {"phase": {"name": "not_fiscal"}}}, "FN_NOT_FISCAL", Severity.WARNING),
    # warning bits nobody has named yet (0x10, 0x20, 0x40): said, never guessed
    ("bit 4", {FN: {"warnings": {"raw": 0x10}}}, "FN_UNKNOWN_FLAG", Severity.INFO),
    ("named bits only", {FN: {"warnings": {"memory_90": True, "raw": 0x04}}},
     "FN_UNKNOWN_FLAG", None),
    # the register reaches the OFD through this PC (ATOL quirk Q3)
    ("ofd via host", {"ofd": {"via_host": True}}, "OFD_VIA_HOST", Severity.INFO),
    ("ofd direct", {"ofd": {"via_host": False}}, "OFD_VIA_HOST", None),
    ("post-fiscal", {FN: {"phase": {"name": "post_fiscal", "raw": 7}}}, "FN_ARCHIVE_CLOSED",
     Severity.BLOCKED),
    ("archive", {FN: {"phase": {"name": "archive_read", "raw": 15}}}, "FN_ARCHIVE_CLOSED",
     Severity.BLOCKED),
    # OFD: oldest unsent 2 days / 20 days / 30 days (legal block)
    ("ofd 47h", {"ofd": {"unsent_count": 3, "first_unsent_at": ago(hours=47)}},
     "OFD_QUEUE_STALE", None),
    ("ofd 48h", {"ofd": {"unsent_count": 3, "first_unsent_at": ago(hours=48)}},
     "OFD_QUEUE_STALE", Severity.WARNING),
    ("ofd 20d", {"ofd": {"unsent_count": 3, "first_unsent_at": ago(days=20)}},
     "OFD_QUEUE_STALE", Severity.CRITICAL),
    ("ofd 30d", {"ofd": {"unsent_count": 3, "first_unsent_at": ago(days=30)}},
     "OFD_QUEUE_STALE", Severity.BLOCKED),
    ("ofd age only", {"ofd": {"unsent_count": 3, "oldest_unsent_age_h": 50.0}},
     "OFD_QUEUE_STALE", Severity.WARNING),
    ("ofd empty, garbage date", {"ofd": {"unsent_count": 0, "first_unsent_at": ago(days=99)}},
     "OFD_QUEUE_STALE", None),
    # shift: 23 h warning, 24 h or "expired" blocked; a closed shift never counts
    ("shift 22.9h", {"shift": {"state": "open", "opened_at": ago(hours=22.9)}},
     "SHIFT_TOO_LONG", None),
    ("shift 23h", {"shift": {"state": "open", "opened_at": ago(hours=23)}}, "SHIFT_TOO_LONG",
     Severity.WARNING),
    ("shift 24h", {"shift": {"state": "open", "opened_at": ago(hours=24)}}, "SHIFT_TOO_LONG",
     Severity.BLOCKED),
    ("shift expired", {"shift": {"state": "expired"}}, "SHIFT_TOO_LONG", Severity.BLOCKED),
    ("shift hours only", {"shift": {"state": "open", "hours_open": 23.5}}, "SHIFT_TOO_LONG",
     Severity.WARNING),
    ("shift closed", {"shift": {"state": "closed", "opened_at": ago(hours=30)}},
     "SHIFT_TOO_LONG", None),
    # printer
    ("paper out", {"printer": {"paper": "out"}}, "PAPER_OUT", Severity.WARNING),
    ("paper near end", {"printer": {"paper": "near_end"}}, "PAPER_OUT", Severity.INFO),
    ("cover", {"printer": {"cover_open": True}}, "COVER_OPEN", Severity.WARNING),
    ("fault", {"printer": {"fault": True}}, "PRINTER_FAULT", Severity.WARNING),
    # clock: 120 s / 300 s either way; earlier than the last document is critical
    ("skew 119", {"clock": {"skew_s": 119.0}}, "CLOCK_SKEW", None),
    ("skew 120", {"clock": {"skew_s": 120.0}}, "CLOCK_SKEW", Severity.WARNING),
    ("skew -300", {"clock": {"skew_s": -300.0}}, "CLOCK_SKEW", Severity.CRITICAL),
    ("clock behind last doc", {"clock": {"device_time": "2026-05-01T09:00:00+03:00"}},
     "CLOCK_SKEW", Severity.CRITICAL),
    # link: busy is information, a failure is a warning, an hour of silence critical
    ("busy", {"link": {"state": "busy"}}, "DEVICE_BUSY", Severity.INFO),
    ("unreachable", {"link": {"state": "unreachable"}, "last_good_at": ago(minutes=5)},
     "DEVICE_UNREACHABLE", Severity.WARNING),
    ("garbled", {"link": {"state": "garbled"}}, "DEVICE_UNREACHABLE", Severity.WARNING),
    ("silent 60 min", {"link": {"state": "unreachable"}, "last_good_at": ago(minutes=60)},
     "DEVICE_UNREACHABLE", Severity.CRITICAL),
]  # fmt: skip


@pytest.mark.parametrize(("override", "code", "severity"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_each_code_and_its_severity_boundaries(
    override: dict[str, Any], code: str, severity: Severity | None
) -> None:
    found = problems(override)
    if severity is None:
        assert code not in found
        return
    problem = found[code]
    assert problem.severity is severity
    assert problem.owner is OWNERS[ProblemCode(code)]
    assert problem.since is None  # the engine sets it
    assert problem.message and "\n" not in problem.message
    if is_fn_scoped(code):
        assert problem.facts["fn_serial"] == "9961440300112233"  # FN tickets are per drive


def busy(reason: str | None, last_error: str = "SERVER_BUSY:x", minutes: int = 0) -> Problem:
    link = {"state": "busy", "last_error": last_error, "busy_reason": reason}
    return problems({"link": link, "last_good_at": ago(minutes=minutes)})["DEVICE_BUSY"]


def test_a_busy_driver_server_gives_its_reason() -> None:
    server = busy("queue_blocked:connectionError")
    port = busy("port_held", last_error="PORT_BUSY")
    assert "connectionError" in server.message and "cannot sell" in server.message
    assert server.facts["busy_reason"] == "queue_blocked:connectionError"
    assert port.message.startswith("Port busy")
    assert port.severity is Severity.INFO


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("port_held", "another program"),
        ("printing", "printing"),
        ("no_answer", "alive"),  # never sends a technician to look for the POS
        ("server_busy:Устройство занято", "Устройство занято"),
        (None, "Register busy"),  # an older agent's snapshot: no reason, no guessing
    ],
)
def test_the_busy_message_follows_busy_reason(reason: str | None, words: str) -> None:
    problem = busy(reason, last_error="PORT_BUSY")
    assert words in problem.message
    if reason != "port_held":
        assert "another program" not in problem.message


@pytest.mark.parametrize(
    ("reason", "last_error", "minutes", "severity"),
    [
        ("server_busy:job_waiting", "SERVER_BUSY:job_waiting", 120, Severity.INFO),
        ("queue_blocked:fnError", "SERVER_BUSY:queue_blocked:fnError", 5, Severity.WARNING),
        ("queue_blocked:connectionError", "PORT_BUSY", 60, Severity.CRITICAL),
        # The severity follows busy_reason, never a parse of last_error.
        (None, "SERVER_BUSY:queue_blocked:connectionError", 60, Severity.INFO),
    ],
)
def test_a_blocked_server_queue_is_not_mere_busyness(
    reason: str | None, last_error: str, minutes: int, severity: Severity
) -> None:
    assert busy(reason, last_error, minutes).severity is severity


def test_every_code_is_covered_by_the_table() -> None:
    covered = {case[2] for case in CASES if case[3] is not None}
    notices = {"FN_REPLACED", "REGISTRATION_CHANGED"}  # need history: see the engine tests
    assert covered | notices == {code.value for code in RAISED}


def test_a_codes_default_severity_is_the_lowest_its_check_gives() -> None:
    order = list(Severity)  # least severe first
    found: dict[str, list[Severity]] = {}
    for _, _, code, severity in CASES:
        if severity is not None:
            found.setdefault(code, []).append(severity)
    lowest = {code: min(levels, key=order.index) for code, levels in found.items()}
    assert lowest == {code: PROBLEMS[ProblemCode(code)].severity for code in found}


def test_owners_follow_the_domain_table() -> None:
    store = {code for code, owner in OWNERS.items() if owner.value == "store"}
    assert store == {ProblemCode.SHIFT_TOO_LONG, ProblemCode.PAPER_OUT, ProblemCode.COVER_OPEN}
    assert {owner.value for owner in OWNERS.values()} == {"store", "service"}


def test_a_retired_drive_reports_closed_not_expiring() -> None:
    found = problems({FN: {"phase": {"name": "post_fiscal", "raw": 7}, "days_left": -10}})
    assert set(found) == {"FN_ARCHIVE_CLOSED"}


def test_thresholds_come_from_the_config() -> None:
    strict = RulesConfig(ofd_stale_warning_days=0.5, shift_warning_h=20)
    override = {
        "ofd": {"unsent_count": 1, "first_unsent_at": ago(hours=13)},
        "shift": {"state": "open", "opened_at": ago(hours=21)},
    }
    assert set(problems(override, strict)) == {"OFD_QUEUE_STALE", "SHIFT_TOO_LONG"}
    assert problems(override) == {}


def test_ofd_facts_carry_the_numbers() -> None:
    first = datetime(2026, 4, 28, 12, 0, tzinfo=MSK)
    override = {
        "ofd": {
            "unsent_count": 14,
            "first_unsent_number": 1187,
            "first_unsent_at": first.isoformat(),
            "exchange": {"transport_connected": False, "raw": 2},
        }
    }
    problem = problems(override)["OFD_QUEUE_STALE"]
    assert problem.facts["unsent_count"] == 14
    assert problem.facts["first_unsent_number"] == 1187
    assert problem.facts["first_unsent_at"] == first.isoformat()
    assert problem.facts["oldest_unsent_age_h"] == 70.0
    assert problem.facts["ofd_block_at"] == (first + timedelta(days=30)).isoformat()
    assert problem.facts["transport_connected"] is False
    assert "14 documents" in problem.message and "2026-05-28 12:00" in problem.message


def test_fn_expiry_facts() -> None:
    problem = problems({FN: {"days_left": None, "valid_until": in_days(20)}})["FN_EXPIRING"]
    assert problem.facts == {
        "days_left": 20,
        "valid_until": in_days(20),
        "fn_serial": "9961440300112233",
    }
    assert problem.message == f"Fiscal drive expires in 20 days (valid until {in_days(20)})"


def test_a_stale_snapshot_yields_only_link_problems() -> None:
    override = {"stale": True, "link": {"state": "unreachable"}, FN: {"days_left": 1}}
    assert set(problems(override)) == {"DEVICE_UNREACHABLE"}


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(snap(), RULES, now=datetime(2026, 5, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        RuleEngine(RULES).observe("till", snap(), datetime(2026, 5, 1))


def test_a_new_drive_left_unregistered_is_critical() -> None:
    history = DeviceHistory().advanced(snap(), NOW, RULES)
    swapped = snap({FN: {"serial": "9961440300998877", "phase": {"name": "ready", "raw": 1}}})
    history = history.advanced(swapped, NOW, RULES)
    found = {p.code: p for p in evaluate(swapped, RULES, now=NOW, history=history)}
    assert found["FN_NOT_FISCAL"].severity is Severity.CRITICAL
    assert found["FN_NOT_FISCAL"].facts["old_fn_serial"] == "9961440300112233"
    assert found["FN_REPLACED"].severity is Severity.INFO
    assert found["FN_REPLACED"].facts["new_fn_serial"] == "9961440300998877"


def test_registration_change_lists_old_and_new_values() -> None:
    history = DeviceHistory().advanced(snap(), NOW, RULES)
    moved = snap({"device": {"rnm": "0000000001099999", "inn": "7709999999"}})
    history = history.advanced(moved, NOW, RULES)
    [notice] = [p for p in evaluate(moved, RULES, now=NOW, history=history)]
    assert notice.code == "REGISTRATION_CHANGED"
    assert notice.facts["old_rnm"] == "0000000001012345"
    assert notice.facts["new_inn"] == "7709999999"
    assert "RNM 0000000001012345 -> 0000000001099999" in notice.message


def test_a_stale_poll_teaches_the_history_nothing() -> None:
    history = DeviceHistory().advanced(snap(), NOW, RULES)
    no_identity = {"rnm": None, "inn": None, "ffd": None}
    blank = snap({"stale": True, "link": {"state": "unreachable"}, FN: None, "device": no_identity})
    assert history.advanced(blank, NOW, RULES) is history


# --- engine: hysteresis -----------------------------------------------------------------


def run(engine: RuleEngine, override: dict[str, Any], at: datetime) -> list[tuple[str, str]]:
    evaluation = engine.observe("till-1", snap(override | {"taken_at": at.isoformat()}), at)
    return [(t.kind.value, t.problem.code) for t in evaluation.transitions]


PAPER_OUT = {"printer": {"paper": "out"}}
MINUTE = timedelta(minutes=1)


def test_raised_after_n_polls_and_cleared_after_m() -> None:
    engine = RuleEngine(RULES)
    assert run(engine, PAPER_OUT, NOW) == []
    assert engine.active("till-1") == []
    assert run(engine, PAPER_OUT, NOW + MINUTE) == [("raised", "PAPER_OUT")]
    [active] = engine.active("till-1")
    assert active.since == NOW  # the first observation, not the raise
    assert run(engine, {}, NOW + 2 * MINUTE) == []
    assert [p.code for p in engine.active("till-1")] == ["PAPER_OUT"]  # still held
    assert run(engine, {}, NOW + 3 * MINUTE) == [("cleared", "PAPER_OUT")]
    assert engine.active("till-1") == []


def test_a_flapping_signal_is_never_raised() -> None:
    engine = RuleEngine(RULES)
    for i in range(10):
        assert run(engine, PAPER_OUT if i % 2 == 0 else {}, NOW + i * MINUTE) == []


def test_a_one_poll_recovery_does_not_clear() -> None:
    engine = RuleEngine(RULES)
    run(engine, PAPER_OUT, NOW)
    run(engine, PAPER_OUT, NOW + MINUTE)
    assert run(engine, {}, NOW + 2 * MINUTE) == []
    assert run(engine, PAPER_OUT, NOW + 3 * MINUTE) == []
    assert run(engine, {}, NOW + 4 * MINUTE) == []
    [active] = engine.active("till-1")
    assert active.since == NOW  # one uninterrupted problem


def test_counts_follow_the_config() -> None:
    engine = RuleEngine(RulesConfig(raise_after=1, clear_after=3))
    assert run(engine, PAPER_OUT, NOW) == [("raised", "PAPER_OUT")]
    assert run(engine, {}, NOW + MINUTE) == []
    assert run(engine, {}, NOW + 2 * MINUTE) == []
    assert run(engine, {}, NOW + 3 * MINUTE) == [("cleared", "PAPER_OUT")]


def test_severity_change_needs_to_hold_too() -> None:
    engine = RuleEngine(RULES)
    near, out = {"printer": {"paper": "near_end"}}, PAPER_OUT
    run(engine, near, NOW)
    run(engine, near, NOW + MINUTE)
    assert run(engine, out, NOW + 2 * MINUTE) == []  # a blip
    assert run(engine, near, NOW + 3 * MINUTE) == []
    assert run(engine, out, NOW + 4 * MINUTE) == []
    evaluation = engine.observe("till-1", snap(out), NOW + 5 * MINUTE)
    [change] = evaluation.transitions
    assert change.kind is TransitionKind.CHANGED
    assert change.previous_severity is Severity.INFO
    assert change.problem.severity is Severity.WARNING
    assert change.problem.since == NOW
    assert change.at == NOW + 5 * MINUTE


def test_devices_are_counted_separately() -> None:
    engine = RuleEngine(RULES)
    engine.observe("till-1", snap(PAPER_OUT), NOW)
    evaluation = engine.observe("till-2", snap(PAPER_OUT), NOW + MINUTE)
    assert evaluation.transitions == []
    assert engine.devices == ["till-1", "till-2"]
    engine.forget("till-1")
    assert engine.devices == ["till-2"]


def test_evaluation_completes_the_snapshot() -> None:
    engine = RuleEngine(RULES)
    override = {"ofd": {"unsent_count": 2, "first_unsent_at": ago(days=3)}}
    engine.observe("till-1", snap(override), NOW)
    evaluation = engine.observe("till-1", snap(override), NOW + MINUTE)
    out = evaluation.snapshot
    assert [p.code for p in out.problems] == ["OFD_QUEUE_STALE"]
    assert out.problems == evaluation.problems
    assert out.block_reason == "ofd_30_days"
    assert out.block_at == NOW - timedelta(days=3) + timedelta(days=30)
    assert json.loads(out.to_json())["problems"][0]["since"] == NOW.isoformat()


def test_active_problems_are_sorted_worst_first() -> None:
    engine = RuleEngine(RulesConfig(raise_after=1))
    override = {"printer": {"paper": "near_end", "cover_open": True}, FN: {"days_left": 2}}
    engine.observe("till-1", snap(override), NOW)
    codes = [p.code for p in engine.active("till-1")]
    assert codes == ["FN_EXPIRING", "COVER_OPEN", "PAPER_OUT"]


def test_stale_polls_keep_data_problems_and_block_at() -> None:
    engine = RuleEngine(RULES)
    bad = {"ofd": {"unsent_count": 9, "first_unsent_at": ago(days=5)}}
    run(engine, bad, NOW)
    assert run(engine, bad, NOW + MINUTE) == [("raised", "OFD_QUEUE_STALE")]
    failed = {"stale": True, "last_good_at": NOW.isoformat(), "link": {"state": "unreachable"},
              FN: None, "ofd": None, "shift": None, "printer": None, "clock": None}  # fmt: skip
    for i in range(2, 10):
        evaluation = engine.observe("till-1", snap(failed), NOW + i * MINUTE)
        assert "OFD_QUEUE_STALE" in [p.code for p in evaluation.problems]
        assert evaluation.snapshot.block_reason == "ofd_30_days"
        assert all(t.problem.code == "DEVICE_UNREACHABLE" for t in evaluation.transitions)
    codes = [p.code for p in engine.active("till-1")]
    assert codes == ["DEVICE_UNREACHABLE", "OFD_QUEUE_STALE"]


def test_state_round_trips_through_json_mid_streak() -> None:
    engine = RuleEngine(RULES)
    run(engine, PAPER_OUT, NOW)
    restored = RuleEngine.from_json(engine.to_json(), RULES)
    assert run(restored, PAPER_OUT, NOW + MINUTE) == [("raised", "PAPER_OUT")]
    again = RuleEngine.from_json(restored.to_json().encode(), RULES)
    assert again.active("till-1") == restored.active("till-1")
    assert run(again, {}, NOW + 2 * MINUTE) == []
    assert run(again, {}, NOW + 3 * MINUTE) == [("cleared", "PAPER_OUT")]


def test_history_survives_the_round_trip() -> None:
    engine = RuleEngine(RULES)
    run(engine, {}, NOW)
    restored = RuleEngine.from_json(engine.to_json(), RULES)
    swapped = {FN: {"serial": "9961440300998877"}}
    assert run(restored, swapped, NOW + MINUTE) == [("raised", "FN_REPLACED")]


@pytest.mark.parametrize("text", ["", "{", '{"format": "other/9"}', "[]"])
def test_a_corrupt_state_file_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        RuleEngine.from_json(text, RULES)


# --- block_at ---------------------------------------------------------------------------


def deadline(override: dict[str, Any]) -> tuple[datetime, str] | None:
    return block_deadline(snap(override), RULES, now=NOW)


def test_block_at_is_the_earliest_deadline() -> None:
    assert deadline({}) == (datetime(2027, 6, 1, tzinfo=MSK), "fn_expiry")
    first = NOW - timedelta(days=2)
    ofd = {"ofd": {"unsent_count": 1, "first_unsent_at": first.isoformat()}}
    assert deadline(ofd) == (first + timedelta(days=30), "ofd_30_days")
    opened = NOW - timedelta(hours=3)
    shift = ofd | {"shift": {"state": "open", "opened_at": opened.isoformat()}}
    assert deadline(shift) == (opened + timedelta(hours=24), "shift_24_hours")


def test_block_at_is_now_when_sales_already_stopped() -> None:
    closed = {FN: {"phase": {"name": "archive_read", "raw": 15}}}
    assert deadline(closed) == (NOW, "fn_archive_closed")
    assert deadline({FN: {"documents_left": 0}}) == (NOW, "fn_memory_full")
    assert deadline({"shift": {"state": "expired"}}) == (NOW, "shift_24_hours")


def test_block_at_projects_memory_full_from_the_document_rate() -> None:
    rules = RulesConfig(doc_rate_min_window_h=24)
    start = snap({FN: {"last_document_number": 10_000, "documents_left": 9_000}})
    history = DeviceHistory().advanced(start, NOW, rules)
    later = NOW + timedelta(days=2)
    busy = snap({FN: {"last_document_number": 11_000, "documents_left": 8_000}})
    history = history.advanced(busy, later, rules)
    assert history.docs_per_day(11_000, later, rules) == 500
    assert block_deadline(busy, rules, now=later, history=history) == (
        later + timedelta(days=16),
        "fn_memory_full",
    )
    found = {p.code: p for p in evaluate(busy, rules, now=later, history=history)}
    assert found["FN_MEMORY_FULL"].severity is Severity.WARNING  # 16 days to full
    assert found["FN_MEMORY_FULL"].facts["days_to_full"] == 16.0


def test_no_projection_before_the_rate_window_is_covered() -> None:
    history = DeviceHistory().advanced(snap({FN: {"documents_left": 100}}), NOW, RULES)
    soon = NOW + timedelta(hours=23)
    busy = snap({FN: {"last_document_number": 1290, "documents_left": 10}})
    history = history.advanced(busy, soon, RULES)
    assert history.docs_per_day(1290, soon, RULES) is None
    assert block_deadline(busy, RULES, now=soon, history=history) == (
        datetime(2027, 6, 1, tzinfo=MSK),
        "fn_expiry",
    )


def test_a_new_drive_restarts_the_document_rate() -> None:
    history = DeviceHistory().advanced(snap(), NOW, RULES)
    new_drive = snap({FN: {"serial": "9961440300998877", "last_document_number": 5}})
    history = history.advanced(new_drive, NOW + timedelta(days=2), RULES)
    assert [s.number for s in history.doc_samples] == [5]


# --- timelines --------------------------------------------------------------------------


def timeline_files() -> list[Path]:
    return sorted(SNAPSHOTS.glob("*.json"))


def transitions_by_kind(evaluation: Evaluation) -> dict[str, list[Any]]:
    """``{"raised": [code], "cleared": [code], "changed": [[code, severity]]}``, sorted."""
    got: dict[str, list[Any]] = {kind.value: [] for kind in TransitionKind}
    for t in evaluation.transitions:
        if t.kind is TransitionKind.CHANGED:
            got[t.kind.value].append([t.problem.code, t.problem.severity.value])
        else:
            got[t.kind.value].append(t.problem.code)
    return {kind: sorted(items) for kind, items in got.items()}


def check_step(evaluation: Evaluation, expect: dict[str, Any], where: str) -> None:
    wanted = {kind.value: sorted(expect.get(kind.value, [])) for kind in TransitionKind}
    assert transitions_by_kind(evaluation) == wanted, where
    if "active" in expect:
        active = {p.code: p.severity.value for p in evaluation.problems}
        assert active == expect["active"], where
    if "block_reason" in expect:
        assert evaluation.snapshot.block_reason == expect["block_reason"], where
    if "block_at" in expect:
        assert evaluation.snapshot.block_at == datetime.fromisoformat(expect["block_at"]), where


@pytest.mark.parametrize("path", timeline_files(), ids=lambda p: p.stem)
def test_timeline(path: Path) -> None:
    spec = json.loads(path.read_text(encoding="utf-8"))
    engine = RuleEngine(RulesConfig(**spec.get("rules", {})))
    current = spec["base"]
    for number, step in enumerate(spec["steps"], 1):
        at = datetime.fromisoformat(step["at"])
        current = merge(current, step.get("set", {}))
        data = merge(current, step.get("once", {})) | {"taken_at": step["at"]}
        evaluation = engine.observe(path.stem, HealthSnapshot.model_validate(data), at)
        check_step(evaluation, step.get("expect", {}), f"{path.name} step {number} ({step['at']})")


def test_there_are_timelines() -> None:
    assert len(timeline_files()) >= 5
