"""Pirit parsers on constructed replies: the layouts of pirit.md section 4 and the
tolerance rules of quirks 1, 8, 9, 10 and 13 (empty fields, decimal masks, placeholder
dates, firmware variants, CP866 and padding).
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pirit_vectors import reply, reply_frame

from kktmon.protocol.errors import (
    DeviceError,
    MalformedAnswerError,
    UnexpectedAnswerError,
    UnsupportedCommandError,
)
from kktmon.protocol.fn import FnResource, FnStatus, FnValidity, OfdStatus, ShiftParameters
from kktmon.protocol.health import FnPhase, FnPhaseInfo, FnWarnings, OfdExchangeStatus
from kktmon.protocol.pirit import fn_records as fn
from kktmon.protocol.pirit import records as rec
from kktmon.protocol.pirit.commands import answer_fields
from kktmon.protocol.pirit.errors import ERROR_MEANINGS, EXTENDED_REASONS
from kktmon.protocol.pirit.frame import decode_reply_frame

# ------------------------------------------------------------------ 0x00 / 0x04


def test_status_bits_and_document_nibbles() -> None:
    # fatal: bits 2, 6, 8; flags: 0, 3, 8, 9; document 0x32 = 50: sale, after 3rd step.
    status = rec.parse_status(reply(0x00, str(4 + 64 + 256), str(1 + 8 + 256 + 512), "50"))
    assert status.fatal.fn_link_lost and status.fatal.fn_fatal and status.fatal.sd_card_fault
    assert not (status.fatal.nvr_checksum or status.fatal.not_authorized)
    flags = status.flags
    assert flags.start_of_work_pending and flags.shift_over_24h
    assert flags.shift_close_unfinished and flags.control_tape_error
    assert not (flags.shift_open or flags.non_fiscal or flags.fn_not_registered)
    assert (status.document.type, status.document.state, status.document.open) == (2, 3, True)
    assert rec.DOCUMENT_TYPES[2] == "sale" and status.skno is None


def test_status_empty_fields_are_zero_and_belarus_has_a_fourth() -> None:
    status = rec.parse_status(reply(0x00, "", "", "", "7"))
    assert (status.fatal.raw, status.flags.raw, status.document.raw, status.skno) == (0, 0, 0, 7)


def test_status_needs_three_fields() -> None:
    with pytest.raises(MalformedAnswerError):
        rec.parse_status(reply(0x00, "0", "4"))


def test_printer_status_bits() -> None:
    printer = rec.parse_printer_status(reply(0x04, str(2 + 4 + 128)))
    assert printer.paper_out and printer.cover_open and printer.mechanism_link_lost
    assert not (printer.not_ready or printer.cutter_error)


# ------------------------------------------------------------------ 0x02


def test_identity_texts_are_trimmed_and_cp866() -> None:
    assert rec.parse_serial(reply(0x02, "1", "  0123456789  ")) == "0123456789"
    assert rec.parse_inn(reply(0x02, "3", "7701234567  ")) == "7701234567"
    assert rec.parse_rnm(reply(0x02, "4", "0000000001012345")) == "0000000001012345"
    assert rec.parse_firmware_version(reply(0x02, "70", "665.2.14")) == "665.2.14"
    frame = reply_frame(0x11, "ОФД Такском")
    assert "ОФД".encode("cp866") in frame
    assert rec.parse_setting(decode_reply_frame(frame)) == "ОФД Такском"


def test_model_codes() -> None:
    assert rec.parse_model(reply(0x02, "21", "9")) == rec.Model(9, "Pirit 2SF")
    assert rec.parse_model(reply(0x02, "21", "5")).name == "Viki Print 80+"
    assert rec.parse_model(reply(0x02, "21", "77")) == rec.Model(77, None)
    assert rec.parse_firmware_id(reply(0x02, "2", "565")) == 565


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("140327",), FnValidity(date(2027, 3, 14), days_left=None)),  # FFD 1.05 firmware
        (("140327", "412"), FnValidity(date(2027, 3, 14), days_left=412)),  # FFD 1.2 firmware
        (("140327", "412", "extra"), FnValidity(date(2027, 3, 14), days_left=412)),
        (("000000",), FnValidity(None, days_left=None)),
    ],
)
def test_fn_expiry_variants(values: tuple[str, ...], expected: FnValidity) -> None:
    assert rec.parse_fn_expiry(reply(0x02, "14", *values)) == expected


@pytest.mark.parametrize("placeholder", ["", "000000", "010100"])
def test_placeholder_dates_mean_no_date(placeholder: str) -> None:
    assert rec.parse_shift_opened_at(reply(0x02, "17", placeholder, "000000")) is None
    assert rec.parse_registration_date(reply(0x02, "6", placeholder)) is None


def test_date8_and_datetime() -> None:
    assert rec.parse_registration_date(reply(0x02, "6", "01021999")) == date(1999, 2, 1)
    at = rec.parse_last_fiscal_operation(reply(0x02, "5", "311224", "235959"))
    assert at == datetime(2024, 12, 31, 23, 59, 59)
    assert rec.parse_clock(reply(0x13, "010325", "090000")) == datetime(2025, 3, 1, 9)


@pytest.mark.parametrize(
    "values", [("320124", "000000"), ("01x124", "000000"), ("010124", "250000"), ("0101", "0")]
)
def test_impossible_dates_are_malformed(values: tuple[str, str]) -> None:
    with pytest.raises(MalformedAnswerError):
        rec.parse_shift_opened_at(reply(0x02, "17", *values))


def test_small_records() -> None:
    assert rec.parse_tax_modes(reply(0x02, "23", "1", "0", "32")) == rec.TaxModes(1, 0, 32)
    hardware = rec.parse_hardware(reply(0x02, "22", "12"))
    assert hardware.sd_present and hardware.fn_present
    assert rec.parse_info_int(reply(0x02, "16", "1"), 16) == 1
    assert rec.parse_shift_number(reply(0x01, "1", "57")) == 57
    assert rec.parse_service_value(reply(0x05, "7", " 3120 "), 7) == "3120"
    assert rec.parse_drawer_open(reply(0x81, "1")) is True
    assert rec.parse_setting(reply(0x11)) == ""


def test_error_reason_and_fn_lock() -> None:
    reason = rec.parse_error_reason(reply(0x06, "1", "20", "Смена не открыта"))
    assert (reason.code, reason.text, reason.meaning) == (20, "Смена не открыта", "shift not open")
    assert rec.parse_error_reason(reply(0x06, "1", "66")).text is None
    assert EXTENDED_REASONS[1] == "start of work (10h) not done"
    lock = rec.parse_fn_lock(reply(0x06, "2", str(128 + 2)))
    assert lock.fn_full and lock.fn_not_found and not lock.fn_link_error


# ------------------------------------------------------------------ 0x78 / 0x79


def test_fn_status_feeds_the_health_model() -> None:
    status = fn.parse_fn_status(reply(0x78, "2", "23", "4", str(1 + 4 + 8 + 128)))
    assert (status.phase, status.shift_open, status.document_data_received) == (7, False, True)
    assert status.phase is not None and status.warnings is not None
    assert FnPhaseInfo.from_byte(status.phase).name is FnPhase.POST_FISCAL
    warnings = FnWarnings.from_byte(status.warnings)
    assert warnings.urgent_replacement and warnings.memory_90 and warnings.ofd_timeout
    assert warnings.critical_error and not warnings.resource_exhausting
    assert status.current_document is not None and fn.FN_DOCUMENTS[status.current_document]


def test_fn_status_is_the_drives_record_without_serial_or_last_document() -> None:
    """0x78/2 fills what it tells; serial and last document come from 0x78/1 and /3."""
    status = fn.parse_fn_status(reply(0x78, "2", "35", "0", "2"))
    assert status == FnStatus(
        serial=None,
        phase=3,
        warnings=2,
        shift_open=True,
        current_document=0,
        document_data_received=False,
    )


@pytest.mark.parametrize(
    "values",
    [
        ("0", "0", "0", "000000", "000000"),
        ("0", "0", "", "", ""),
        ("0", "", "", "", ""),
        ("0", "0"),
        ("0",),
        ("1", "0", "1234", "150324", "101530"),  # count 0 wins over leftovers
    ],
)
def test_empty_ofd_queue_forms(values: tuple[str, ...]) -> None:
    queue = fn.parse_ofd_queue(reply(0x78, "7", *values))
    assert (queue.unsent_count, queue.first_unsent_number, queue.first_unsent_at) == (0, None, None)


def test_ofd_queue_with_placeholder_date_and_status_bits() -> None:
    queue = fn.parse_ofd_queue(reply(0x78, "7", str(1 + 4 + 64), "5", "77", "010100", ""))
    assert (queue.unsent_count, queue.first_unsent_number, queue.first_unsent_at) == (5, 77, None)
    assert queue.exchange is not None and queue.exchange == 1 + 4 + 64  # bit 6 kept
    exchange = OfdExchangeStatus.from_byte(queue.exchange)
    assert exchange.transport_connected and exchange.awaiting_receipt and queue.reading_message
    assert fn.parse_ofd_queue(reply(0x78, "7", "1", "0")) == OfdStatus(1, False, 0, None, None)


def test_nonempty_ofd_queue_needs_its_number() -> None:
    with pytest.raises(MalformedAnswerError):
        fn.parse_ofd_queue(reply(0x78, "7", "0", "2"))


def test_fn_versions_five_or_seven_values() -> None:
    short = fn.parse_fn_versions(reply(0x78, "14", "fn v 2.0 ", "1", "2", "665.2.14", "2"))
    assert short == fn.FnVersions("fn v 2.0", 1, 2, "665.2.14", 2, None, None)
    long = fn.parse_fn_versions(reply(0x78, "14", "v", "1", "4", "x", "4", "4", "4"))
    assert (long.fn_registered_ffd, long.fn_max_ffd) == (4, 4)
    assert fn.FFD_VERSIONS[4] == "1.2"


def test_other_fn_reads() -> None:
    assert fn.parse_fn_serial(reply(0x78, "1", "9999078900012345")) == "9999078900012345"
    assert fn.parse_last_fd_number(reply(0x78, "3", " 4711")) == 4711
    shift = ShiftParameters(open=True, number=12, receipt_number=34)
    assert fn.parse_fn_shift(reply(0x78, "6", "12", "1", "34")) == shift
    memory = FnResource(documents_left=240000, storage_30d_free_kb=512)
    assert fn.parse_fn_memory(reply(0x78, "18", "240000", "512")) == memory
    assert fn.parse_ffd_support(reply(0x78, "22", "4", "4")) == fn.FfdSupport(4, 4)
    last = fn.parse_last_registration(reply(0x78, "19", "1", "3141592653", "010124", "100000"))
    assert last == fn.LastRegistration(1, 3141592653, datetime(2024, 1, 1, 10))
    assert fn.parse_shift_open_fd(reply(0x78, "17", "4700")) == 4700
    assert fn.parse_registration_fd(reply(0x78, "5", "1")) == 1
    assert fn.parse_fn_registered_at(reply(0x78, "4", "010124", "100000")) == datetime(
        2024, 1, 1, 10
    )


def test_marking_reads() -> None:
    notices = fn.parse_marking_notices(reply(0x79, "6", "1", "3", "17", "020224", "120000", "40"))
    assert (notices.queue_size, notices.storage_fill_pct) == (3, 40)
    status = fn.parse_marking_status(reply(0x79, "0", "1", "0", "0", "0", "0", "3"))
    assert status.storage_fill_level == 3


# ------------------------------------------------------------------ checking replies


def test_wrong_command_or_sub_echo_is_unexpected() -> None:
    with pytest.raises(UnexpectedAnswerError):
        fn.parse_fn_status(reply(0x02, "2", "35", "0", "0"))
    with pytest.raises(UnexpectedAnswerError):
        fn.parse_fn_status(reply(0x78, "7", "35", "0", "0"))
    with pytest.raises(MalformedAnswerError):
        fn.parse_fn_status(reply(0x78))


@pytest.mark.parametrize("value", ["3.5", "-1", "0x10", "1 2", "№1", "1" * 30])
def test_non_decimal_integers_are_malformed(value: str) -> None:
    with pytest.raises(MalformedAnswerError):
        rec.parse_printer_status(reply(0x04, value))


@pytest.mark.parametrize("code", sorted(ERROR_MEANINGS))
def test_every_error_code_is_raised_with_its_meaning(code: int) -> None:
    with pytest.raises(DeviceError) as caught:
        answer_fields(reply(0x78, error=code), 0x78, 7)
    assert caught.value.meaning == ERROR_MEANINGS[code]
    assert isinstance(caught.value, UnsupportedCommandError) == (code in (0x02, 0x03))


def test_undocumented_error_code() -> None:
    with pytest.raises(DeviceError) as caught:
        rec.parse_status(reply(0x00, error=0xEE))
    assert (caught.value.code, caught.value.meaning) == (0xEE, "undocumented error")
