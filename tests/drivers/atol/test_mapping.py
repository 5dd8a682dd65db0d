"""ATOL answers -> HealthSnapshot, from the reference's golden answers (atol.md section 8).

Answers the reference does not print (45h, A4h 32h/43h/3Dh, register 12h) are built
here byte by byte from the layouts of section 5.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from atol_vectors import EXCHANGES, Exchange

from kktmon.drivers.atol.mapping import (
    PollAnswers,
    ShiftSighting,
    build_snapshot,
    device_info,
    opened_from_register,
    opened_from_transition,
)
from kktmon.protocol.atol import records as rec
from kktmon.protocol.health import FnPhase, HealthSnapshot, PaperState, ShiftState

ZONE = timezone(timedelta(hours=3))
HOST = datetime(2024, 5, 15, 10, 31, 15, tzinfo=ZONE)  # 30 s after E6's device clock


def golden(name: str) -> Exchange:
    return next(ex for ex in EXCHANGES if ex.name.startswith(name))


STATE = rec.parse_state(golden("E6").answer)  # shift open, paper present, 10:30:45
FN_STATUS = rec.parse_fn_status(golden("E4").answer)  # fiscal, last FD 509 at 10:30
OFD = rec.parse_ofd_status(golden("E5").answer)  # 3 unsent since 09:18
SHIFT = rec.parse_shift_parameters(golden("E8").answer)  # open, shift 42
DEVICE_TYPE = rec.parse_device_type(golden("E2").answer)  # Казначей ФА 3.0 build 2195

STATUS_OK = rec.parse_status_code(bytes.fromhex("55 00 00"))
VALIDITY = rec.parse_fn_validity(bytes.fromhex("55 00 19 0C 1F 0B 01"))  # 2025-12-31
REGISTRATION = rec.parse_registration(
    bytes.fromhex("55 00 17 03 01 09 00") + b"7704211201  " + b"0001234567012345    "
)
RESOURCE = rec.parse_fn_resource(bytes.fromhex("55 00 F3 01 00 00 FF 03 00 00"))  # 499, 1023


def answers(**changes: object) -> PollAnswers:
    full = PollAnswers(
        state=STATE,
        status=STATUS_OK,
        fn_status=FN_STATUS,
        shift=SHIFT,
        validity=VALIDITY,
        ofd=OFD,
        registration=REGISTRATION,
        resource=RESOURCE,
    )
    return replace(full, **changes)  # type: ignore[arg-type]


IDENTITY = device_info(DEVICE_TYPE, "00106303231591", None, "serial")


def snapshot(opened_at: datetime | None = None, **changes: object) -> HealthSnapshot:
    return build_snapshot(
        identity=IDENTITY,
        answers=answers(**changes),
        shift_opened_at=opened_at,
        host_time=HOST,
        fn_firmware="fn v 2.13",
    )


def test_identity_from_a5h_and_registers() -> None:
    ffd = rec.parse_ffd_versions(bytes.fromhex("55 00 04 04"))
    info = device_info(DEVICE_TYPE, "00106303231591", ffd, "tcp")
    assert (info.vendor, info.model, info.serial) == ("atol", "Казначей ФА", "00106303231591")
    assert info.firmware == "3.0 build 2195"
    assert (info.ffd.device, info.ffd.fn, info.ffd.registered) == ("1.2", "1.2", None)
    assert info.transport == "tcp"


def test_golden_answers_give_the_registers_facts() -> None:
    snap = snapshot(opened_at=datetime(2024, 5, 15, 8, 0, 30))
    assert (snap.device.inn, snap.device.rnm) == ("7704211201", "0001234567012345")
    fn = snap.fn
    assert fn.serial == "9961440300012345" and fn.phase is not None
    assert (fn.phase.name, fn.phase.raw) == (FnPhase.FISCAL, 3)
    assert fn.last_document_number == 509
    assert fn.last_document_at == datetime(2024, 5, 15, 10, 30, tzinfo=ZONE)
    assert (fn.valid_until, fn.days_left, fn.registrations_left) == (date(2025, 12, 31), 595, 11)
    assert fn.firmware == "fn v 2.13" and fn.warnings.raw == 0
    assert (fn.documents_left, fn.storage_30d_free_kb) == (499, 1023)
    assert fn.memory_used_pct == round(100 * 509 / (509 + 499), 2)
    ofd = snap.ofd
    assert (ofd.unsent_count, ofd.first_unsent_number) == (3, 503)
    assert ofd.first_unsent_at == datetime(2024, 5, 15, 9, 18, tzinfo=ZONE)
    assert ofd.oldest_unsent_age_h == round((73 * 60 + 15) / 3600, 2)
    assert ofd.exchange is not None and ofd.exchange.message_pending
    assert not ofd.exchange.transport_connected and ofd.exchange.raw == 2
    assert (snap.shift.state, snap.shift.number) == (ShiftState.OPEN, 42)
    assert snap.shift.opened_at == datetime(2024, 5, 15, 8, 0, 30, tzinfo=ZONE)
    assert snap.shift.hours_open == round((2 * 3600 + 30 * 60 + 45) / 3600, 2)
    assert snap.clock.device_time == datetime(2024, 5, 15, 10, 30, 45, tzinfo=ZONE)
    assert snap.clock.skew_s == -30.0
    printer = snap.printer
    assert (printer.paper, printer.cover_open, printer.fault) == (PaperState.OK, False, False)
    assert printer.raw == {"flags": 0x4B, "mode": 0, "submode": 0, "printer_flags": 0}
    assert snap.with_block_deadline().block_reason == "shift_24_hours"


def test_missing_answers_stay_null() -> None:
    snap = snapshot(
        status=None, shift=None, validity=None, ofd=None, registration=None, resource=None
    )
    assert snap.fn.valid_until is None and snap.fn.days_left is None
    assert snap.fn.documents_left is None and snap.fn.memory_used_pct is None
    assert snap.fn.storage_30d_free_kb is None
    assert snap.ofd.unsent_count is None and snap.ofd.exchange is None
    assert snap.printer.fault is None and "printer_flags" not in snap.printer.raw
    assert snap.device.rnm is None and snap.device.inn is None
    # Without A4h 10h the FN status says "open" and 3Fh's last closed shift 41 gives 42.
    assert (snap.shift.state, snap.shift.number, snap.shift.opened_at) == (
        ShiftState.OPEN,
        42,
        None,
    )
    assert snap.shift.hours_open is None


def test_memory_is_only_the_90_percent_bit_without_a4h_3dh() -> None:
    full = replace(FN_STATUS, warnings=0x04)
    snap = snapshot(fn_status=full, resource=None)
    assert snap.fn.warnings.memory_90 and snap.fn.memory_used_pct is None


@pytest.mark.parametrize(
    ("state_flags", "printer_flags", "paper", "fault"),
    [
        (0x4B, 0x00, PaperState.OK, False),
        (0x43, 0x00, PaperState.OUT, False),  # 3Fh: no paper
        (0x4B, 0x01, PaperState.OUT, False),  # 45h: no paper
        (0x4B, 0x80, PaperState.NEAR_END, False),
        (0x4B, 0x04, PaperState.OK, True),  # mechanical error
        (0x4B, 0x10, PaperState.OK, True),  # overheat
        (0x4B, 0x20, PaperState.OK, True),  # jam
    ],
)
def test_printer(state_flags: int, printer_flags: int, paper: PaperState, fault: bool) -> None:
    state = replace(STATE, flags=rec.StateFlags(state_flags | 0x20))
    status = rec.parse_status_code(bytes([0x55, 0x00, printer_flags]))
    printer = snapshot(state=state, status=status).printer
    assert (printer.paper, printer.fault, printer.cover_open) == (paper, fault, True)


def test_shift_over_24_hours_is_expired() -> None:
    snap = snapshot(opened_at=datetime(2024, 5, 14, 10, 0))
    assert snap.shift.state is ShiftState.EXPIRED and snap.shift.hours_open is not None
    assert snap.shift.hours_open > 24


def test_closed_shift_has_no_opening_time() -> None:
    closed = rec.ShiftParameters(open=False, number=42, receipt_number=0)
    snap = snapshot(opened_at=datetime(2024, 5, 15, 8, 0), shift=closed)
    assert (snap.shift.state, snap.shift.number, snap.shift.opened_at) == (
        ShiftState.CLOSED,
        42,
        None,
    )


# ------------------------------------------------------------------ opening time

LAST_DOC = datetime(2024, 5, 15, 10, 30)  # FN time: minutes only


def register(stamp: str) -> rec.ShiftRegister:
    """Register 12h answer: state 1, ``DD MM YY hh mm ss`` BCD."""
    return rec.parse_shift_register(bytes.fromhex(f"55 00 01 {stamp}"))


@pytest.mark.parametrize(
    ("stamp", "opened"),
    [
        ("15 05 24 08 00 30", datetime(2024, 5, 15, 8, 0, 30)),  # the opening
        ("16 05 24 08 00 30", datetime(2024, 5, 15, 8, 0, 30)),  # the 24 h expiry
        ("15 05 24 10 30 59", datetime(2024, 5, 15, 10, 30, 59)),  # opening = last document
        ("14 05 24 09 00 00", datetime(2024, 5, 14, 9, 0)),  # 25.5 h ago: an expired shift
        ("17 05 24 12 00 00", None),  # neither fits the FN's documents
    ],
)
def test_register_12h_stamp_is_read_as_opening_or_expiry(
    stamp: str, opened: datetime | None
) -> None:
    assert opened_from_register(register(stamp), LAST_DOC) == opened


def test_register_12h_without_a_stamp_or_closed_says_nothing() -> None:
    assert opened_from_register(register("00 00 00 00 00 00"), LAST_DOC) is None
    closed = rec.parse_shift_register(bytes.fromhex("55 00 00 15 05 24 08 00 30"))
    assert opened_from_register(closed, LAST_DOC) is None
    assert opened_from_register(register("15 05 24 08 00 30"), None) is None


def seen(is_open: bool, number: int, last: int, at: datetime | None = LAST_DOC) -> ShiftSighting:
    return ShiftSighting(is_open, number, last, at)


@pytest.mark.parametrize(
    ("before", "now", "opened"),
    [
        (seen(False, 41, 500), seen(True, 42, 501), LAST_DOC),  # only the opening report
        (seen(True, 41, 500), seen(True, 42, 502), LAST_DOC),  # closing + opening reports
        (seen(False, 41, 500), seen(True, 42, 503), None),  # receipts since: not exact
        (seen(True, 41, 500), seen(True, 43, 502), None),  # a whole shift was missed
        (seen(True, 42, 500), seen(True, 42, 501), None),  # no transition
        (None, seen(True, 42, 501), None),  # first poll
        (seen(False, 41, 500), seen(False, 41, 500), None),  # still closed
        (seen(False, 41, 500), ShiftSighting(True, 42, None, None), None),  # no FD number
    ],
)
def test_opening_inferred_from_the_open_flag_changing(
    before: ShiftSighting | None, now: ShiftSighting, opened: datetime | None
) -> None:
    assert opened_from_transition(before, now) == opened
