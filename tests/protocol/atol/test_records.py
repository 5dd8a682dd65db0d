"""ATOL parsers the worked examples do not reach, on answers built from atol.md section 5.

Each answer below is laid out by hand from the reference's tables (offsets into the
whole answer, prefix and error byte included), so a parser reading one byte off shows.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from kktmon.protocol.atol.commands import (
    FIRMWARE_KKT,
    FN_FIRMWARE,
    FN_REGISTRATION,
    FN_RESOURCE,
    FN_SERIAL,
    FN_UNCONFIRMED,
    FN_VALIDITY,
    REG_SHIFT,
    request_firmware,
    request_fn,
    request_register,
)
from kktmon.protocol.atol.records import (
    parse_extended_error,
    parse_ffd_versions,
    parse_firmware,
    parse_fn_firmware,
    parse_fn_resource,
    parse_fn_serial,
    parse_fn_validity,
    parse_ofd_status,
    parse_register,
    parse_registration,
    parse_serial_register,
    parse_shift_register,
    parse_state,
    parse_status_code,
    parse_unconfirmed_count,
    parse_unsent_register,
)
from kktmon.protocol.errors import MalformedAnswerError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_status_code_45h() -> None:
    status = parse_status_code(h("55 21 89"))  # submode 2, mode 1; no paper, near end, cutter
    assert (status.mode, status.submode) == (1, 2)
    printer = status.printer
    assert printer.no_paper and printer.cutter_error and printer.paper_near_end
    assert not (printer.printer_offline or printer.mechanical_error or printer.overheat)
    assert not (printer.paper_jam or printer.presenter_error)


def test_firmware_9dh() -> None:
    assert request_firmware(FIRMWARE_KKT).body == h("00 00 9D 01")
    firmware = parse_firmware(h("55 00 03 10 00 47 11"))
    assert (firmware.version, firmware.language, firmware.build) == ("3.10", 0, 4711)


def test_register_requests_carry_two_zero_params() -> None:
    assert request_register(REG_SHIFT).body == h("00 00 91 12 00 00")


def test_shift_register_12h_stamp_is_dd_mm_yy() -> None:
    shift = parse_shift_register(h("55 00 01 15 05 24 09 05 00"))
    assert shift.state == 1
    assert shift.stamp == datetime(2024, 5, 15, 9, 5, 0)
    assert parse_shift_register(h("55 00 00 00 00 00 00 00 00")).stamp is None


def test_serial_register_16h() -> None:
    assert parse_serial_register(h("55 00 00 10 67 00 01 23 45")) == "00106700012345"
    assert parse_serial_register(h("55 00 00 12 34 56")) == "00123456"
    with pytest.raises(MalformedAnswerError):
        parse_serial_register(h("55 00 00 12 34"))
    with pytest.raises(MalformedAnswerError):
        parse_serial_register(h("55 00 0A 00 00 00"))  # not BCD


def test_unsent_register_2ch() -> None:
    assert parse_unsent_register(h("55 00 00 01 23")) == 123


def test_ffd_versions_36h() -> None:
    versions = parse_ffd_versions(h("55 00 02 04"))
    assert (versions.kkt, versions.fn) == ("1.05", "1.2")
    assert parse_ffd_versions(h("55 00 09 00")).kkt is None


def test_extended_error_37h_is_big_endian() -> None:
    assert parse_extended_error(h("55 00 01 02")) == 0x0102


def test_clock_register_11h_is_raw() -> None:
    assert parse_register(h("55 00 15 05 24 10 30 45"), 0x11) == h("15 05 24 10 30 45")


def test_fn_serial_31h() -> None:
    assert request_fn(FN_SERIAL).body == h("00 00 A4 31")
    assert parse_fn_serial(b"\x55\x00" + b"9961440300012345") == "9961440300012345"


def test_fn_validity_32h() -> None:
    validity = parse_fn_validity(h("55 00 1A 0C 1F 0B 01"))
    assert validity.valid_until == date(2026, 12, 31)
    assert (validity.registrations_left, validity.registrations_done) == (11, 1)
    short = parse_fn_validity(h("55 00 1A 0C 1F"))
    assert short.registrations_left is None
    with pytest.raises(MalformedAnswerError):
        parse_fn_validity(h("55 00 1A 0D 1F"))  # month 13
    assert request_fn(FN_VALIDITY).body == h("00 00 A4 32")


def test_fn_firmware_33h() -> None:
    firmware = parse_fn_firmware(b"\x55\x00" + b"fn_v_1_1_5 \x00\x00\x00\x00\x00" + b"\x01")
    assert (firmware.version, firmware.is_release) == ("fn_v_1_1_5", True)
    assert request_fn(FN_FIRMWARE).body == h("00 00 A4 33")


def test_unconfirmed_count_42h() -> None:
    assert parse_unconfirmed_count(h("55 00 2C 01")) == 300
    assert request_fn(FN_UNCONFIRMED).body == h("00 00 A4 42")


def test_registration_43h_prefix() -> None:
    answer = h("55 00 17 03 0A 0C 00") + b"7701234567  " + b"0000000001012345    " + h("01 00")
    registration = parse_registration(answer)
    assert registration.registered_at == datetime(2023, 3, 10, 12, 0)
    assert (registration.inn, registration.rnm) == ("7701234567", "0000000001012345")
    assert request_fn(FN_REGISTRATION).body == h("00 00 A4 43")


def test_fn_resource_3dh() -> None:
    resource = parse_fn_resource(h("55 00 10 27 00 00 FF 03 00 00"))
    assert (resource.documents_left, resource.storage_30d_free_kb) == (10000, 1023)
    assert request_fn(FN_RESOURCE).body == h("00 00 A4 3D")


def test_ofd_status_with_empty_queue_has_no_first_document() -> None:
    status = parse_ofd_status(h("55 00 01 00 00 00 00 00 00 00 00 00 00 00 00"))
    assert status.exchange == 0x01 and status.unsent_count == 0  # connected, nothing pending
    assert status.first_unsent_number is None and status.first_unsent_at is None


def test_state_with_impossible_clock_is_malformed() -> None:
    answer = bytearray(h("44 00 01 24 05 15 10 30 45 4B 00 12 34 56 3D 00 00 00 00 08 00 41"))
    answer += bytes(8)
    answer[4] = 0x13  # month 13
    with pytest.raises(MalformedAnswerError):
        parse_state(bytes(answer))


def test_state_mode_nibbles() -> None:
    answer = bytearray(h("44 00 01 24 05 15 10 30 45 4B 00 12 34 56 3D 00 00 00 00 08 00 41"))
    answer += bytes(8)
    answer[17] = 0x21  # submode 2, mode 1 (registration)
    state = parse_state(bytes(answer))
    assert (state.mode, state.submode) == (1, 2)
