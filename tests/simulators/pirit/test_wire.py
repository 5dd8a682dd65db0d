"""The Pirit simulator over a real TCP socket and a real pty, byte for byte.

The worked examples of pirit.md section 6 are reproduced from states that hold the
facts each example decodes to; the link rules of section 2 are checked on the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from pirit_sim_wire import ask, read_reply, request
from pirit_vectors import ERROR_VECTORS, FORBIDDEN, LINK_CHECK, VECTORS, h
from sim_wire import NOW, SerialWire, SocketWire, Wire, quiet

from kktmon.protocol.pirit.commands import NEVER_SEND
from kktmon.protocol.pirit.frame import ACK, ENQ, LF, decode_reply_frame
from kktmon.protocol.pirit.records import parse_clock, parse_error_reason, parse_status
from kktmon.simulators.pirit.emulator import PiritEmulator
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import TcpServer

# ------------------------------------------------------------------ worked examples


def _ex3(state: DeviceState) -> None:
    state.shift.state = "closed"


def _ex4(state: DeviceState) -> None:
    pass  # the default state: shift open two hours ago, fiscal, nothing printing


def _ex5(state: DeviceState) -> None:
    state.fn.warnings = 2


def _ex6(state: DeviceState) -> None:
    state.ofd.exchange_status = 2
    state.ofd.unsent_count = 3
    state.ofd.first_unsent_number = 1234
    state.ofd.first_unsent_at = datetime(2024, 3, 15, 10, 15, 30)


def _ex7(state: DeviceState) -> None:
    state.shift.opened_at = datetime(2024, 3, 14, 8, 30, 12)


def _ex8(state: DeviceState) -> None:
    state.unsupported = ["78/18"]


_BY_NAME = {vector.name[:3]: vector for vector in VECTORS}
# (name, setup, request, documented reply): examples 3, 4 and 8 print only the reply,
# so their request is the one that reply answers, with the packet id it echoes.
EXAMPLES: list[tuple[str, Callable[[DeviceState], None], bytes, bytes]] = [
    ("Ex3", _ex3, request(0x00, packet_id=0x20), _BY_NAME["Ex3"].reply or b""),
    ("Ex4", _ex4, request(0x00, packet_id=0x22), _BY_NAME["Ex4"].reply or b""),
    *[
        (name, setup, _BY_NAME[name].request or b"", _BY_NAME[name].reply or b"")
        for name, setup in (("Ex5", _ex5), ("Ex6", _ex6), ("Ex7", _ex7))
    ],
    ("Ex8", _ex8, request(0x78, 18, packet_id=0x26), ERROR_VECTORS[0].reply),
]


@pytest.mark.parametrize(
    ("setup", "frame", "reply"), [pytest.param(*e[1:], id=e[0]) for e in EXAMPLES]
)
def test_worked_example_is_reproduced_over_tcp(
    pwire: SocketWire,
    state: DeviceState,
    setup: Callable[[DeviceState], None],
    frame: bytes,
    reply: bytes,
) -> None:
    setup(state)
    pwire.send(frame)
    assert read_reply(pwire) == reply
    assert quiet(pwire) == b""


@pytest.mark.parametrize("name", ["Ex4", "Ex6", "Ex8"])
def test_worked_example_is_reproduced_over_a_pty(
    pserial: SerialWire, state: DeviceState, name: str
) -> None:
    _, setup, frame, reply = next(e for e in EXAMPLES if e[0] == name)
    setup(state)
    pserial.send(frame)
    assert read_reply(pserial) == reply


def test_example_1_link_check_and_example_2_request(
    pwire: SocketWire, pirit: PiritEmulator
) -> None:
    enq, ack = LINK_CHECK
    pwire.send(enq)
    assert pwire.read(1) == ack
    assert quiet(pwire) == b""
    reply = ask(pwire, _BY_NAME["Ex2"].request or b"")
    assert (reply.packet_id, reply.command, reply.error) == (0x21, 0x00, 0)
    assert reply.text() == ("0", "4", "0")
    assert pirit.received == [0x00]
    assert pirit.forbidden_received == []
    assert [r.packet_id for r in pirit.requests] == [0x21]


def test_example_8_leaves_reason_66_for_06h_1(pwire: SocketWire, state: DeviceState) -> None:
    state.unsupported = ["78/18"]
    assert ask(pwire, request(0x78, 18)).error == 0x03
    reason = parse_error_reason(ask(pwire, request(0x06, 1, packet_id=0x22)))
    assert reason.code == 66
    assert reason.meaning == "bad request (sub) number"


# ------------------------------------------------------------------ link rules


def test_enq_is_acknowledged_even_inside_a_frame(pwire: SocketWire) -> None:
    frame = request(0x00)
    pwire.send(frame[:5] + bytes([ENQ]))
    assert pwire.read(1) == bytes([ACK])
    pwire.send(frame[5:])
    assert decode_reply_frame(read_reply(pwire)).text() == ("0", "4", "0")


def test_a_frame_with_a_bad_checksum_answers_07h_and_is_not_logged(
    pwire: SocketWire, pirit: PiritEmulator
) -> None:
    pwire.send(h("02 50 49 52 49 21 30 30 03 32 31"))
    assert read_reply(pwire) == h("02 21 30 30 30 37 03 32 35")  # checksum 25h
    assert pirit.received == []


def test_a_frame_stalled_for_200_ms_answers_05h(pwire: SocketWire) -> None:
    frame = request(0x78, 2, packet_id=0x30)
    pwire.send(frame[:9])
    reply = decode_reply_frame(read_reply(pwire))
    assert (reply.packet_id, reply.command, reply.error, reply.fields) == (0x30, 0x78, 0x05, ())
    assert ask(pwire, frame).error == 0  # the register listens again


def test_a_frame_stalled_before_its_command_gets_no_reply(
    pwire: SocketWire, pirit: PiritEmulator
) -> None:
    pwire.send(request(0x00)[:6])
    assert quiet(pwire, 0.4) == b""
    assert ask(pwire, request(0x04)).error == 0
    assert pirit.received == [0x04]


def test_line_noise_is_ignored_and_a_frame_after_it_is_answered(pwire: SocketWire) -> None:
    pwire.send(b"\x30\x31\xff\x06")
    assert quiet(pwire) == b""
    pwire.send(b"\x00\x15" + request(0x04))
    assert read_reply(pwire) == h("02 21 30 34 30 30 30 1C 03 30 41")  # mask 0


def test_a_bare_line_feed_is_logged_as_forbidden(pwire: SocketWire, pirit: PiritEmulator) -> None:
    pwire.send(bytes([LF]))
    assert quiet(pwire) == b""
    assert pirit.forbidden_received == [LF]
    assert pirit.received == [LF]


def test_every_never_send_command_is_refused_with_02h_and_logged(
    pwire: SocketWire, pirit: PiritEmulator
) -> None:
    sent = []
    for command, subs in sorted(NEVER_SEND.items()):
        for sub in sorted(subs) if subs is not None else [None]:
            fields = () if sub is None else (sub,)
            reply = ask(pwire, request(command, *fields))
            assert (reply.command, reply.error, reply.fields) == (command, 0x02, ()), command
            sent.append(command)
    assert pirit.forbidden_received == sent
    assert pirit.received == sent


@pytest.mark.parametrize(("command", "fields"), [pytest.param(c, f, id=n) for n, c, f in FORBIDDEN])
def test_each_state_changing_example_is_refused(
    pwire: SocketWire, pirit: PiritEmulator, command: int, fields: tuple[str, ...]
) -> None:
    assert ask(pwire, request(command, *fields)).error == 0x02
    assert pirit.forbidden_received == [command]


@pytest.mark.parametrize(
    ("command", "fields"),
    [
        pytest.param(0x78, ("7", "0", "0"), id="78h with offset and size"),
        pytest.param(0x78, ("07",), id="sub not in canonical decimal"),
        pytest.param(0x03, ("1",), id="03h: allowed by the reference, not by the gate"),
    ],
)
def test_variants_outside_the_gate_are_forbidden_too(
    pwire: SocketWire, pirit: PiritEmulator, command: int, fields: tuple[str, ...]
) -> None:
    assert ask(pwire, request(command, *fields)).error == 0x02
    assert pirit.forbidden_received == [command]


#: Commands without parameters, raw, in both forms real registers answer (pirit.md 2.1):
#: no data bytes (Crystal, Dreamkas' C++ library, our driver; id 21h) and one empty
#: field, a lone FS (Dreamkas' Java example; id 22h).
BOTH_FORMS = [
    pytest.param(
        0x00,
        h("02 50 49 52 49 21 30 30 03 32 30"),
        h("02 50 49 52 49 22 30 30 1C 03 33 46"),
        id="00h",
    ),
    pytest.param(
        0x04,
        h("02 50 49 52 49 21 30 34 03 32 34"),
        h("02 50 49 52 49 22 30 34 1C 03 33 42"),
        id="04h",
    ),
    pytest.param(
        0x13,
        h("02 50 49 52 49 21 31 33 03 32 32"),
        h("02 50 49 52 49 22 31 33 1C 03 33 44"),
        id="13h",
    ),
]


def _both_forms_agree(wire: Wire, command: int, bare: bytes, empty_field: bytes) -> None:
    no_data, one_empty = ask(wire, bare), ask(wire, empty_field)
    assert (no_data.packet_id, no_data.command, no_data.error) == (0x21, command, 0)
    assert (one_empty.packet_id, one_empty.command, one_empty.error) == (0x22, command, 0)
    assert one_empty.fields == no_data.fields != ()


@pytest.mark.parametrize(("command", "bare", "empty_field"), BOTH_FORMS)
def test_a_command_without_parameters_is_answered_in_both_forms_over_tcp(
    pwire: SocketWire, pirit: PiritEmulator, command: int, bare: bytes, empty_field: bytes
) -> None:
    _both_forms_agree(pwire, command, bare, empty_field)
    assert [r.fields for r in pirit.requests] == [(), (b"",)]  # sent as they came
    assert pirit.received == [command, command]
    assert pirit.forbidden_received == []


@pytest.mark.parametrize(("command", "bare", "empty_field"), BOTH_FORMS)
def test_a_command_without_parameters_is_answered_in_both_forms_over_a_pty(
    pserial: SerialWire, pirit: PiritEmulator, command: int, bare: bytes, empty_field: bytes
) -> None:
    _both_forms_agree(pserial, command, bare, empty_field)
    assert pirit.forbidden_received == []


def test_unsupported_whole_command_answers_02h_but_is_not_forbidden(
    pwire: SocketWire, state: DeviceState, pirit: PiritEmulator
) -> None:
    state.unsupported = ["04"]
    assert ask(pwire, request(0x04)).error == 0x02
    assert ask(pwire, request(0x00)).error == 0
    assert pirit.received == [0x04, 0x00]
    assert pirit.forbidden_received == []


def test_an_unsupported_sub_leaves_the_other_subs_working(
    pwire: SocketWire, state: DeviceState, pirit: PiritEmulator
) -> None:
    state.unsupported = ["78/18", "FF63"]
    assert ask(pwire, request(0x78, 18)).error == 0x03
    assert ask(pwire, request(0x78, 1)).text() == ("1", state.fn.serial)
    assert ask(pwire, request(0x02, 99)).error == 0x03  # allowed, unknown to the model
    assert pirit.forbidden_received == []


def test_a_wrong_password_answers_06h(pwire: SocketWire, pirit: PiritEmulator) -> None:
    reply = ask(pwire, request(0x00, password="DRRB"))
    assert (reply.error, reply.fields) == (0x06, ())
    pirit.password = "DRRB"  # the Belarus firmware's default
    assert ask(pwire, request(0x00, password="DRRB")).error == 0
    assert pirit.received == [0x00, 0x00]


def test_device_time_follows_the_host_clock_and_the_offset(
    pwire: SocketWire, state: DeviceState
) -> None:
    state.clock_offset_s = -3600
    assert parse_clock(ask(pwire, request(0x13))) == NOW - timedelta(hours=1)


def test_a_new_connection_gets_a_fresh_link_but_the_same_device(
    pirit_tcp: TcpServer[PiritEmulator], pirit: PiritEmulator, state: DeviceState
) -> None:
    first = SocketWire(pirit_tcp.url)
    first.send(request(0x00)[:7])  # leaves a frame half sent
    first.close()
    state.shift.state = "closed"
    second = SocketWire(pirit_tcp.url)
    try:
        status = parse_status(ask(second, request(0x00)))
    finally:
        second.close()
    assert not status.flags.shift_open
    assert pirit.received == [0x00]


def test_canonical_exchange_over_a_pty(pserial: SerialWire, pirit: PiritEmulator) -> None:
    pserial.send(bytes([ENQ]))
    assert pserial.read(1) == bytes([ACK])
    assert parse_status(ask(pserial, request(0x00))).flags.shift_open
    assert quiet(pserial) == b""
    assert pirit.received == [0x00]
