"""Command answers of the Shtrih-M emulator, decoded with the project's own parsers.

In-process (``ShtrihEmulator.execute``): the wire is covered by ``test_shtrih_wire.py``;
here each answer's meaning is checked against the state it came from.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sim_wire import NOW

from kktmon.protocol.errors import DeviceError, UnsupportedCommandError
from kktmon.protocol.shtrih.commands import answer_payload
from kktmon.protocol.shtrih.frame import Frame, command_bytes, split_command
from kktmon.protocol.shtrih.records import (
    parse_archive_document,
    parse_field_structure,
    parse_fn_firmware,
    parse_fn_serial,
    parse_fn_status,
    parse_long_status,
    parse_model_parameters,
    parse_ofd_status,
    parse_registration,
    parse_short_status,
    parse_table_structure,
    parse_table_value,
    parse_unconfirmed_count,
    table_int,
    table_text,
)
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.shtrih.emulator import ShtrihEmulator

PWD = (30).to_bytes(4, "little")


def ask(emulator: ShtrihEmulator, code: int, data: bytes = b"", password: bytes = PWD) -> Frame:
    return split_command(emulator.execute(command_bytes(code) + password + data))


def error_of(frame: Frame, code: int) -> int:
    with pytest.raises(DeviceError) as caught:
        answer_payload(frame, code)
    return caught.value.code


def table(emulator: ShtrihEmulator, number: int, field: int, row: int = 1) -> Frame:
    return ask(emulator, 0x1F, bytes([number]) + row.to_bytes(2, "little") + bytes([field]))


@pytest.mark.parametrize(
    ("state_name", "age_h", "mode"),
    [("open", 2, 2), ("open", 25, 3), ("expired", 2, 3), ("closed", 2, 4)],
)
def test_mode_follows_the_shift_and_its_age(
    emulator: ShtrihEmulator, state: DeviceState, state_name: str, age_h: int, mode: int
) -> None:
    state.shift.opened_at = NOW - timedelta(hours=age_h)
    state.shift.state = state_name  # type: ignore[assignment]
    assert parse_short_status(ask(emulator, 0x10)).mode == mode
    assert parse_long_status(ask(emulator, 0x11)).mode == mode


@pytest.mark.parametrize(
    ("printer", "busy", "expected"),
    [
        (("ok", False), False, (0x0292, 0)),
        (("near_end", False), False, (0x0290, 0)),
        (("out", False), False, (0x0210, 1)),
        (("out", False), True, (0x0210, 2)),  # ran out mid-document: active paper out
        (("ok", True), False, (0x0492, 0)),
        (("ok", False), True, (0x0292, 5)),
    ],
)
def test_printer_state_shows_in_flags_and_submode(
    emulator: ShtrihEmulator,
    state: DeviceState,
    printer: tuple[str, bool],
    busy: bool,
    expected: tuple[int, int],
) -> None:
    state.printer.paper, state.printer.cover_open = printer  # type: ignore[assignment]
    state.faults.busy_printing = busy
    status = parse_short_status(ask(emulator, 0x10))
    assert (status.flags.raw, status.submode) == expected
    assert status.last_print_result is None


def test_printer_fault_adds_the_last_print_result_byte(
    emulator: ShtrihEmulator, state: DeviceState
) -> None:
    state.printer.fault = True
    assert parse_short_status(ask(emulator, 0x10)).last_print_result == 2


def test_status_commands_accept_any_operator_and_echo_it(emulator: ShtrihEmulator) -> None:
    status = parse_short_status(ask(emulator, 0x10, password=(5).to_bytes(4, "little")))
    assert status.operator == 5


@pytest.mark.parametrize("code", [0xFF01, 0x1F, 0xFF0A])
def test_fn_and_table_commands_need_the_system_administrator(
    emulator: ShtrihEmulator, code: int
) -> None:
    data = b"\x12\x01\x00\x01" if code in (0x1F, 0xFF0A) else b""
    assert error_of(ask(emulator, code, data, (29).to_bytes(4, "little")), code) == 0x4F


def test_a_request_of_the_wrong_length_gets_7eh(emulator: ShtrihEmulator) -> None:
    assert error_of(ask(emulator, 0xFF01, password=b"\x1e\x00"), 0xFF01) == 0x7E


def test_long_status_carries_serial_tail_inn_and_last_closed_shift(
    emulator: ShtrihEmulator,
) -> None:
    status = parse_long_status(ask(emulator, 0x11))
    assert (status.serial_low, status.inn, status.last_closed_shift) == (17798, "9706048530", 41)
    assert status.device_time == NOW


def test_model_parameters_point_at_the_default_tables(emulator: ShtrihEmulator) -> None:
    params = parse_model_parameters(split_command(emulator.execute(b"\xf7\x01")))
    assert params.fiscal_drive_supported
    assert (params.fs_table, params.ofd_table, params.ffd_table, params.ffd_field) == (
        18,
        19,
        17,
        17,
    )


@pytest.mark.parametrize(
    ("number", "field", "expected"),
    [(18, 1, "0392190008017798"), (18, 3, "0001234567012345"), (18, 7, 'ООО "Ромашка"')],
)
def test_table_text_fields(
    emulator: ShtrihEmulator, number: int, field: int, expected: str
) -> None:
    assert table_text(parse_table_value(table(emulator, number, field))) == expected


def test_table_binary_fields(emulator: ShtrihEmulator, state: DeviceState) -> None:
    state.ffd.device = "1.05"
    assert table_int(parse_table_value(table(emulator, 17, 17))) == 2
    assert table_int(parse_table_value(table(emulator, 19, 2))) == 7777


def test_table_errors(emulator: ShtrihEmulator) -> None:
    assert error_of(table(emulator, 99, 1), 0x1F) == 0x5D
    assert error_of(table(emulator, 18, 14), 0x1F) == 0x33  # 2Dh says 13 fields
    assert error_of(table(emulator, 18, 1, row=2), 0x1F) == 0x33


def test_table_and_field_structure(emulator: ShtrihEmulator) -> None:
    structure = parse_table_structure(ask(emulator, 0x2D, b"\x12"))
    assert (structure.rows, structure.fields) == (1, 13)
    field = parse_field_structure(ask(emulator, 0x2E, b"\x11\x11"))
    assert (field.is_text, field.size) == (False, 1)
    assert parse_field_structure(ask(emulator, 0x2E, b"\x12\x01")).is_text
    assert error_of(ask(emulator, 0x2D, b"\x63"), 0x2D) == 0x5D


def test_fn_commands_answer_from_the_state(emulator: ShtrihEmulator, state: DeviceState) -> None:
    assert parse_fn_serial(ask(emulator, 0xFF02)) == state.fn.serial
    firmware = parse_fn_firmware(ask(emulator, 0xFF04))
    assert (firmware.version, firmware.is_release) == ("fn v 2.13", True)
    assert parse_unconfirmed_count(ask(emulator, 0xFF3F)) == 0
    status = parse_fn_status(ask(emulator, 0xFF01))
    assert (status.shift_open, status.last_document_number) == (True, 425)


@pytest.mark.parametrize(("ffd", "ofd_inn"), [("1.2", "7704211201"), ("1.05", None)])
def test_registration_layout_follows_the_registered_ffd(
    emulator: ShtrihEmulator, state: DeviceState, ffd: str, ofd_inn: str | None
) -> None:
    state.ffd.registered = ffd  # type: ignore[assignment]
    registration = parse_registration(ask(emulator, 0xFF09))
    assert (registration.inn, registration.rnm, registration.ofd_inn) == (
        "9706048530",
        "0001234567012345",
        ofd_inn,
    )


def test_ofd_status_of_an_empty_queue(emulator: ShtrihEmulator) -> None:
    status = parse_ofd_status(ask(emulator, 0xFF39))
    assert (status.unsent_count, status.first_unsent_number, status.first_unsent_at) == (
        0,
        None,
        None,
    )


def test_ofd_status_with_an_explicit_first_number(
    emulator: ShtrihEmulator, state: DeviceState
) -> None:
    state.ofd.first_unsent_at = NOW - timedelta(days=3)
    state.ofd.unsent_count = 2
    state.ofd.first_unsent_number = 400
    status = parse_ofd_status(ask(emulator, 0xFF39))
    assert (status.unsent_count, status.first_unsent_number) == (2, 400)
    assert parse_unconfirmed_count(ask(emulator, 0xFF3F)) == 2


def test_archive_walk_finds_the_shift_opening(emulator: ShtrihEmulator, state: DeviceState) -> None:
    """The driver's recipe for opened_at (reference 8.14) works against the archive."""
    number = state.fn.last_document_number
    while True:
        doc = parse_archive_document(ask(emulator, 0xFF0A, number.to_bytes(4, "little")))
        if doc.doc_type == 2 and doc.shift_number == state.shift.number:
            break
        number -= 1
    assert number == 420
    assert doc.at == state.shift.opened_at.replace(second=0, microsecond=0)  # type: ignore[union-attr]


def test_archive_errors(emulator: ShtrihEmulator, state: DeviceState) -> None:
    assert error_of(ask(emulator, 0xFF0A, (426).to_bytes(4, "little")), 0xFF0A) == 0x08
    state.fn.phase = 1
    assert error_of(ask(emulator, 0xFF0A, (420).to_bytes(4, "little")), 0xFF0A) == 0x02
    assert error_of(ask(emulator, 0xFF09), 0xFF09) == 0x02


def test_post_fiscal_archive_is_still_readable(
    emulator: ShtrihEmulator, state: DeviceState
) -> None:
    state.fn.phase = 7
    doc = parse_archive_document(ask(emulator, 0xFF0A, (1).to_bytes(4, "little")))
    assert doc.doc_type == 1


def test_error_text(emulator: ShtrihEmulator) -> None:
    text = answer_payload(ask(emulator, 0x6B, b"\x4f", password=b""), 0x6B)
    assert text.decode("cp1251") == "Неверный пароль"  # the register's own words


def test_unsupported_raises_the_typed_error_in_the_parser(
    emulator: ShtrihEmulator, state: DeviceState
) -> None:
    state.unsupported = ["FF63", "10"]
    with pytest.raises(UnsupportedCommandError):
        answer_payload(ask(emulator, 0xFF63), 0xFF63)
    with pytest.raises(UnsupportedCommandError):
        answer_payload(ask(emulator, 0x10), 0x10)
    assert emulator.forbidden_received == []
