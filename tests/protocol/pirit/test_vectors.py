"""Golden-frame tests: the worked examples of pirit.md section 6 against the codec.

Requests come out of the builders byte for byte, replies decode to exactly the fields
and facts the reference reads from them, the error reply is raised typed with code and
meaning, and state-changing commands are refused before a byte of them exists.
"""

from __future__ import annotations

import pirit_vectors as pv
import pytest

from kktmon.protocol.errors import CommandNotAllowedError, DeviceError
from kktmon.protocol.pirit.commands import answer_fields, encode_request
from kktmon.protocol.pirit.fn_records import parse_fn_status, parse_ofd_queue
from kktmon.protocol.pirit.frame import (
    ETX,
    STX,
    Reply,
    checksum,
    decode_reply_frame,
    decode_request_frame,
    encode_reply_frame,
    encode_request_frame,
)

FRAMES = pv.all_frames()
CHECKSUMS = pv.documented_checksums()
WITH_BUILDER = [v for v in pv.VECTORS if v.build is not None]
WITH_PARSER = [v for v in pv.VECTORS if v.parse is not None]


def resolve(result: object, path: str) -> object:
    for part in filter(None, path.split(".")):
        result = getattr(result, part)
    return result


def reference_checksum(frame: bytes) -> str:
    """The reference's own check (pirit.md section 6, "Python check used")."""
    etx = frame.index(0x03)
    x = 0
    for b in frame[1 : etx + 1]:
        x ^= b
    return f"{x:02X}"


@pytest.mark.parametrize(("name", "frame", "value"), CHECKSUMS, ids=[n for n, *_ in CHECKSUMS])
def test_documented_checksum(name: str, frame: bytes, value: int) -> None:
    assert frame[0] == STX and frame[-3] == ETX
    assert checksum(frame[1:-2]) == value
    assert frame[-2:] == f"{value:02X}".encode()
    assert reference_checksum(frame) == f"{value:02X}"


@pytest.mark.parametrize(("name", "frame"), FRAMES, ids=[n for n, _ in FRAMES])
def test_example_frames_decode_and_reencode(name: str, frame: bytes) -> None:
    if frame[1:5] == b"PIRI":
        request = decode_request_frame(frame)
        assert request.password == "PIRI"
        rebuilt = encode_request_frame(request.command, request.fields, packet_id=request.packet_id)
        assert rebuilt == frame
    else:
        assert encode_reply_frame(decode_reply_frame(frame)) == frame


@pytest.mark.parametrize("vector", WITH_BUILDER, ids=[v.name for v in WITH_BUILDER])
def test_builder_produces_documented_request(vector: pv.Vector) -> None:
    assert vector.build is not None
    assert vector.build() == vector.request
    assert decode_request_frame(vector.build()).packet_id == vector.packet_id


def test_example2_is_the_no_data_form() -> None:
    request = decode_request_frame(pv.VECTORS[0].request or b"")
    assert (request.command, request.fields) == (0x00, ())


@pytest.mark.parametrize("vector", WITH_PARSER, ids=[v.name for v in WITH_PARSER])
def test_reply_fields_are_the_documented_ones(vector: pv.Vector) -> None:
    assert vector.reply is not None
    decoded = decode_reply_frame(vector.reply)
    assert decoded.text() == vector.reply_fields
    assert decoded.packet_id == vector.packet_id
    assert decoded.error == 0


@pytest.mark.parametrize("vector", WITH_PARSER, ids=[v.name for v in WITH_PARSER])
def test_reply_decodes_to_documented_facts(vector: pv.Vector) -> None:
    assert vector.parse is not None and vector.reply is not None
    result = vector.parse(decode_reply_frame(vector.reply))
    assert {path: resolve(result, path) for path in vector.facts} == vector.facts


def test_reply_echoes_the_request_id_and_command() -> None:
    for vector in pv.VECTORS:
        if vector.request is not None and vector.reply is not None:
            request = decode_request_frame(vector.request)
            reply = decode_reply_frame(vector.reply)
            assert (reply.packet_id, reply.command) == (request.packet_id, request.command)
            assert reply.fields[0] == request.fields[0]  # the sub echo (section 2.2)


def test_example1_link_check_is_one_byte_each_way() -> None:
    assert pv.LINK_CHECK == (b"\x05", b"\x06")


@pytest.mark.parametrize("vector", pv.ERROR_VECTORS, ids=[v.name for v in pv.ERROR_VECTORS])
def test_error_reply_is_raised_with_code_and_meaning(vector: pv.ErrorVector) -> None:
    decoded = decode_reply_frame(vector.reply)
    assert (decoded.command, decoded.error, decoded.fields) == (vector.command, vector.code, ())
    for parse in (parse_fn_status, parse_ofd_queue):
        with pytest.raises(DeviceError) as caught:
            parse(decoded)
        assert type(caught.value) is vector.error
        assert (caught.value.code, caught.value.meaning) == (vector.code, vector.meaning)
        assert caught.value.vendor == "pirit"
        assert caught.value.command.startswith("78h/")
        assert "03h" in str(caught.value)


def test_error_is_checked_before_the_missing_sub_echo() -> None:
    with pytest.raises(DeviceError):
        answer_fields(Reply(0x26, 0x78, 0x43), 0x78, 2)


@pytest.mark.parametrize(
    ("name", "code", "fields"), pv.FORBIDDEN, ids=[n for n, *_ in pv.FORBIDDEN]
)
def test_state_changing_commands_are_refused(name: str, code: int, fields: tuple[str, ...]) -> None:
    frame = encode_request_frame(code, fields, packet_id=0x21)  # a well-formed frame ...
    assert decode_request_frame(frame).command == code
    with pytest.raises(CommandNotAllowedError):  # ... that the gate never produces
        encode_request(code, fields, packet_id=0x21)
    with pytest.raises(CommandNotAllowedError):  # refused before the bad id is looked at
        encode_request(code, fields, packet_id=0x00)
