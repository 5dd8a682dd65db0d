"""Reads a real ШТРИХ-ЛАЙТ-02Ф answers and third-party clients send (issue 13 item 8), and
the paper-out submodes, over a real TCP socket and a pty, decoded by the codec's parsers.

15h (exchange parameters), 1Ah/1Bh (money and operating registers), 6Bh (error text)
and every field a table's 2Dh declares must be answered, not refused with 37h/5Dh/33h.
Paper running out in the middle of a document is submode 2; submode 3 comes only once
paper is back, and lasts until B0h "continue printing" arrives (which the agent never
sends; a third-party client here does).
"""

from __future__ import annotations

import pytest
from sim_wire import SerialWire, SocketWire, answer_of, request

from kktmon.protocol.errors import DeviceError
from kktmon.protocol.shtrih.commands import ALLOWLIST, answer_payload
from kktmon.protocol.shtrih.frame import Frame
from kktmon.protocol.shtrih.records import (
    parse_error_text,
    parse_exchange_parameters,
    parse_field_structure,
    parse_money_register,
    parse_operating_register,
    parse_short_status,
    parse_table_structure,
    parse_table_value,
    table_int,
    table_text,
)
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.shtrih.emulator import COMMANDS, ShtrihEmulator
from kktmon.simulators.shtrih.tables import TABLES


def error_of(frame: Frame, code: int) -> int:
    with pytest.raises(DeviceError) as caught:
        answer_payload(frame, code)
    return caught.value.code


def read_field(wire: SocketWire, table: int, field: int) -> Frame:
    return answer_of(wire, request(0x1F, bytes([table, 1, 0, field])))


def test_every_allowlisted_command_has_an_answer() -> None:
    assert set(COMMANDS) == set(ALLOWLIST)


def test_exchange_parameters(wire: SocketWire, emulator: ShtrihEmulator) -> None:
    params = parse_exchange_parameters(answer_of(wire, request(0x15, b"\x00")))
    assert (params.baud, params.byte_timeout_ms) == (115200, 50)
    cashier = answer_of(wire, request(0x15, b"\x00", password=1))
    assert error_of(cashier, 0x15) == 0x4F  # the system administrator's, like tables
    assert emulator.forbidden_received == []


def test_money_and_operating_registers(wire: SocketWire, emulator: ShtrihEmulator) -> None:
    cash = parse_money_register(answer_of(wire, request(0x1A, bytes([241]), password=1)))
    assert (cash.operator, cash.value) == (1, 0)
    extended = parse_money_register(answer_of(wire, request(0x1A, (4096).to_bytes(2, "little"))))
    assert extended.operator == 30
    counter = parse_operating_register(answer_of(wire, request(0x1B, bytes([152]))))
    assert (counter.operator, counter.value) == (30, 0)
    too_long = answer_of(wire, request(0x1B, b"\x98\x00\x00"))
    assert error_of(too_long, 0x1B) == 0x7E
    assert emulator.forbidden_received == []


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0x4D, "Вносимая безналичной оплатой сумма больше суммы чека"),
        (0x00, "Ошибок нет"),
        (0xEE, "Неизвестный код ошибки"),
    ],
)
def test_error_text_over_a_pty(serial_wire: SerialWire, code: int, text: str) -> None:
    frame = answer_of(serial_wire, request(0x6B, bytes([code]), password=None), stray=False)
    assert parse_error_text(frame) == text


@pytest.mark.parametrize("number", sorted(TABLES))
def test_every_field_a_table_declares_answers(wire: SocketWire, number: int) -> None:
    """2Dh's field count is a promise: 1Fh and 2Eh answer each field 1..N, 33h after."""
    structure = parse_table_structure(answer_of(wire, request(0x2D, bytes([number]))))
    assert (structure.name, structure.rows) == (TABLES[number].name, 1)
    for field in range(1, structure.fields + 1):
        spec = parse_field_structure(answer_of(wire, request(0x2E, bytes([number, field]))))
        value = parse_table_value(read_field(wire, number, field))
        assert len(value) == spec.size, f"table {number} field {field}"
    beyond = structure.fields + 1
    assert error_of(read_field(wire, number, beyond), 0x1F) == 0x33
    assert error_of(answer_of(wire, request(0x2E, bytes([number, beyond]))), 0x2E) == 0x33


def test_table_1_is_the_type_and_mode_table(wire: SocketWire) -> None:
    structure = parse_table_structure(answer_of(wire, request(0x2D, b"\x01")))
    assert (structure.name, structure.fields) == ("Тип и режим кассы", 48)
    number_in_hall = parse_field_structure(answer_of(wire, request(0x2E, b"\x01\x01")))
    assert (number_in_hall.name, number_in_hall.is_text, number_in_hall.size) == (
        "Номер кассы в магазине",
        False,
        1,
    )
    assert table_int(parse_table_value(read_field(wire, 1, 1))) == 1  # 11h's number in hall


def test_table_18_holds_the_state(wire: SocketWire, state: DeviceState) -> None:
    state.fn.serial = "9999078902019097"
    structure = parse_table_structure(answer_of(wire, request(0x2D, b"\x12")))
    assert structure.fields == 13
    facts = {field: table_text(parse_table_value(read_field(wire, 18, field))) for field in (2, 4)}
    assert facts == {2: state.inn, 4: "9999078902019097"}  # field 4: the FN serial
    fn_serial = parse_field_structure(answer_of(wire, request(0x2E, b"\x12\x04")))
    assert (fn_serial.name, fn_serial.is_text) == ("Fs serial number", True)
    assert table_int(parse_table_value(read_field(wire, 18, 5))) == state.registration.tax_systems


# ------------------------------------------------------------------ paper-out submodes


def submode(wire: SocketWire) -> tuple[int, bool]:
    """The submode and the optical paper sensor (flags bit 7) as 10h reports them."""
    status = parse_short_status(answer_of(wire, request(0x10)))
    return status.submode, status.flags.receipt_paper


def test_paper_running_out_mid_document_waits_for_continue_printing(
    wire: SocketWire, state: DeviceState, emulator: ShtrihEmulator
) -> None:
    state.faults.busy_printing = True
    assert submode(wire) == (5, True)  # printing
    state.printer.paper = "out"
    assert submode(wire) == (2, False)  # active paper-out, never 3 while paper is out
    assert submode(wire) == (2, False)
    state.printer.paper = "ok"
    assert submode(wire) == (3, True)  # paper back: waits for B0h
    assert submode(wire) == (3, True)  # and keeps waiting: reads do not resume it
    assert emulator.forbidden_received == []
    assert answer_payload(answer_of(wire, request(0xB0)), 0xB0) == b"\x1e"  # a POS does this
    assert emulator.forbidden_received == [0xB0]
    assert submode(wire) == (5, True)  # the suspended document prints again
    state.faults.busy_printing = False
    assert submode(wire) == (0, True)


def test_continue_printing_without_paper_changes_nothing(
    wire: SocketWire, state: DeviceState
) -> None:
    state.printer.paper, state.printer.suspended = "out", True
    assert submode(wire) == (2, False)
    answer_payload(answer_of(wire, request(0xB0)), 0xB0)
    assert submode(wire) == (2, False)
    state.printer.paper = "near_end"
    assert submode(wire) == (3, True)


def test_paper_out_while_idle_is_passive_and_needs_no_continue(
    wire: SocketWire, state: DeviceState
) -> None:
    state.printer.paper = "out"
    assert submode(wire) == (1, False)
    state.printer.paper = "ok"
    assert submode(wire) == (0, True)
    assert not state.printer.suspended
