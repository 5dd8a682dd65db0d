"""The problem table: the codes and block reasons on the wire, and who may spell them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kktmon.agent.checks import RAISED
from kktmon.protocol.problems import (
    DEADLINES,
    FN_SCOPED,
    NEW_FN_CODES,
    OWNERS,
    PROBLEMS,
    BlockReason,
    Owner,
    ProblemCode,
    Severity,
    deadline_of,
    is_fn_scoped,
    problem_code,
)

ROOT = Path(__file__).resolve().parents[2]
C = ProblemCode

#: DESIGN.md section 3, as it travels: a renamed value breaks every consumer.
DESIGN_CODES = {
    "FN_EXPIRING", "FN_URGENT_REPLACEMENT", "FN_RESOURCE_EXHAUSTING", "FN_MEMORY_FULL",
    "FN_CRITICAL_ERROR", "FN_NOT_FISCAL", "FN_ARCHIVE_CLOSED", "OFD_QUEUE_STALE", "OFD_TIMEOUT",
    "SHIFT_TOO_LONG", "PAPER_OUT", "COVER_OPEN", "PRINTER_FAULT", "CLOCK_SKEW",
    "DEVICE_UNREACHABLE", "DEVICE_BUSY", "FN_REPLACED", "REGISTRATION_CHANGED", "OFD_VIA_HOST",
    "FN_UNKNOWN_FLAG", "AGENT_LOST",
}  # fmt: skip
BLOCK_REASONS = {
    "fn_expiry", "ofd_30_days", "shift_24_hours", "fn_memory_full", "fn_archive_closed",
    "fn_not_fiscal",
}  # fmt: skip


def test_the_codes_are_designs_section_3() -> None:
    assert {code.value for code in ProblemCode} == DESIGN_CODES
    assert all(code.name == code.value for code in ProblemCode)


def test_block_reason_values_stay_as_published() -> None:
    assert {reason.value for reason in BlockReason} == BLOCK_REASONS


def test_every_code_has_its_metadata() -> None:
    assert list(PROBLEMS) == list(ProblemCode)
    for code, spec in PROBLEMS.items():
        assert isinstance(spec.severity, Severity), code
        assert isinstance(spec.owner, Owner), code
        assert spec.deadline is None or isinstance(spec.deadline, BlockReason), code
        assert OWNERS[code] is spec.owner


def test_fn_scoped_codes_are_the_fn_codes() -> None:
    assert {code.value for code in FN_SCOPED} == {c for c in DESIGN_CODES if c.startswith("FN_")}
    assert is_fn_scoped("FN_EXPIRING") and is_fn_scoped(C.FN_MEMORY_FULL)
    assert not is_fn_scoped("PAPER_OUT") and not is_fn_scoped(C.AGENT_LOST)
    assert not is_fn_scoped("SOMETHING_NEW")  # a newer agent's code: keyed without a drive
    # ... unless it names the drive's family: it must follow the drive it concerns.
    assert is_fn_scoped("FN_SOMETHING_NEW")


def test_deadlines_are_block_reasons_and_every_reason_is_someones() -> None:
    assert {code.value: reason.value for code, reason in DEADLINES.items()} == {
        "FN_EXPIRING": "fn_expiry",
        "FN_URGENT_REPLACEMENT": "fn_expiry",
        "FN_RESOURCE_EXHAUSTING": "fn_expiry",
        "FN_MEMORY_FULL": "fn_memory_full",
        "FN_ARCHIVE_CLOSED": "fn_archive_closed",
        "FN_NOT_FISCAL": "fn_not_fiscal",
        "OFD_QUEUE_STALE": "ofd_30_days",
        "OFD_TIMEOUT": "ofd_30_days",
        "SHIFT_TOO_LONG": "shift_24_hours",
    }
    assert set(DEADLINES.values()) == set(BlockReason)  # no register deadline goes unclaimed
    assert deadline_of("OFD_TIMEOUT") is BlockReason.OFD_30_DAYS
    assert deadline_of("PAPER_OUT") is None and deadline_of("SOMETHING_NEW") is None


def test_a_new_drive_is_brought_for_drive_failures_only() -> None:
    assert {
        C.FN_EXPIRING,
        C.FN_URGENT_REPLACEMENT,
        C.FN_RESOURCE_EXHAUSTING,
        C.FN_MEMORY_FULL,
        C.FN_CRITICAL_ERROR,
        C.FN_ARCHIVE_CLOSED,
    } == NEW_FN_CODES
    assert NEW_FN_CODES <= FN_SCOPED


def test_owners_and_the_codes_nobody_raises_yet() -> None:
    assert {c for c, owner in OWNERS.items() if owner is Owner.STORE} == {
        C.SHIFT_TOO_LONG,
        C.PAPER_OUT,
        C.COVER_OPEN,
    }
    for code in (C.OFD_VIA_HOST, C.FN_UNKNOWN_FLAG):
        assert PROBLEMS[code].severity is Severity.INFO
    assert PROBLEMS[C.OFD_VIA_HOST].owner is Owner.SERVICE


def test_problem_code_tolerates_unknown_codes() -> None:
    assert problem_code("CLOCK_SKEW") is C.CLOCK_SKEW
    assert problem_code("clock_skew") is None
    assert problem_code("SOMETHING_NEW") is None


def _checks_tree() -> ast.Module:
    return ast.parse((ROOT / "agent" / "checks.py").read_text(encoding="utf-8"))


def test_the_agents_checks_raise_members_only() -> None:
    named = {
        node.attr
        for node in ast.walk(_checks_tree())
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in {"C", "ProblemCode"}
    }
    assert named <= set(ProblemCode.__members__)
    # What checks.py names is what it says it raises (AGENT_LOST is ticketing's).
    assert {ProblemCode[name] for name in named} - {C.AGENT_LOST} == RAISED


#: Where codes and block reasons are used: each must go through the enums.
_SPELLERS = sorted(
    path
    for pattern in ("agent/*.py", "ticketing/*.py", "protocol/*.py", "benchmarks/ticketing.py")
    for path in ROOT.glob(pattern)
    if path.name != "problems.py"
)


@pytest.mark.parametrize("path", _SPELLERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_nobody_else_spells_a_code_or_a_block_reason(path: Path) -> None:
    words = DESIGN_CODES | BLOCK_REASONS
    tree = ast.parse(path.read_text(encoding="utf-8"))
    spelled = [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in words
    ]
    assert spelled == []
