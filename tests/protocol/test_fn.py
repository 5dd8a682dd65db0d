"""The fiscal drive's own answers (protocol/fn.py) from both vendors' worked examples.

Shtrih-M (FFxxh, shtrih-m.md section 10) and ATOL (A4h xx, atol.md section 8) pass the
drive's answer through byte for byte; each payload below is an example's bytes after
the vendor's frame, command echo and error byte. Answers the references only describe
(registration forms, firmware, empty queues) are laid out by hand from their tables.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import pytest

from kktmon.protocol import fn
from kktmon.protocol.errors import MalformedAnswerError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# FN status: Shtrih-M E4 (real) and ATOL E4; E11 is Shtrih-M's E4 with warnings 0Ah.
SHTRIH_E4 = h("03 00 00 01 00 15 07 1D 0B 1D") + b"9287440301120991" + h("A9 01 00 00")
ATOL_E4 = h("03 00 00 01 00 18 05 0F 0A 1E") + b"9961440300012345" + h("FD 01 00 00")
SHTRIH_E11 = SHTRIH_E4[:4] + b"\x0a" + SHTRIH_E4[5:]
# OFD queue: Shtrih-M E7 and ATOL E5. Shift: Shtrih-M E10 = ATOL E8.
SHTRIH_E7 = h("02 00 03 00 A7 01 00 00 15 07 1D 0B 14")
ATOL_E5 = h("02 00 03 00 F7 01 00 00 18 05 0F 09 12")
SHIFT_E10_E8 = h("01 2A 00 05 00")
SHTRIH_E8 = h("EF BD 03 00 FF 03 00 00")  # FN resource, no marking byte
SHTRIH_E9 = h("1A 0C 1F 0B 01")  # validity, long form

# Registration: the common prefix (FF09h / A4h 43h), then each generation's tail.
PREFIX = h("17 03 0A 0C 00") + b"7701234567  " + b"0000000001012345    "
FD_AND_SIGN = h("2A 00 00 00") + h("11 22 33 44")
FFD_105 = PREFIX + h("02 21") + FD_AND_SIGN  # 47 bytes
FFD_105_EXTENDED = FFD_105 + h("17 03 0A 0C 00")  # 52: with a date/time after the sign
FFD_11 = PREFIX + h("02 21") + h("00") + b"7704211201  " + h("00 00 00 00") + FD_AND_SIGN


def test_fn_status_from_both_vendors() -> None:
    shtrih = fn.parse_fn_status(SHTRIH_E4, "FF01h")
    assert shtrih == fn.FnStatus(
        serial="9287440301120991",
        phase=3,
        warnings=0,
        last_document_number=425,
        last_document_at=datetime(2021, 7, 29, 11, 29),
        shift_open=True,
        current_document=0,
        document_data_received=False,
    )
    atol = fn.parse_fn_status(ATOL_E4, "A4h 30h")
    assert (atol.serial, atol.phase, atol.shift_open) == ("9961440300012345", 3, True)
    assert (atol.last_document_number, atol.last_document_at) == (
        509,
        datetime(2024, 5, 15, 10, 30),
    )
    assert fn.parse_fn_status(SHTRIH_E11, "FF01h").warnings == 0x0A


def test_fn_status_of_a_drive_with_no_documents_yet() -> None:
    fresh = fn.parse_fn_status(h("01 00 00 00 00") + bytes(5) + b"9999078900001234" + bytes(4), "x")
    assert (fresh.phase, fresh.last_document_number, fresh.last_document_at) == (1, 0, None)
    assert fresh.shift_open is False


def test_fn_status_keeps_the_open_document_and_data_flag() -> None:
    status = fn.parse_fn_status(h("03 04 01 01 00") + SHTRIH_E4[5:], "FF01h")
    assert (status.current_document, status.document_data_received) == (4, True)


def test_fn_status_with_an_impossible_date_is_malformed() -> None:
    answer = SHTRIH_E4[:6] + b"\x0d" + SHTRIH_E4[7:]  # month 13
    with pytest.raises(MalformedAnswerError, match="FF01h last document"):
        fn.parse_fn_status(answer, "FF01h")


def test_fn_serial() -> None:
    assert fn.parse_fn_serial(b"9961440300012345", "A4h 31h") == "9961440300012345"


def test_validity_long_and_short_forms() -> None:
    assert fn.parse_fn_validity(SHTRIH_E9, "FF03h") == fn.FnValidity(date(2026, 12, 31), 11, 1)
    assert fn.parse_fn_validity(SHTRIH_E9[:3], "FF03h") == fn.FnValidity(date(2026, 12, 31))
    assert fn.parse_fn_validity(h("00 00 00 0C 00"), "FF03h").valid_until is None  # all zeros
    with pytest.raises(MalformedAnswerError, match="A4h 32h validity"):
        fn.parse_fn_validity(h("1A 0D 1F"), "A4h 32h")


@pytest.mark.parametrize(("type_byte", "release"), [(1, True), (0, False)])
def test_firmware(type_byte: int, release: bool) -> None:
    answer = b"fn_v_1_1_5 \x00\x00\x00\x00\x00" + bytes([type_byte])
    assert fn.parse_fn_firmware(answer, "FF04h") == fn.FnFirmware("fn_v_1_1_5", release)


@pytest.mark.parametrize(
    ("payload", "tail"),
    [
        (PREFIX, (None, None, None, None)),  # ATOL: "parse only the prefix"
        (PREFIX + h("02 21"), (2, 0x21, None, None)),
        (FFD_105, (2, 0x21, None, 42)),
        (FFD_105_EXTENDED, (2, 0x21, None, 42)),
        (FFD_11, (2, 0x21, "7704211201", 42)),
    ],
    ids=["prefix 37", "tax and mode 39", "FFD 1.05 47", "FFD 1.05 extended 52", "FFD 1.1 64"],
)
def test_registration_forms(payload: bytes, tail: tuple[object, ...]) -> None:
    registration = fn.parse_registration(payload, "FF09h")
    assert registration.registered_at == datetime(2023, 3, 10, 12, 0)
    assert (registration.inn, registration.rnm) == ("7701234567", "0000000001012345")
    found = (registration.tax_systems, registration.work_mode, registration.ofd_inn)
    assert (*found, registration.fd_number) == tail


def test_registration_long_form_starts_at_64_bytes() -> None:
    assert len(FFD_11) == fn.REGISTRATION_LONG_FORM
    assert fn.parse_registration(FFD_105 + bytes(16), "FF09h").fd_number == 42  # 63: short


def test_registration_with_zero_date() -> None:
    assert fn.parse_registration(bytes(5) + PREFIX[5:], "A4h 43h").registered_at is None


def test_ofd_queue_from_both_vendors() -> None:
    assert fn.parse_ofd_status(SHTRIH_E7, "FF39h") == fn.OfdStatus(
        exchange=0x02,
        reading_message=False,
        unsent_count=3,
        first_unsent_number=423,
        first_unsent_at=datetime(2021, 7, 29, 11, 20),
    )
    assert fn.parse_ofd_status(ATOL_E5, "A4h 20h") == fn.OfdStatus(
        0x02, False, 3, 503, datetime(2024, 5, 15, 9, 18)
    )


@pytest.mark.parametrize(
    "number_and_date",
    [bytes(9), h("EF BE AD DE FF FF FF FF FF"), h("A7 01 00 00 15 0D 1D 0B 14")],
    ids=["zeros", "garbage", "stale number, impossible date"],
)
def test_empty_queue_ignores_number_and_date(number_and_date: bytes) -> None:
    status = fn.parse_ofd_status(h("01 01 00 00") + number_and_date, "FF39h")
    assert status == fn.OfdStatus(0x01, True, 0, None, None)


def test_nonempty_queue_with_an_impossible_date_is_malformed() -> None:
    with pytest.raises(MalformedAnswerError, match="A4h 20h first unsent"):
        fn.parse_ofd_status(h("02 00 01 00 F7 01 00 00 18 0D 0F 09 12"), "A4h 20h")


def test_shift_parameters() -> None:
    assert fn.parse_shift_parameters(SHIFT_E10_E8, "A4h 10h") == fn.ShiftParameters(True, 42, 5)
    assert fn.parse_shift_parameters(h("00 29 00 00 00"), "FF40h") == fn.ShiftParameters(
        False, 41, 0
    )


def test_resource_with_and_without_the_marking_byte() -> None:
    assert fn.parse_fn_resource(SHTRIH_E8, "FF63h") == fn.FnResource(245231, 1023, None)
    assert fn.parse_fn_resource(SHTRIH_E8 + b"\x07", "FF63h").marking_fill_pct == 7


@pytest.mark.parametrize(("payload", "count"), [(h("2C 01"), 300), (h("2C 01 01 00"), 65836)])
def test_unconfirmed_count_two_or_four_bytes(payload: bytes, count: int) -> None:
    assert fn.parse_unconfirmed_count(payload, "FF3Fh") == count


SHORTEST = [
    (fn.parse_fn_status, SHTRIH_E4),
    (fn.parse_fn_serial, b"9961440300012345"),
    (fn.parse_fn_validity, SHTRIH_E9[:3]),
    (fn.parse_fn_firmware, b"fn_v_1_1_5 \x00\x00\x00\x00\x00\x01"),
    (fn.parse_registration, PREFIX),
    (fn.parse_ofd_status, SHTRIH_E7),
    (fn.parse_shift_parameters, SHIFT_E10_E8),
    (fn.parse_fn_resource, SHTRIH_E8),
]


@pytest.mark.parametrize(("parse", "payload"), SHORTEST, ids=[p.__name__ for p, _ in SHORTEST])
def test_one_byte_short_is_malformed_and_named(
    parse: Callable[[bytes, str], object], payload: bytes
) -> None:
    parse(payload, "A4h xx")  # the shortest answer the parser accepts
    for cut in (0, len(payload) - 1):
        with pytest.raises(MalformedAnswerError, match="A4h xx"):
            parse(payload[:cut], "A4h xx")


@pytest.mark.parametrize("size", [0, 1, 3, 5])
def test_unconfirmed_count_of_another_width_is_malformed(size: int) -> None:
    with pytest.raises(MalformedAnswerError, match="FF3Fh"):
        fn.parse_unconfirmed_count(bytes(size), "FF3Fh")
