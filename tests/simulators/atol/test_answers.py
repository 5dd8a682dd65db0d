"""Every command of the ATOL allowlist answered from the shared state, on both link layers.

Requests go over real TCP through the codec's host link machines (``FeLink``,
``LegacyLink``), as a driver sends them; answers are read with the codec's parsers and
compared with the facts of the state. Forbidden commands are sent as raw bytes, since
the codec refuses to build them. The same default scenario drives the Shtrih-M
emulator; both registers must tell the same facts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

import pytest
from atol_sim_wire import fe_ask, legacy_transact, run_host
from atol_vectors import h
from sim_wire import NOW, SocketWire

from kktmon.drivers.atol import reads
from kktmon.drivers.wire import Read
from kktmon.protocol.atol import commands as cmd
from kktmon.protocol.atol import records as rec
from kktmon.protocol.atol.commands import ALLOWLIST, NEVER_SEND, Request, answer_payload
from kktmon.protocol.atol.legacy import LegacyLink, encode_frame
from kktmon.protocol.atol.link import FeLink
from kktmon.protocol.errors import DeviceError, UnsupportedCommandError
from kktmon.protocol.shtrih import records as shtrih_rec
from kktmon.protocol.shtrih.commands import request_fn as shtrih_request_fn
from kktmon.protocol.shtrih.frame import decode_frame, split_command
from kktmon.simulators.atol.emulator import AtolEmulator, LinkLayer
from kktmon.simulators.scenario import DeviceState, Faults, builtin_scenarios, load_builtin
from kktmon.simulators.server import TcpServer
from kktmon.simulators.shtrih.emulator import ShtrihEmulator


@pytest.fixture(params=["fe", "legacy"])
def layer(request: pytest.FixtureRequest) -> LinkLayer:
    value: LinkLayer = request.param
    return value


@pytest.fixture
def emulator(state: DeviceState, layer: LinkLayer) -> AtolEmulator:
    """Overrides the Shtrih-M emulator of conftest, so its ``tcp`` serves this one."""
    return AtolEmulator(state, clock=lambda: NOW, seed=7, link_layer=layer)


_FN_STATUS_FIELDS = (
    "phase",
    "shift_open",
    "warnings",
    "last_document_at",
    "serial",
    "last_document_number",
)
_SHIFT_FIELDS = ("open", "number", "receipt_number")
_OFD_FIELDS = ("unsent_count", "first_unsent_number", "first_unsent_at")
_REG_FIELDS = ("registered_at", "inn", "rnm")


def ask(server: TcpServer, emulator: AtolEmulator, request: Request) -> bytes:
    link = FeLink(request) if emulator.link_layer == "fe" else LegacyLink(request)
    return run_host(server.url, link)


def _all_requests() -> list[Request]:
    requests = []
    for code, shape in ALLOWLIST.items():
        subs: list[int | None] = [*sorted(shape.sub_codes)] or [None]
        for sub in subs:
            data = b"" if sub is None else bytes([sub]) + bytes(shape.params)
            requests.append(Request(code, data))
    return requests


def test_every_allowlisted_command_is_answered_without_error(
    tcp: TcpServer, emulator: AtolEmulator
) -> None:
    for request in _all_requests():
        answer = ask(tcp, emulator, request)
        answer_payload(answer, request.code, request.sub)  # raises on an error code
    assert emulator.received == [request.body[2:] for request in _all_requests()]
    assert emulator.forbidden_received == []


#: The only refusals a real register gives the driver's reads in a built-in scenario: an
#: FN that never opened fiscal mode has no registration (quirk Q6).
EXPECTED_REFUSALS = {"not_fiscal": {(cmd.FN_QUERY, cmd.FN_REGISTRATION): 0xD4}}


@pytest.mark.parametrize("name", builtin_scenarios())
def test_no_read_of_the_drivers_table_is_refused_in_any_scenario(
    name: str, layer: LinkLayer
) -> None:
    """No 7Ah ("this model cannot") for what a real register answers, on either path."""
    state = load_builtin(name, now=NOW)
    state.faults = Faults()  # the link faults are other tests' business
    emulator = AtolEmulator(state, clock=lambda: NOW, link_layer=layer)
    refused: dict[tuple[int, int | None], int] = {}
    with TcpServer(emulator) as server:
        for read in vars(reads).values():
            if isinstance(read, Read):
                request = cmd.request(read.command, read.sub, read.params)
                try:
                    link = FeLink(request) if layer == "fe" else LegacyLink(request)
                    answer_payload(run_host(server.url, link), request.code, request.sub)
                except DeviceError as exc:
                    refused[read.command, read.sub] = exc.code
    assert refused == EXPECTED_REFUSALS.get(name, {})


def test_device_state_3fh_tells_the_state(
    tcp: TcpServer, emulator: AtolEmulator, state: DeviceState
) -> None:
    answer = rec.parse_state(ask(tcp, emulator, cmd.request_state()))
    assert answer.device_time == NOW
    assert answer.flags.fiscalized and answer.flags.shift_open and answer.flags.fn_active
    assert answer.flags.paper_present and not answer.flags.cover_open
    assert answer.serial_low == state.serial[-8:]
    assert answer.model == 61
    assert answer.last_closed_shift == state.shift.number - 1  # Q7: the last closed one
    assert answer.next_receipt == state.shift.receipts + 1
    assert answer.interface == 6  # Ethernet: we are on TCP


def test_clock_offset_shows_in_3fh(
    tcp: TcpServer, emulator: AtolEmulator, state: DeviceState
) -> None:
    state.clock_offset_s = -90
    answer = rec.parse_state(ask(tcp, emulator, cmd.request_state()))
    assert answer.device_time == NOW - timedelta(seconds=90)


@pytest.mark.parametrize(
    "case",
    [
        ("ok", False, False, 0x00),
        ("near_end", False, False, 0x80),
        ("out", False, False, 0x01),
        ("ok", True, True, 0x04),
    ],
    ids=["ok", "near_end", "out", "cover_and_fault"],
)
def test_printer_conditions_in_45h_and_3fh(
    tcp: TcpServer,
    emulator: AtolEmulator,
    state: DeviceState,
    case: tuple[Literal["ok", "near_end", "out"], bool, bool, int],
) -> None:
    paper, cover, fault, flags = case
    state.printer.paper = paper
    state.printer.cover_open = cover
    state.printer.fault = fault
    status = rec.parse_status_code(ask(tcp, emulator, cmd.request_status_code()))
    assert status.printer.raw == flags
    device = rec.parse_state(ask(tcp, emulator, cmd.request_state()))
    assert device.flags.paper_present is (paper != "out")
    assert device.flags.cover_open is cover


def test_identity_a5h_9dh_and_serial_register(
    tcp: TcpServer, emulator: AtolEmulator, state: DeviceState
) -> None:
    # The shared default is a Shtrih-M: an ATOL register is an АТОЛ 30Ф of its own.
    assert (state.model, state.model_code) == ("ШТРИХ-ЛАЙТ-02Ф", None)
    device = rec.parse_device_type(ask(tcp, emulator, cmd.request_device_type()))
    assert (device.device_type, device.model, device.name) == (1, 61, "АТОЛ 30Ф")
    assert device.name == device.model_name, "the name the driver's table gives code 61"
    assert (device.version, device.build) == ("3.0", 5199)
    kkt = rec.parse_firmware(ask(tcp, emulator, cmd.request_firmware(cmd.FIRMWARE_KKT)))
    assert (kkt.version, kkt.build) == ("3.0", 5199)
    fm = rec.parse_firmware(ask(tcp, emulator, cmd.request_firmware(cmd.FIRMWARE_FISCAL_MEMORY)))
    assert fm.version == "2.13"  # "fn v 2.13"
    serial = rec.parse_serial_register(ask(tcp, emulator, cmd.request_register(cmd.REG_SERIAL)))
    assert serial == state.serial[-14:]  # ATOL serials have 14 digits


@pytest.mark.parametrize(
    ("named", "expected"),
    [
        (("АТОЛ 55Ф", None), (62, "АТОЛ 55Ф")),  # a name the table knows brings its code
        (("Казначей ФА", 76), (76, "Казначей ФА")),  # a code names the model as given
        (("АТОЛ 30Ф", None), (61, "АТОЛ 30Ф")),
    ],
)
def test_a_scenario_naming_an_atol_model_is_that_model(
    tcp: TcpServer,
    emulator: AtolEmulator,
    state: DeviceState,
    named: tuple[str, int | None],
    expected: tuple[int, str],
) -> None:
    state.model, state.model_code = named
    state.firmware, state.firmware_build = "3.1", 6205
    device = rec.parse_device_type(ask(tcp, emulator, cmd.request_device_type()))
    assert (device.model, device.name) == expected
    assert (device.version, device.build) == ("3.1", 6205)
    assert rec.parse_state(ask(tcp, emulator, cmd.request_state())).model == expected[0]
    kkt = rec.parse_firmware(ask(tcp, emulator, cmd.request_firmware(cmd.FIRMWARE_BOOT)))
    assert (kkt.version, kkt.build) == ("3.1", 6205)


def test_registers_tell_shift_clock_ffd_and_unsent(
    tcp: TcpServer, emulator: AtolEmulator, state: DeviceState
) -> None:
    state.ofd.first_unsent_at = NOW - timedelta(days=2)
    state.ofd.unsent_count = 40
    shift = rec.parse_shift_register(ask(tcp, emulator, cmd.request_register(cmd.REG_SHIFT)))
    assert (shift.state, shift.stamp) == (1, state.shift.opened_at)
    clock = rec.parse_register(ask(tcp, emulator, cmd.request_register(cmd.REG_CLOCK)), 0x11)
    assert clock == bytes.fromhex(NOW.strftime("%d%m%y%H%M%S"))
    ffd = rec.parse_ffd_versions(ask(tcp, emulator, cmd.request_register(cmd.REG_FFD)))
    assert (ffd.kkt, ffd.fn) == ("1.2", "1.2")
    assert rec.parse_unsent_register(ask(tcp, emulator, cmd.request_register(cmd.REG_UNSENT))) == 40
    extended = ask(tcp, emulator, cmd.request_register(cmd.REG_EXTENDED_ERROR))
    assert rec.parse_extended_error(extended) == 0
    state.shift.state = "closed"
    shift = rec.parse_shift_register(ask(tcp, emulator, cmd.request_register(cmd.REG_SHIFT)))
    assert (shift.state, shift.stamp) == (0, None)


def test_fn_queries_tell_the_fn(tcp: TcpServer, emulator: AtolEmulator, state: DeviceState) -> None:
    fn = state.fn
    status = rec.parse_fn_status(ask(tcp, emulator, cmd.request_fn(cmd.FN_STATUS)))
    assert (status.phase, status.serial, status.warnings) == (3, fn.serial, 0)
    assert status.last_document_number == fn.last_document_number
    assert status.last_document_at == fn.last_document_at.replace(second=0, microsecond=0)
    assert rec.parse_fn_serial(ask(tcp, emulator, cmd.request_fn(cmd.FN_SERIAL))) == fn.serial
    validity = rec.parse_fn_validity(ask(tcp, emulator, cmd.request_fn(cmd.FN_VALIDITY)))
    assert validity.valid_until == fn.valid_until
    assert (validity.registrations_left, validity.registrations_done) == (11, 1)
    firmware = rec.parse_fn_firmware(ask(tcp, emulator, cmd.request_fn(cmd.FN_FIRMWARE)))
    assert (firmware.version, firmware.is_release) == (fn.firmware, True)
    resource = rec.parse_fn_resource(ask(tcp, emulator, cmd.request_fn(cmd.FN_RESOURCE)))
    assert (resource.documents_left, resource.storage_30d_free_kb) == (245231, 1023)
    days = answer_payload(ask(tcp, emulator, cmd.request_fn(cmd.FN_DAYS_LEFT)), 0xA4, 0x3B)
    assert int.from_bytes(days, "little") == (fn.valid_until - NOW.date()).days
    ffd = answer_payload(ask(tcp, emulator, cmd.request_fn(cmd.FN_FFD)), 0xA4, 0x3A)
    assert ffd == bytes([4, 4])


def test_shift_ofd_and_registration_queries(
    tcp: TcpServer, emulator: AtolEmulator, state: DeviceState
) -> None:
    state.ofd.first_unsent_at = datetime(2026, 1, 10, 9, 5)
    state.ofd.unsent_count = 4
    state.ofd.exchange_status = 0x02
    shift = rec.parse_shift_parameters(ask(tcp, emulator, cmd.request_fn(cmd.FN_SHIFT)))
    assert (shift.open, shift.number, shift.receipt_number) == (True, 42, 5)
    ofd = rec.parse_ofd_status(ask(tcp, emulator, cmd.request_fn(cmd.FN_OFD_STATUS)))
    assert (ofd.exchange, ofd.unsent_count, ofd.first_unsent_number) == (2, 4, 422)
    assert ofd.first_unsent_at == datetime(2026, 1, 10, 9, 5)
    assert rec.parse_unconfirmed_count(ask(tcp, emulator, cmd.request_fn(cmd.FN_UNCONFIRMED))) == 4
    reg = rec.parse_registration(ask(tcp, emulator, cmd.request_fn(cmd.FN_REGISTRATION)))
    assert (reg.inn, reg.rnm) == (state.inn, state.rnm)


def test_registration_query_refused_before_fiscalization(
    tcp: TcpServer, emulator: AtolEmulator, state: DeviceState
) -> None:
    state.fn.phase = 1
    answer = ask(tcp, emulator, cmd.request_fn(cmd.FN_REGISTRATION))
    with pytest.raises(DeviceError) as caught:
        rec.parse_registration(answer)
    assert caught.value.code == 0xD4
    assert not rec.parse_state(ask(tcp, emulator, cmd.request_state())).flags.fiscalized


def test_wrong_access_password_is_refused_8ch(tcp: TcpServer, emulator: AtolEmulator) -> None:
    answer = ask(tcp, emulator, cmd.request_fn(cmd.FN_STATUS, password=1234))
    assert answer == h("55 8C")
    assert ask(tcp, emulator, cmd.request_device_type(password=1234)) == h("8C")
    with pytest.raises(DeviceError) as caught:
        rec.parse_state(ask(tcp, emulator, cmd.request_state(password=1)))
    assert caught.value.code == 0x8C
    emulator.password = 1234
    assert rec.parse_fn_status(ask(tcp, emulator, cmd.request_fn(0x30, password=1234))).phase == 3


def test_commands_the_model_lacks_answer_7ah(
    tcp: TcpServer, emulator: AtolEmulator, state: DeviceState
) -> None:
    state.unsupported = ["A43D", "A5"]
    with pytest.raises(UnsupportedCommandError):
        rec.parse_fn_resource(ask(tcp, emulator, cmd.request_fn(cmd.FN_RESOURCE)))
    assert ask(tcp, emulator, cmd.request_device_type()) == h("7A")
    assert rec.parse_fn_status(ask(tcp, emulator, cmd.request_fn(cmd.FN_STATUS))).phase == 3
    assert emulator.forbidden_received == []


# ------------------------------------------------------------------ forbidden commands


def test_never_send_commands_are_refused_and_logged_fe(state: DeviceState) -> None:
    emulator = AtolEmulator(state, clock=lambda: NOW, link_layer="fe")
    with TcpServer(emulator) as server:
        wire = SocketWire(server.url)
        try:
            for tid, code in enumerate(sorted(NEVER_SEND)):
                reply = fe_ask(wire, 2 * tid, bytes([0xC1, 0x01, tid, 0x00, 0x00, code]))
                assert reply == h("A4 55 7A"), f"{code:02X}h"
                assert fe_ask(wire, 2 * tid + 1, bytes([0xC2, tid])) == h("A3")
            # An allowed command with the wrong parameters, and archive reads.
            assert fe_ask(wire, 0xD0, h("C1 01 D0 00 00 91 12")) == h("A4 55 7A")
            assert fe_ask(wire, 0xD1, h("C1 01 D1 00 00 A4 45")) == h("A4 55 7A")
            assert fe_ask(wire, 0xD2, h("C5 01 D2")) == h("B4 00")  # AckAdd: not ours
        finally:
            wire.close()
    expected = [bytes([code]) for code in sorted(NEVER_SEND)] + [h("91 12"), h("A4 45")]
    assert emulator.received == expected
    assert emulator.forbidden_received == [*expected, h("C5 01 D2")]


def test_never_send_commands_are_refused_and_logged_legacy(state: DeviceState) -> None:
    emulator = AtolEmulator(state, clock=lambda: NOW, link_layer="legacy")
    with TcpServer(emulator) as server:
        wire = SocketWire(server.url)
        try:
            for code in (0x5A, 0x56, 0x46, 0x6B):
                answer = legacy_transact(wire, encode_frame(bytes([0x00, 0x00, code])))
                assert answer == h("02 55 7A 03 2C")
        finally:
            wire.close()
    assert emulator.forbidden_received == [h("5A"), h("56"), h("46"), h("6B")]


# ------------------------------------------------------------------ one scenario, two vendors

Parser = Callable[[Any], object]
# (A4h sub-command, Shtrih-M FN command, ATOL parser, Shtrih-M parser, fields compared)
TWINS: list[tuple[int, int, Parser, Parser, tuple[str, ...]]] = [
    (0x30, 0xFF01, rec.parse_fn_status, shtrih_rec.parse_fn_status, _FN_STATUS_FIELDS),
    (0x31, 0xFF02, rec.parse_fn_serial, shtrih_rec.parse_fn_serial, ()),
    (0x32, 0xFF03, rec.parse_fn_validity, shtrih_rec.parse_fn_validity, ("valid_until",)),
    (0x33, 0xFF04, rec.parse_fn_firmware, shtrih_rec.parse_fn_firmware, ("version", "is_release")),
    (0x10, 0xFF40, rec.parse_shift_parameters, shtrih_rec.parse_shift_parameters, _SHIFT_FIELDS),
    (0x20, 0xFF39, rec.parse_ofd_status, shtrih_rec.parse_ofd_status, _OFD_FIELDS),
    (0x42, 0xFF3F, rec.parse_unconfirmed_count, shtrih_rec.parse_unconfirmed_count, ()),
    (0x43, 0xFF09, rec.parse_registration, shtrih_rec.parse_registration, _REG_FIELDS),
]


def _told(parse: Parser, answer: object, fields: tuple[str, ...]) -> object:
    """What a driver learns from an answer: the compared fields, or that it was refused
    (each vendor numbers its errors its own way)."""
    try:
        value = parse(answer)
    except DeviceError:
        return "refused"
    return tuple(getattr(value, name) for name in fields) if fields else value


@pytest.mark.parametrize("name", builtin_scenarios())
def test_every_builtin_scenario_tells_the_same_fn_facts_as_the_shtrih_emulator(
    name: str,
) -> None:
    state = load_builtin(name, now=NOW)
    atol = AtolEmulator(state, clock=lambda: NOW)
    shtrih = ShtrihEmulator(state, clock=lambda: NOW)
    for sub, code, atol_parse, shtrih_parse, fields in TWINS:
        atol_answer = atol.execute(cmd.request_fn(sub).body, "tcp").data
        shtrih_answer = split_command(shtrih.execute(decode_frame(shtrih_request_fn(code)).body))
        told = _told(atol_parse, atol_answer, fields)
        assert told == _told(shtrih_parse, shtrih_answer, fields), f"{name}: A4h {sub:02X}h"


def test_default_scenario_over_the_wire_matches_the_shtrih_emulator(
    tcp: TcpServer, emulator: AtolEmulator, state: DeviceState
) -> None:
    shtrih = ShtrihEmulator(state, clock=lambda: NOW)
    for sub, code, atol_parse, shtrih_parse, fields in TWINS:
        atol_answer = ask(tcp, emulator, cmd.request_fn(sub))
        shtrih_answer = split_command(shtrih.execute(decode_frame(shtrih_request_fn(code)).body))
        told = _told(atol_parse, atol_answer, fields)
        assert told == _told(shtrih_parse, shtrih_answer, fields), f"A4h {sub:02X}h"
