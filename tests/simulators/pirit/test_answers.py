"""What the Pirit simulator answers, read back over TCP with the codec's parsers.

Every read command of the allowlist is asked of a state and its answer compared with
the state's facts; the built-in scenario files are then served by the Pirit and the
Shtrih-M simulators side by side and must tell the same facts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pirit_sim_wire import ask, request
from sim_wire import NOW, SocketWire, answer_of
from sim_wire import request as shtrih_request

from kktmon.protocol.errors import ConfigError, DeviceError, UnsupportedCommandError
from kktmon.protocol.fn import FnResource, OfdStatus, ShiftParameters
from kktmon.protocol.pirit import fn_records as fn
from kktmon.protocol.pirit import records as rec
from kktmon.protocol.shtrih import records as shtrih
from kktmon.simulators.pirit.emulator import PiritEmulator
from kktmon.simulators.scenario import (
    DeviceState,
    Faults,
    builtin_scenarios,
    load_builtin,
    load_scenario,
)
from kktmon.simulators.server import TcpServer
from kktmon.simulators.shtrih.emulator import ShtrihEmulator


@pytest.fixture
def pwire(state: DeviceState) -> Iterator[SocketWire]:
    with TcpServer(PiritEmulator(state, clock=lambda: NOW)) as server:
        client = SocketWire(server.url)
        yield client
        client.close()


def test_register_information_02h(pwire: SocketWire, state: DeviceState) -> None:
    assert rec.parse_serial(ask(pwire, request(0x02, 1))) == state.serial
    assert rec.parse_firmware_id(ask(pwire, request(0x02, 2))) == state.firmware_build
    inn = ask(pwire, request(0x02, 3))
    assert inn.text()[1] == state.inn.ljust(12)  # padded on the wire (quirk 13)
    assert rec.parse_inn(inn) == state.inn
    assert rec.parse_rnm(ask(pwire, request(0x02, 4))) == state.rnm
    last = rec.parse_last_fiscal_operation(ask(pwire, request(0x02, 5)))
    assert last == state.fn.last_document_at.replace(microsecond=0)
    registered = rec.parse_registration_date(ask(pwire, request(0x02, 6)))
    assert registered == state.registration.registered_at.date()
    assert rec.parse_info_int(ask(pwire, request(0x02, 8)), 8) == state.fn.last_document_number + 1
    expiry = rec.parse_fn_expiry(ask(pwire, request(0x02, 14)))
    assert expiry.valid_until == state.fn.valid_until
    assert expiry.days_left == (state.fn.valid_until - NOW.date()).days
    assert rec.parse_shift_opened_at(ask(pwire, request(0x02, 17))) == state.shift.opened_at
    model = rec.parse_model(ask(pwire, request(0x02, 21)))
    assert (model.code, model.name) == (9, "Pirit 2SF")
    taxes = rec.parse_tax_modes(ask(pwire, request(0x02, 23)))
    assert taxes.tax_systems == state.registration.tax_systems
    assert rec.parse_firmware_version(ask(pwire, request(0x02, 70))) == state.firmware


def test_fn_information_78h(pwire: SocketWire, state: DeviceState) -> None:
    assert fn.parse_fn_serial(ask(pwire, request(0x78, 1))) == state.fn.serial
    status = fn.parse_fn_status(ask(pwire, request(0x78, 2)))
    assert (status.phase, status.shift_open, status.warnings) == (3, True, 0)
    assert fn.parse_last_fd_number(ask(pwire, request(0x78, 3))) == state.fn.last_document_number
    at = fn.parse_fn_registered_at(ask(pwire, request(0x78, 4)))
    assert at == state.registration.registered_at.replace(microsecond=0)
    assert fn.parse_registration_fd(ask(pwire, request(0x78, 5))) == state.registration.fd_number
    shift = fn.parse_fn_shift(ask(pwire, request(0x78, 6)))
    assert shift == ShiftParameters(True, state.shift.number, state.shift.receipts)
    queue = fn.parse_ofd_queue(ask(pwire, request(0x78, 7)))
    assert queue == OfdStatus(0, False, 0, None, None)
    versions = fn.parse_fn_versions(ask(pwire, request(0x78, 14)))
    assert (versions.fn_firmware, versions.fn_type, versions.fn_max_ffd) == ("fn v 2.13", 1, 4)
    first = state.fn.last_document_number - state.shift.receipts
    assert fn.parse_shift_open_fd(ask(pwire, request(0x78, 17))) == first
    assert state.archive_document(first).doc_type == 2  # type: ignore[union-attr]
    memory = fn.parse_fn_memory(ask(pwire, request(0x78, 18)))
    assert memory == FnResource(state.fn.documents_left, state.fn.storage_30d_free_kb)
    last = fn.parse_last_registration(ask(pwire, request(0x78, 19)))
    assert (last.fd_number, last.fiscal_sign) == (1, state.registration.fiscal_sign)
    assert fn.parse_ffd_support(ask(pwire, request(0x78, 22))) == fn.FfdSupport(4, 4)


def test_helpers_01h_05h_06h_11h_13h_81h(pwire: SocketWire, state: DeviceState) -> None:
    assert rec.parse_shift_number(ask(pwire, request(0x01, 1))) == state.shift.number
    for sub in (1, 2, 3, 4, *range(7, 14)):
        assert rec.parse_service_value(ask(pwire, request(0x05, sub)), sub).isdigit()
    assert rec.parse_error_reason(ask(pwire, request(0x06, 1))).code == 0
    assert not rec.parse_fn_lock(ask(pwire, request(0x06, 2))).fn_full
    assert rec.parse_setting(ask(pwire, request(0x11, 77, 0))) == state.ofd.server
    assert rec.parse_setting(ask(pwire, request(0x11, 78, 0))) == str(state.ofd.port)
    assert rec.parse_setting(ask(pwire, request(0x11, 71, 0))) == state.registration.ofd_inn
    assert ask(pwire, request(0x11, 20, 0)).error == 0x03  # the password stays unreadable
    assert rec.parse_clock(ask(pwire, request(0x13))) == NOW
    assert rec.parse_drawer_open(ask(pwire, request(0x81))) is False


def test_marking_79h_only_with_a_marking_fn(pwire: SocketWire, state: DeviceState) -> None:
    with pytest.raises(UnsupportedCommandError):
        fn.parse_marking_notices(ask(pwire, request(0x79, 6)))
    state.fn.marking_fill_pct = 85
    assert fn.parse_marking_notices(ask(pwire, request(0x79, 6))).storage_fill_pct == 85
    assert fn.parse_marking_status(ask(pwire, request(0x79, 0))).storage_fill_level == 2


def test_status_and_printer_follow_the_state(pwire: SocketWire, state: DeviceState) -> None:
    state.shift.state = "expired"
    state.fn.warnings = 0x80
    state.printer.paper = "out"
    state.printer.cover_open = True
    status = rec.parse_status(ask(pwire, request(0x00)))
    assert status.flags.shift_open and status.flags.shift_over_24h
    assert status.fatal.fn_fatal
    printer = rec.parse_printer_status(ask(pwire, request(0x04)))
    assert printer.paper_out and printer.cover_open and not printer.not_ready
    state.printer.fault = True
    assert rec.parse_printer_status(ask(pwire, request(0x04))).not_ready


def test_a_shift_open_more_than_24_hours_sets_bit_3(pwire: SocketWire, state: DeviceState) -> None:
    state.shift.opened_at = NOW - timedelta(hours=25)
    assert rec.parse_status(ask(pwire, request(0x00))).flags.shift_over_24h


def test_an_unregistered_fn_is_non_fiscal_with_no_registration(
    pwire: SocketWire, state: DeviceState
) -> None:
    state.fn.phase = 1
    state.shift.state = "closed"
    flags = rec.parse_status(ask(pwire, request(0x00))).flags
    assert flags.non_fiscal and flags.fn_not_registered and not flags.shift_open
    with pytest.raises(DeviceError) as caught:
        fn.parse_last_registration(ask(pwire, request(0x78, 19)))
    assert caught.value.code == 0x42


def test_post_fiscal_fn_reports_the_archive_closed(pwire: SocketWire, state: DeviceState) -> None:
    state.fn.phase = 7
    state.fn.documents_left = 0
    assert rec.parse_status(ask(pwire, request(0x00))).flags.fn_archive_closed
    assert rec.parse_fn_lock(ask(pwire, request(0x06, 2))).fn_full


def test_ffd_105_firmware_sends_the_short_layouts(pwire: SocketWire, state: DeviceState) -> None:
    state.ffd.device = "1.05"
    assert rec.parse_fn_expiry(ask(pwire, request(0x02, 14))).days_left is None
    versions = fn.parse_fn_versions(ask(pwire, request(0x78, 14)))
    assert versions.register_ffd == 2 and versions.fn_max_ffd is None
    with pytest.raises(UnsupportedCommandError):
        fn.parse_ffd_support(ask(pwire, request(0x78, 22)))


def test_a_full_ofd_queue_and_a_model_code(pwire: SocketWire, state: DeviceState) -> None:
    state.ofd.unsent_count = 7
    state.ofd.first_unsent_at = datetime(2026, 1, 1, 9, 0, 5)
    state.model_code = 5
    queue = fn.parse_ofd_queue(ask(pwire, request(0x78, 7)))
    expected_first = state.fn.last_document_number - 6
    assert queue == OfdStatus(0, False, 7, expected_first, datetime(2026, 1, 1, 9, 0, 5))
    assert rec.parse_model(ask(pwire, request(0x02, 21))).name == "Viki Print 80+"


# ------------------------------------------------------------------ one scenario, two vendors


def _pirit_facts(state: DeviceState) -> dict[str, object]:
    with TcpServer(PiritEmulator(state, clock=lambda: NOW)) as server:
        wire = SocketWire(server.url)
        try:
            status = fn.parse_fn_status(ask(wire, request(0x78, 2)))
            shift = fn.parse_fn_shift(ask(wire, request(0x78, 6)))
            queue = fn.parse_ofd_queue(ask(wire, request(0x78, 7)))
            memory = fn.parse_fn_memory(ask(wire, request(0x78, 18)))
            return {
                "fn_serial": fn.parse_fn_serial(ask(wire, request(0x78, 1))),
                "phase": status.phase,
                "warnings": status.warnings,
                "last_fd": fn.parse_last_fd_number(ask(wire, request(0x78, 3))),
                "valid_until": rec.parse_fn_expiry(ask(wire, request(0x02, 14))).valid_until,
                "shift": (shift.number, shift.open, shift.receipt_number),
                "ofd": (queue.unsent_count, queue.first_unsent_number, _minute(queue)),
                "memory": (memory.documents_left, memory.storage_30d_free_kb),
            }
        finally:
            wire.close()


def _minute(record: OfdStatus) -> datetime | None:
    at = record.first_unsent_at
    return None if at is None else at.replace(second=0)  # FF39h has no seconds


def _shtrih_facts(state: DeviceState) -> dict[str, object]:
    with TcpServer(ShtrihEmulator(state, clock=lambda: NOW)) as server:
        wire = SocketWire(server.url)
        try:
            status = shtrih.parse_fn_status(answer_of(wire, shtrih_request(0xFF01)))
            shift = shtrih.parse_shift_parameters(answer_of(wire, shtrih_request(0xFF40)))
            queue = shtrih.parse_ofd_status(answer_of(wire, shtrih_request(0xFF39)))
            memory = shtrih.parse_fn_resource(answer_of(wire, shtrih_request(0xFF63)))
            validity = shtrih.parse_fn_validity(answer_of(wire, shtrih_request(0xFF03)))
            return {
                "fn_serial": status.serial,
                "phase": status.phase,
                "warnings": status.warnings,
                "last_fd": status.last_document_number,
                "valid_until": validity.valid_until,
                "shift": (shift.number, shift.open, shift.receipt_number),
                "ofd": (queue.unsent_count, queue.first_unsent_number, _minute(queue)),
                "memory": (memory.documents_left, memory.storage_30d_free_kb),
            }
        finally:
            wire.close()


@pytest.mark.parametrize("name", builtin_scenarios())
def test_a_scenario_file_tells_the_same_facts_through_both_vendors(name: str) -> None:
    facts = []
    for read in (_pirit_facts, _shtrih_facts):
        state = load_builtin(name, now=NOW)
        state.faults = Faults()  # the facts are the point here; faults have their tests
        facts.append(read(state))
    assert facts[0] == facts[1]
    assert facts[0]["fn_serial"] == load_builtin(name, now=NOW).fn.serial


def test_the_flaky_link_scenario_still_answers_through_its_faults() -> None:
    state = load_builtin("flaky_link", now=NOW)
    with TcpServer(PiritEmulator(state, clock=lambda: NOW, seed=3)) as server:
        wire = SocketWire(server.url)
        try:
            refused = [ask(wire, request(0x78, 1)).error for _ in range(3)]
        finally:
            wire.close()
    assert refused == [0x07, 0x07, 0]


def test_a_scenario_file_names_an_unsupported_sub_request(tmp_path: Path) -> None:
    path = tmp_path / "punix_less.toml"
    path.write_text('unsupported = ["78/18", "FF63"]\n', encoding="utf-8")
    state = load_scenario(path, now=NOW)
    assert state.lacks(0x78, 18) and state.lacks(0xFF63)
    assert not (state.lacks(0x78) or state.lacks(0x78, 7))
    path.write_text('unsupported = ["78/x"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unsupported\.0"):
        load_scenario(path, now=NOW)
