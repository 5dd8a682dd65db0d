"""Scenario files: defaults, relative times, merging, clear errors, faults, the archive."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sim_wire import NOW

from kktmon.protocol.errors import ConfigError
from kktmon.simulators.scenario import (
    DOC_RECEIPT,
    DOC_REGISTRATION,
    DOC_SHIFT_CLOSE,
    DOC_SHIFT_OPEN,
    DeviceState,
    Faults,
    builtin_scenarios,
    default_state,
    load_builtin,
    load_scenario,
    parse_relative,
)


def _scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_state_is_a_healthy_fiscal_register_with_an_open_shift() -> None:
    state = default_state(now=NOW)
    assert state.fn.phase == 3
    assert state.shift.state == "open"
    assert state.shift.opened_at == NOW - timedelta(hours=2)
    assert state.fn.valid_until == (NOW + timedelta(days=300)).date()
    assert state.ofd.unsent_count == 0
    assert state.printer.paper == "ok"
    assert state.faults == Faults()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-3d", timedelta(days=-3)),
        ("+20d", timedelta(days=20)),
        ("-5h", timedelta(hours=-5)),
        ("-30m", timedelta(minutes=-30)),
        ("+1.5h", timedelta(hours=1.5)),
        ("now", timedelta(0)),
        ("2026-01-01", None),
        ("-3x", None),
    ],
)
def test_relative_time_syntax(text: str, expected: timedelta | None) -> None:
    assert parse_relative(text) == expected


def test_relative_times_resolve_once_against_the_given_moment(tmp_path: Path) -> None:
    path = _scenario(
        tmp_path,
        """
        [fn]
        valid_until = "+20d"
        last_document_at = "-5h"
        [shift]
        opened_at = "-3d"
        state = "expired"
        """,
    )
    state = load_scenario(path, now=NOW)
    assert state.fn.valid_until == date(2026, 2, 4)
    assert state.fn.last_document_at == datetime(2026, 1, 15, 11, 7, 40)
    assert state.shift.opened_at == datetime(2026, 1, 12, 16, 7, 40)


def test_absolute_times_are_kept_and_aware_ones_become_local(tmp_path: Path) -> None:
    path = _scenario(
        tmp_path,
        """
        [fn]
        valid_until = 2026-12-31
        last_document_at = "2021-07-29T11:29:00"
        [ofd]
        unsent_count = 3
        first_unsent_at = 2021-07-29T08:20:00Z
        """,
    )
    state = load_scenario(path, now=NOW)
    assert state.fn.valid_until == date(2026, 12, 31)
    assert state.fn.last_document_at == datetime(2021, 7, 29, 11, 29)
    expected = datetime(2021, 7, 29, 8, 20, tzinfo=UTC).astimezone().replace(tzinfo=None)
    assert state.ofd.first_unsent_at == expected


def test_a_scenario_names_only_what_differs_from_the_default(tmp_path: Path) -> None:
    state = load_scenario(_scenario(tmp_path, '[printer]\npaper = "near_end"\n'), now=NOW)
    assert state.printer.paper == "near_end"
    assert state.printer.cover_open is False
    assert state.model_dump(exclude={"printer"}) == default_state(now=NOW).model_dump(
        exclude={"printer"}
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[fn]\nphaze = 3\n", "fn.phaze"),
        ('[shift]\nstate = "half-open"\n', "shift.state"),
        ('serial = "12345"\n', "serial"),
        ('[fn]\nvalid_until = "-3x"\n', "fn.valid_until"),
        ("[fn]\nphase = 256\n", "fn.phase"),
        ("[faults]\nnak_frames = -1\n", "faults.nak_frames"),
        ("[faults]\nsilence = true\n", "faults.silence"),
        ('unsupported = ["FF6"]\n', "unsupported.0"),
        ("[ofd]\nunsent_count = 3\n", "ofd.first_unsent_at"),
        ("[shift]\nreceipts = 900\n", "fn.last_document_number"),
    ],
)
def test_a_bad_scenario_raises_config_error_naming_the_key(
    tmp_path: Path, text: str, key: str
) -> None:
    path = _scenario(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_scenario(path, now=NOW)
    assert key in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_file_that_is_not_toml_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_scenario(_scenario(tmp_path, "[fn\nphase = 3\n"))


def test_a_missing_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "absent.toml")


def test_faults_come_from_the_scenario_file(tmp_path: Path) -> None:
    path = _scenario(tmp_path, "[faults]\nnak_frames = 2\nstray_ff = false\nsilent = true\n")
    faults = load_scenario(path, now=NOW).faults
    assert (faults.nak_frames, faults.stray_ff, faults.silent) == (2, False, True)


def test_counted_faults_count_down_and_refuse_bad_values() -> None:
    faults = Faults(cut_answers=2)
    assert [faults.take("cut_answers") for _ in range(3)] == [True, True, False]
    with pytest.raises(ValidationError):
        faults.wrong_lrc_answers = -1


@pytest.mark.parametrize("name", builtin_scenarios())
def test_every_builtin_scenario_loads(name: str) -> None:
    assert isinstance(load_builtin(name, now=NOW), DeviceState)


def test_builtin_scenarios_include_the_default_and_refuse_unknown_names() -> None:
    assert "default" in builtin_scenarios()
    with pytest.raises(ConfigError, match="no built-in scenario"):
        load_builtin("nope")


def test_runtime_changes_are_validated_but_may_be_made_one_at_a_time() -> None:
    state = default_state(now=NOW)
    state.ofd.unsent_count = 3  # first_unsent_at comes next: no error in between
    state.ofd.first_unsent_at = "-2d"  # type: ignore[assignment]
    assert state.ofd.first_unsent_at is not None
    with pytest.raises(ValidationError):
        state.printer.paper = "torn"  # type: ignore[assignment]


# ------------------------------------------------------------------ synthesised FN archive


def test_archive_holds_the_shift_opening_where_the_receipts_begin() -> None:
    state = default_state(now=NOW)  # last FD 425, 5 receipts in shift 42
    opening = state.archive_document(420)
    assert opening is not None
    assert (opening.doc_type, opening.shift_number, opening.at) == (
        DOC_SHIFT_OPEN,
        42,
        state.shift.opened_at,
    )
    previous = state.archive_document(419)
    assert previous is not None
    assert (previous.doc_type, previous.shift_number) == (DOC_SHIFT_CLOSE, 41)
    last = state.archive_document(425)
    assert last is not None
    assert (last.doc_type, last.at) == (DOC_RECEIPT, state.fn.last_document_at)
    first = state.archive_document(1)
    assert first is not None and first.doc_type == DOC_REGISTRATION
    assert state.archive_document(0) is None
    assert state.archive_document(426) is None


def test_archive_dates_never_go_backwards_within_the_shift() -> None:
    state = default_state(now=NOW)
    dates = [doc.at for n in range(410, 426) if (doc := state.archive_document(n))]
    assert dates == sorted(dates)


def test_archive_marks_unsent_documents_unconfirmed() -> None:
    state = default_state(now=NOW)
    state.ofd.first_unsent_at = NOW - timedelta(days=1)
    state.ofd.unsent_count = 3
    confirmed = {n: doc.ofd_confirmed for n in (422, 423) if (doc := state.archive_document(n))}
    assert confirmed == {422: True, 423: False}


def test_a_closed_shift_ends_with_its_closing_document() -> None:
    state = default_state(now=NOW)
    state.shift.state = "closed"
    last = state.archive_document(425)
    opening = state.archive_document(419)
    assert last is not None and (last.doc_type, last.shift_number) == (DOC_SHIFT_CLOSE, 42)
    assert opening is not None and (opening.doc_type, opening.shift_number) == (
        DOC_SHIFT_OPEN,
        42,
    )
