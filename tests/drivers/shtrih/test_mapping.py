"""Shtrih-M answers -> HealthSnapshot, from the reference's golden frames (shtrih-m.md 10).

The registration answer (FF09h), which the reference does not print, is built here from
the layout of section 8.11.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
import shtrih_vectors as sv

from kktmon.drivers.shtrih.mapping import build_snapshot, normalise_model_name
from kktmon.protocol.health import DeviceInfo, FnPhase, HealthSnapshot, PaperState, ShiftState
from kktmon.protocol.shtrih import records as rec
from kktmon.protocol.shtrih.frame import Frame, command_bytes, decode_frame

ZONE = timezone(timedelta(hours=3))
HOST = datetime(2026, 1, 15, 16, 8, 10, tzinfo=ZONE)  # 30 s after E2's device clock


def golden(name: str) -> Frame:
    answer = next(v.answer for v in sv.VECTORS if v.name.startswith(name))
    assert answer is not None
    return decode_frame(answer)


LONG = rec.parse_long_status(golden("E2"))  # shift closed (mode 4), last closed shift 90
SHORT = rec.parse_short_status(golden("E3"))  # no last-print-result byte
FN_STATUS = rec.parse_fn_status(golden("E4"))  # fiscal, shift open, last FD 425
OFD = rec.parse_ofd_status(golden("E7"))  # 3 unsent since 2021-07-29 11:20
RESOURCE = rec.parse_fn_resource(golden("E8"))  # 245231 documents left, 1023 KB
VALIDITY = rec.parse_fn_validity(golden("E9"))  # 2026-12-31, 11 registrations left
SHIFT = rec.parse_shift_parameters(golden("E10"))  # open, shift 42
REGISTRATION = rec.parse_registration(
    Frame(
        command_bytes(0xFF09),
        b"\x00"
        + bytes.fromhex("17 03 0A 0C 00")
        + b"7704211201  "
        + b"0001234567012345    "
        + bytes.fromhex("02 21 2A 00 00 00 11 22 33 44"),
    )
)
IDENTITY = DeviceInfo(
    vendor="shtrih", model="ШТРИХ-ЛАЙТ-02Ф", serial="0392190008017798", transport="serial"
)
OPENED = datetime(2026, 1, 15, 9, 0)


def snapshot(opened_at: datetime | None = OPENED, **changes: object) -> HealthSnapshot:
    answers: dict[str, object] = {
        "long_status": LONG,
        "short_status": SHORT,
        "fn_status": FN_STATUS,
        "shift": SHIFT,
        "validity": VALIDITY,
        "ofd": OFD,
        "registration": REGISTRATION,
        "resource": RESOURCE,
    }
    answers.update(changes)
    return build_snapshot(
        identity=IDENTITY,
        shift_opened_at=opened_at,
        host_time=HOST,
        fn_firmware="fn v 2.13",
        **answers,  # type: ignore[arg-type]
    )


def test_golden_answers_give_the_registers_facts() -> None:
    snap = snapshot()
    device = snap.device
    assert device.firmware == "T.3 build 7196 (2025-12-17)"
    assert (device.inn, device.rnm) == ("7704211201", "0001234567012345")
    fn = snap.fn
    assert fn.serial == sv.E4_FN_SERIAL and fn.phase is not None
    assert (fn.phase.name, fn.phase.raw) == (FnPhase.FISCAL, 3)
    assert fn.last_document_number == 425
    assert fn.last_document_at == datetime(2021, 7, 29, 11, 29, tzinfo=ZONE)
    assert (fn.valid_until, fn.days_left, fn.registrations_left) == (date(2026, 12, 31), 350, 11)
    assert (fn.documents_left, fn.storage_30d_free_kb) == (245231, 1023)
    assert fn.memory_used_pct == round(100 * 425 / (425 + 245231), 2)
    assert fn.firmware == "fn v 2.13" and fn.warnings.raw == 0
    ofd = snap.ofd
    assert (ofd.unsent_count, ofd.first_unsent_number) == (3, 423)
    assert ofd.first_unsent_at == datetime(2021, 7, 29, 11, 20, tzinfo=ZONE)
    assert ofd.exchange is not None and ofd.exchange.raw == 2
    assert (snap.shift.state, snap.shift.number) == (ShiftState.OPEN, 42)
    assert snap.shift.opened_at == OPENED.replace(tzinfo=ZONE)
    assert snap.shift.hours_open == round((7 * 3600 + 8 * 60 + 10) / 3600, 2)
    assert snap.clock.device_time == datetime(2026, 1, 15, 16, 7, 40, tzinfo=ZONE)
    assert snap.clock.skew_s == -30.0
    printer = snap.printer
    assert (printer.paper, printer.cover_open, printer.fault) == (PaperState.OK, False, False)
    assert printer.raw == {"flags": 0x0292, "mode": 4, "submode": 0, "last_print_result": -1}


def test_missing_answers_stay_null() -> None:
    snap = snapshot(
        opened_at=None, shift=None, validity=None, ofd=None, registration=None, resource=None
    )
    assert snap.fn.valid_until is None and snap.fn.days_left is None
    assert snap.fn.documents_left is None and snap.fn.memory_used_pct is None
    assert snap.ofd.unsent_count is None and snap.ofd.exchange is None
    assert snap.device.inn == "9706048530"  # 11h's INN without FF09h
    assert snap.device.rnm is None
    # Without FF40h the FN status says "open" and 11h's last closed shift 90 gives 91.
    assert (snap.shift.state, snap.shift.number, snap.shift.hours_open) == (
        ShiftState.OPEN,
        91,
        None,
    )


def test_shift_over_24_hours_or_in_mode_3_is_expired() -> None:
    assert snapshot(opened_at=datetime(2026, 1, 14, 16, 0)).shift.state is ShiftState.EXPIRED
    in_mode_3 = snapshot(opened_at=None, long_status=replace(LONG, mode=3))
    assert (in_mode_3.shift.state, in_mode_3.shift.hours_open) == (ShiftState.EXPIRED, None)


def test_closed_shift_has_only_a_number() -> None:
    closed = rec.ShiftParameters(open=False, number=42, receipt_number=0)
    assert snapshot(shift=closed).shift.model_dump(exclude_none=True) == {
        "state": ShiftState.CLOSED,
        "number": 42,
    }
    fn_closed = replace(FN_STATUS, shift_open=False)
    assert snapshot(shift=None, fn_status=fn_closed).shift.number == 90


@pytest.mark.parametrize(
    ("flags", "submode", "paper", "fault"),
    [
        (0x0292, 0, PaperState.OK, False),
        (0x0212, 0, PaperState.OUT, False),  # bit 7: no receipt paper
        (0x0212, 1, PaperState.OUT, False),  # passive paper-out (idle)
        (0x0212, 2, PaperState.OUT, False),  # active paper-out: ran out mid-document
        (0x0292, 2, PaperState.OUT, False),  # submode says out before the sensor does
        (0x0292, 3, PaperState.OK, True),  # paper back, waiting for B0h: will not print
        (0x0290, 3, PaperState.NEAR_END, True),
        (0x0290, 0, PaperState.NEAR_END, False),  # bit 1: no receipt roll
    ],
)
def test_paper(flags: int, submode: int, paper: PaperState, fault: bool) -> None:
    long_status = replace(LONG, flags=rec.RegisterFlags(flags), submode=submode)
    printer = snapshot(long_status=long_status).printer
    assert (printer.paper, printer.fault, printer.raw["submode"]) == (paper, fault, submode)


def test_cover_and_printer_fault() -> None:
    long_status = replace(LONG, flags=rec.RegisterFlags(0x0292 | 1 << 10))
    snap = snapshot(long_status=long_status, short_status=replace(SHORT, last_print_result=2))
    assert (snap.printer.cover_open, snap.printer.fault) == (True, True)
    assert snap.printer.raw["last_print_result"] == 2


def test_model_names_with_latin_lookalikes_become_cyrillic() -> None:
    assert normalise_model_name("ШТРИХ-M-01Ф") == "ШТРИХ-М-01Ф"
    assert normalise_model_name("SHTRIH-M") == "SHTRIH-M"
