"""Golden-frame tests: atol.md section 8 (E1-E8) against both ATOL link layers.

Requests must come out of the builders byte for byte on FE and on LEGACY; answers must
decode, on either layer, to exactly the facts the reference reads from them; error
answers must be raised, typed, with the code and its meaning.
"""

from __future__ import annotations

import atol_vectors as av
import pytest

from kktmon.protocol.atol import frame as atol
from kktmon.protocol.atol import legacy as atol_legacy
from kktmon.protocol.atol.commands import (
    DEFAULT_PASSWORD,
    FN_STATUS,
    answer_payload,
    encode_request,
    password_bytes,
    request_fn,
)
from kktmon.protocol.atol.frame import (
    TaskStatus,
    crc8,
    decode_packet,
    encode_packet,
    parse_task_reply,
    task_abort,
    task_ack,
    task_add,
)
from kktmon.protocol.errors import (
    ConfigError,
    DeviceError,
    MalformedAnswerError,
    UnexpectedAnswerError,
)

EXCHANGES = av.EXCHANGES
IDS = [ex.name for ex in EXCHANGES]


def resolve(result: object, path: str) -> object:
    for part in filter(None, path.split(".")):
        result = getattr(result, part)
    return result


def facts_of(exchange: av.Exchange, answer: bytes) -> dict[str, object]:
    result = exchange.parse(answer)
    return {path: resolve(result, path) for path in exchange.facts}


# ------------------------------------------------------------------ frame level


def test_crc8_check_value() -> None:
    assert crc8(b"123456789") == 0xF7


@pytest.mark.parametrize(
    ("name", "frame"), av.all_fe_frames(), ids=[n for n, _ in av.all_fe_frames()]
)
def test_fe_frames_decode_and_reencode(name: str, frame: bytes) -> None:
    packet = decode_packet(frame)
    assert len(packet.data) == frame[1] | frame[2] << 7
    assert encode_packet(packet.id, packet.data) == frame


@pytest.mark.parametrize(
    ("name", "frame"), av.all_legacy_frames(), ids=[n for n, _ in av.all_legacy_frames()]
)
def test_legacy_frames_decode_and_reencode(name: str, frame: bytes) -> None:
    data = atol_legacy.decode_frame(frame)
    assert atol_legacy.encode_frame(data) == frame
    assert atol_legacy.lrc(frame[1:]) == 0  # the LRC closes the XOR of everything after STX


def test_e1_abort_and_reply() -> None:
    assert encode_packet(0x06, task_abort()) == av.E1_ABORT
    reply = decode_packet(av.E1_REPLY)
    assert reply.id == 0x06
    assert parse_task_reply(reply.data).status is TaskStatus.RESULT
    assert crc8(b"\x06\xc4") == 0x58 and crc8(b"\x06\xa3") == 0x74


def test_e3_async_result_with_escaped_crc() -> None:
    packet = decode_packet(av.E3_ASYNC)
    assert packet.id == atol.ASYNC_ID
    assert crc8(bytes([packet.id]) + packet.data) == 0xFE  # sent as FD EE
    reply = parse_task_reply(packet.data)
    assert (reply.status, reply.tid, reply.answer) == (
        TaskStatus.ASYNC_RESULT,
        0x57,
        av.E3_ASYNC_ANSWER,
    )
    assert answer_payload(reply.answer, 0x91, 0x12) == b"\x00"  # "55 00 00": OK
    assert encode_packet(0x08, task_ack(0x57)) == av.E3_ACK


def test_e4_escaped_data_byte_and_unescaped_crc() -> None:
    exchange = EXCHANGES[1]
    assert b"\xfd\xed" in exchange.fe_answer
    packet = decode_packet(exchange.fe_answer)
    assert packet.data[-4:] == bytes.fromhex("FD 01 00 00")
    assert exchange.fe_answer[-1] == 0xED == crc8(bytes([packet.id]) + packet.data)


def test_e6_bcd_hour_is_stuffed() -> None:
    exchange = EXCHANGES[3]
    assert b"\x10\x10\x30\x45" in exchange.legacy_answer
    assert atol_legacy.lrc(exchange.legacy_request[1:-1]) == 0x3C


def test_e7_stuffing_reference_vector() -> None:
    assert atol_legacy.stuff(av.E7_DATA) == av.E7_FRAME[1:-2]
    assert atol_legacy.encode_frame(av.E7_DATA) == av.E7_FRAME
    assert atol_legacy.decode_frame(av.E7_FRAME) == av.E7_DATA


def test_e8_subcommand_dle_is_stuffed() -> None:
    assert atol_legacy.encode_frame(request_fn(0x10).body) == EXCHANGES[4].legacy_request


# ------------------------------------------------------------------ requests


@pytest.mark.parametrize("exchange", EXCHANGES, ids=IDS)
def test_fe_request_is_byte_exact(exchange: av.Exchange) -> None:
    body = task_add(exchange.tid, exchange.build())
    assert encode_packet(exchange.packet_id, body) == exchange.fe_request


@pytest.mark.parametrize("exchange", EXCHANGES, ids=IDS)
def test_legacy_request_is_byte_exact(exchange: av.Exchange) -> None:
    assert atol_legacy.encode_frame(exchange.build().body) == exchange.legacy_request


@pytest.mark.parametrize("exchange", EXCHANGES, ids=IDS)
def test_both_layers_carry_the_same_task(exchange: av.Exchange) -> None:
    fe = decode_packet(exchange.fe_request).data
    assert fe[:3] == bytes([atol.TASK_ADD, atol.NEED_RESULT, exchange.tid])
    assert fe[3:] == atol_legacy.decode_frame(exchange.legacy_request) == exchange.build().body


# ------------------------------------------------------------------ answers


@pytest.mark.parametrize("exchange", EXCHANGES, ids=IDS)
def test_fe_answer_decodes_to_documented_facts(exchange: av.Exchange) -> None:
    packet = decode_packet(exchange.fe_answer)
    assert packet.id == exchange.packet_id
    reply = parse_task_reply(packet.data)
    assert reply.status is TaskStatus.RESULT
    assert reply.answer == exchange.answer
    assert facts_of(exchange, reply.answer) == exchange.facts


@pytest.mark.parametrize("exchange", EXCHANGES, ids=IDS)
def test_legacy_answer_decodes_to_documented_facts(exchange: av.Exchange) -> None:
    answer = atol_legacy.decode_frame(exchange.legacy_answer)
    assert answer == exchange.answer
    assert facts_of(exchange, answer) == exchange.facts


@pytest.mark.parametrize("vector", av.ERROR_VECTORS, ids=[v.name for v in av.ERROR_VECTORS])
def test_error_answer_is_raised_with_code_and_meaning(vector: av.ErrorVector) -> None:
    with pytest.raises(DeviceError) as caught:
        vector.parse(vector.answer)
    assert type(caught.value) is vector.error
    assert (caught.value.code, caught.value.command) == (vector.code, vector.command)
    assert caught.value.meaning == vector.meaning
    assert caught.value.vendor == "atol"


def test_error_01_counts_as_success() -> None:
    answer = bytearray(EXCHANGES[4].answer)
    answer[1] = 0x01  # "control tape processed"
    assert EXCHANGES[4].parse(bytes(answer)) == EXCHANGES[4].parse(EXCHANGES[4].answer)


@pytest.mark.parametrize(
    ("answer", "code", "error"),
    [
        (b"", 0x3F, MalformedAnswerError),
        (b"\x55", 0xA4, MalformedAnswerError),
        (b"\x44\x00", 0xA4, UnexpectedAnswerError),  # a state where 55 was due
        (b"\x55\x00\x00", 0x3F, UnexpectedAnswerError),  # 55 00 is no state
        (b"\x00\x01", 0x45, UnexpectedAnswerError),
    ],
)
def test_answer_shapes_are_checked(answer: bytes, code: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        answer_payload(answer, code)


def test_status_code_has_no_error_byte() -> None:
    assert answer_payload(b"\x55\x8c\x00", 0x45) == b"\x8c\x00"  # mode 0Ch submode 8


# ------------------------------------------------------------------ password


@pytest.mark.parametrize(("password", "wire"), [(0, "00 00"), (30, "00 30"), (1234, "12 34")])
def test_password_is_big_endian_bcd(password: int, wire: str) -> None:
    assert password_bytes(password) == bytes.fromhex(wire)
    assert encode_request(0x3F, password=password).body == bytes.fromhex(wire) + b"\x3f"


@pytest.mark.parametrize("password", [-1, 10000])
def test_password_out_of_range_is_a_config_error(password: int) -> None:
    with pytest.raises(ConfigError):
        request_fn(FN_STATUS, password=password)


def test_default_password_is_factory_zero() -> None:
    assert DEFAULT_PASSWORD == 0
    assert request_fn(FN_STATUS).body[:2] == b"\x00\x00"
