"""Golden-frame tests: the worked examples of shtrih-m.md section 10 against the codec.

Requests must come out of the builders byte for byte; answers must decode to exactly the
facts the reference reads from them; error answers must be raised, typed, with the code
and its meaning; state-changing commands must be refused before a byte of them exists.
"""

from __future__ import annotations

from functools import reduce
from operator import xor

import pytest
import shtrih_vectors as sv

from kktmon.protocol.errors import (
    CommandNotAllowedError,
    DeviceError,
    MalformedAnswerError,
    UnexpectedAnswerError,
    UnsupportedCommandError,
)
from kktmon.protocol.health import FnWarnings
from kktmon.protocol.shtrih.commands import answer_payload, encode_request
from kktmon.protocol.shtrih.frame import Frame, decode_frame, encode_frame, lrc
from kktmon.protocol.shtrih.records import parse_fn_status, parse_long_status

FRAMES = sv.all_frames()
WITH_BUILDER = [v for v in sv.VECTORS if v.build is not None]
WITH_PARSER = [v for v in sv.VECTORS if v.parse is not None]


def resolve(result: object, path: str) -> object:
    """Follow a dotted attribute path; ``""`` is the result itself."""
    for part in filter(None, path.split(".")):
        result = getattr(result, part)
    return result


@pytest.mark.parametrize(("name", "frame"), FRAMES, ids=[n for n, _ in FRAMES])
def test_documented_lrc_matches(name: str, frame: bytes) -> None:
    assert frame[-1] == lrc(frame[1:-1])
    assert reduce(xor, frame[1:], 0) == 0


@pytest.mark.parametrize(("name", "frame"), FRAMES, ids=[n for n, _ in FRAMES])
def test_example_frames_decode_and_reencode(name: str, frame: bytes) -> None:
    decoded = decode_frame(frame)
    assert len(decoded.body) == frame[1]
    assert encode_frame(decoded.body) == frame


@pytest.mark.parametrize("vector", WITH_BUILDER, ids=[v.name for v in WITH_BUILDER])
def test_builder_produces_documented_request(vector: sv.Vector) -> None:
    assert vector.build is not None
    assert vector.build() == vector.request


@pytest.mark.parametrize("vector", WITH_PARSER, ids=[v.name for v in WITH_PARSER])
def test_answer_decodes_to_documented_facts(vector: sv.Vector) -> None:
    assert vector.parse is not None and vector.answer is not None
    result = vector.parse(decode_frame(vector.answer))
    decoded = {path: resolve(result, path) for path in vector.facts}
    assert decoded == vector.facts


def test_answer_command_matches_request_command() -> None:
    for vector in sv.VECTORS:
        if vector.request is not None and vector.answer is not None:
            assert decode_frame(vector.answer).command == decode_frame(vector.request).command


def test_e11_is_e4_with_warning_flags() -> None:
    spliced = next(v.answer for v in sv.VECTORS if v.name.startswith("E11"))
    assert spliced == sv.E11_LITERAL
    warnings = FnWarnings.from_byte(parse_fn_status(decode_frame(sv.E11_LITERAL)).warnings or 0)
    assert warnings.resource_exhausting and warnings.ofd_timeout
    assert not (warnings.urgent_replacement or warnings.memory_90 or warnings.critical_error)
    assert warnings.raw == 0x0A


@pytest.mark.parametrize("vector", sv.ERROR_VECTORS, ids=[v.name for v in sv.ERROR_VECTORS])
def test_error_answer_is_raised_with_code_and_meaning(vector: sv.ErrorVector) -> None:
    with pytest.raises(DeviceError) as caught:
        vector.parse(decode_frame(vector.answer))
    assert type(caught.value) is vector.error
    assert caught.value.code == vector.code
    assert caught.value.meaning == vector.meaning
    assert caught.value.vendor == "shtrih"
    assert f"{vector.code:02X}h" in str(caught.value)


def test_e6_names_the_command() -> None:
    with pytest.raises(DeviceError) as caught:
        answer_payload(decode_frame(sv.h("02 02 8D 73 FC")), 0x8D)
    assert caught.value.command == "8Dh"
    assert not isinstance(caught.value, UnsupportedCommandError)


def test_e12_ff_command_error_names_the_two_byte_command() -> None:
    with pytest.raises(UnsupportedCommandError) as caught:
        parse_fn_status(decode_frame(sv.h("02 03 FF 01 37 CA")))
    assert caught.value.command == "FF01h"


def test_ff_answer_with_wrong_subcode_carries_the_error() -> None:
    # Vendor Java driver's rule (reference section 2): FF yy answering FFxx means error yy.
    with pytest.raises(UnsupportedCommandError) as caught:
        parse_fn_status(Frame(b"\xff\x37", b""))
    assert caught.value.code == 0x37


def test_answer_to_another_one_byte_command_is_unexpected() -> None:
    with pytest.raises(UnexpectedAnswerError):
        parse_long_status(decode_frame(sv.h("02 03 88 00 1E 95")))


def test_answer_without_error_byte_is_malformed() -> None:
    with pytest.raises(MalformedAnswerError):
        parse_long_status(Frame(b"\x11", b""))


@pytest.mark.parametrize("vector", sv.REFUSED, ids=[v.name for v in sv.REFUSED])
def test_state_changing_command_refused(vector: sv.RefusedVector) -> None:
    decoded = decode_frame(vector.request)
    assert (decoded.code, decoded.data) == (vector.code, vector.data)
    with pytest.raises(CommandNotAllowedError) as caught:
        encode_request(vector.code, vector.data)
    assert caught.value.command == f"{vector.code:02X}h"


@pytest.mark.parametrize("vector", sv.REFUSED, ids=[v.name for v in sv.REFUSED])
def test_refusal_comes_before_any_encoding(vector: sv.RefusedVector) -> None:
    # Data too long for any frame: had encoding started, FrameError would win.
    with pytest.raises(CommandNotAllowedError):
        encode_request(vector.code, bytes(300))


def test_e13_answer_is_a_well_formed_frame_of_88h() -> None:
    assert decode_frame(sv.E13_ANSWER) == Frame(b"\x88", b"\x00\x1e")


def test_canonical_exchange_bytes_are_the_e1_vector() -> None:
    host = [data for side, data in sv.CANONICAL_EXCHANGE if side == "host"]
    assert host[1] == encode_request(0xFC)
