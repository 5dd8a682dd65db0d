"""Hypothesis properties of the Pirit codec: hostile bytes only ever raise ProtocolError.

A register (or the line, or a proxy) can send anything; every oddity must become a
typed :class:`ProtocolError`, never an ``IndexError`` or ``ValueError``. Golden replies
from ``pirit_vectors`` and constructed ones seed the field mutations so the parsers are
driven past their first checks.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable

import pirit_vectors as pv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kktmon.protocol.errors import ChecksumError, FrameError, ProtocolError
from kktmon.protocol.pirit import fn_records as pirit_fn_records
from kktmon.protocol.pirit import records as pirit_records
from kktmon.protocol.pirit.commands import FN_INFO, INFO, MARKING, SERVICE_INFO
from kktmon.protocol.pirit.frame import (
    ETX,
    FS,
    STX,
    FrameReader,
    Reply,
    Request,
    checksum,
    decode_reply_frame,
    decode_request_frame,
    encode_reply_frame,
    encode_request_frame,
    split_fields,
)

EXAMPLES = settings(max_examples=300, deadline=None)
# 37 parsers: fewer examples each keeps the file fast.
PER_PARSER = settings(max_examples=80, deadline=None)

P, F = pirit_records, pirit_fn_records
# parser -> (command, sub echo or None)
PARSERS: dict[Callable[[Reply], object], tuple[int, int | None]] = {
    P.parse_status: (0x00, None),
    P.parse_printer_status: (0x04, None),
    functools.partial(P.parse_info_text, sub=70): (INFO, 70),
    functools.partial(P.parse_info_int, sub=8): (INFO, 8),
    P.parse_serial: (INFO, 1),
    P.parse_inn: (INFO, 3),
    P.parse_rnm: (INFO, 4),
    P.parse_firmware_version: (INFO, 70),
    P.parse_firmware_id: (INFO, 2),
    P.parse_last_fiscal_operation: (INFO, 5),
    P.parse_registration_date: (INFO, 6),
    P.parse_shift_opened_at: (INFO, 17),
    P.parse_fn_expiry: (INFO, 14),
    P.parse_model: (INFO, 21),
    P.parse_hardware: (INFO, 22),
    P.parse_tax_modes: (INFO, 23),
    P.parse_shift_number: (0x01, 1),
    functools.partial(P.parse_service_value, sub=1): (SERVICE_INFO, 1),
    P.parse_error_reason: (0x06, 1),
    P.parse_fn_lock: (0x06, 2),
    P.parse_clock: (0x13, None),
    P.parse_setting: (0x11, None),
    P.parse_drawer_open: (0x81, None),
    F.parse_fn_serial: (FN_INFO, 1),
    F.parse_fn_status: (FN_INFO, 2),
    F.parse_last_fd_number: (FN_INFO, 3),
    F.parse_fn_registered_at: (FN_INFO, 4),
    F.parse_registration_fd: (FN_INFO, 5),
    F.parse_fn_shift: (FN_INFO, 6),
    F.parse_ofd_queue: (FN_INFO, 7),
    F.parse_fn_versions: (FN_INFO, 14),
    F.parse_shift_open_fd: (FN_INFO, 17),
    F.parse_fn_memory: (FN_INFO, 18),
    F.parse_last_registration: (FN_INFO, 19),
    F.parse_ffd_support: (FN_INFO, 22),
    F.parse_marking_notices: (MARKING, 6),
    F.parse_marking_status: (MARKING, 0),
}


def _name(parse: Callable[[Reply], object]) -> str:
    return parse.func.__name__ if isinstance(parse, functools.partial) else parse.__name__


SEED_VALUES = [
    decode_reply_frame(frame).fields for _, frame in pv.all_frames() if frame[1:5] != b"PIRI"
] + [
    (b"0", b"0", b"0", b"0", b"000000", b"000000", b"0"),
    (b"1234", b"150324", b"101530", b"", b"010100", b"235959", b"99"),
]

text_bytes = st.binary(max_size=12).map(lambda raw: bytes(b for b in raw if 0x20 <= b <= 0xF0))
digits = st.integers(0, 10**8).map(lambda n: str(n).encode())
value = st.one_of(digits, text_bytes, st.sampled_from([b"", b"000000", b"010100", b"311299"]))


@st.composite
def field_lists(draw: st.DrawFn, echo: int | None) -> tuple[bytes, ...]:
    """Mutated seeds or fresh values, mostly starting with the right sub echo."""
    if draw(st.booleans()):
        values = list(draw(st.sampled_from(SEED_VALUES)))
        for _ in range(draw(st.integers(0, 3))):
            if values:
                values[draw(st.integers(0, len(values) - 1))] = draw(value)
        values = values[: draw(st.integers(0, len(values)))]
    else:
        values = draw(st.lists(value, max_size=8))
    if echo is not None and draw(st.integers(0, 9)) < 8:
        values = [str(echo).encode(), *values]
    return tuple(values)


@st.composite
def replies(draw: st.DrawFn, command: int, echo: int | None) -> Reply:
    own = draw(st.integers(0, 9)) < 8
    error = 0 if draw(st.integers(0, 9)) < 8 else draw(st.integers(0, 255))
    return Reply(
        0x21, command if own else draw(st.integers(0, 255)), error, draw(field_lists(echo))
    )


def test_every_parser_is_fuzzed() -> None:
    names = {
        n
        for module in (pirit_records, pirit_fn_records)
        for n, f in inspect.getmembers(module, inspect.isfunction)
        if n.startswith("parse_") and f.__module__ == module.__name__
    }
    assert names == {_name(p) for p in PARSERS}


@pytest.mark.parametrize(("parse", "where"), PARSERS.items(), ids=[_name(p) for p in PARSERS])
def test_parsers_raise_only_protocol_errors(
    parse: Callable[[Reply], object], where: tuple[int, int | None]
) -> None:
    @PER_PARSER
    @given(reply=replies(*where))
    def check(reply: Reply) -> None:
        with contextlib.suppress(ProtocolError):
            parse(reply)

    check()


# ------------------------------------------------------------------ frames

fields = st.lists(text_bytes, max_size=6).map(tuple)
packet_ids = st.integers(0x20, 0xF0)
passwords = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=4, max_size=4)
reply_values = st.builds(Reply, packet_ids, st.integers(0, 255), st.integers(0, 255), fields)
request_values = st.builds(Request, packet_ids, st.integers(0, 255), fields, passwords)


def _encode_request(request: Request) -> bytes:
    return encode_request_frame(
        request.command, request.fields, packet_id=request.packet_id, password=request.password
    )


@EXAMPLES
@given(reply=reply_values)
def test_reply_round_trip(reply: Reply) -> None:
    frame = encode_reply_frame(reply)
    assert decode_reply_frame(frame) == reply
    assert frame.count(STX) == 1 and frame.count(ETX) == 1 and frame[-3] == ETX


@EXAMPLES
@given(request=request_values)
def test_request_round_trip(request: Request) -> None:
    assert decode_request_frame(_encode_request(request)) == request


@EXAMPLES
@given(reply=reply_values)
def test_lowercase_hex_is_accepted(reply: Reply) -> None:
    # The checksum covers the ASCII digits, so a lowercase sender's checksum differs.
    frame = encode_reply_frame(reply)
    body = frame[1:2] + frame[2:6].lower() + frame[6:-2]
    lowered = bytes([STX]) + body + f"{checksum(body):02x}".encode()
    assert decode_reply_frame(lowered) == reply


@EXAMPLES
@given(reply=reply_values, data=st.data())
def test_any_changed_byte_is_caught(reply: Reply, data: st.DataObject) -> None:
    frame = bytearray(encode_reply_frame(reply))
    index = data.draw(st.integers(1, len(frame) - 4))  # between STX and ETX
    frame[index] = data.draw(st.integers(0, 255).filter(lambda b: b != frame[index]))
    with pytest.raises((ChecksumError, FrameError)):
        decode_reply_frame(bytes(frame))


@EXAMPLES
@given(raw=st.binary(max_size=80))
def test_any_bytes_decode_or_raise_protocol_error(raw: bytes) -> None:
    for decode in (decode_reply_frame, decode_request_frame):
        with contextlib.suppress(ProtocolError):
            decode(raw)
        with contextlib.suppress(ProtocolError):
            decode(b"\x02" + raw)


@EXAMPLES
@given(reply=reply_values, data=st.data())
def test_mangled_frames_decode_or_raise_protocol_error(reply: Reply, data: st.DataObject) -> None:
    frame = bytearray(encode_reply_frame(reply))
    for _ in range(data.draw(st.integers(1, 4))):
        frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ProtocolError):
        decode_reply_frame(bytes(frame[: data.draw(st.integers(0, len(frame)))]))


@EXAMPLES
@given(data=st.binary(max_size=30).map(lambda raw: raw.replace(b"\x1c\x1c", b"\x1c")))
def test_split_fields_drops_exactly_one_trailing_empty(data: bytes) -> None:
    parts = split_fields(data + bytes([FS]))
    assert parts == tuple(data.split(bytes([FS])))


noise = st.binary(max_size=10).map(lambda raw: raw.replace(b"\x02", b""))


@EXAMPLES
@given(items=st.lists(st.tuples(noise, reply_values), min_size=1, max_size=4), data=st.data())
def test_reader_cuts_a_noisy_stream_into_its_frames(
    items: list[tuple[bytes, Reply]], data: st.DataObject
) -> None:
    stream = b"".join(junk + encode_reply_frame(reply) for junk, reply in items)
    cut = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    chunks = [stream[a:b] for a, b in zip([0, *cut], [*cut, len(stream)], strict=True)]
    reader, found = FrameReader(), []
    for chunk in chunks:
        rest = chunk
        while rest:
            raw, rest = reader.feed(rest)
            if raw is not None:
                found.append(decode_reply_frame(raw))
    assert found == [reply for _, reply in items]


@EXAMPLES
@given(chunks=st.lists(st.binary(max_size=64), max_size=8))
def test_reader_on_any_bytes_yields_delimited_frames(chunks: list[bytes]) -> None:
    reader = FrameReader()
    for chunk in chunks:
        rest = chunk
        while rest:
            try:
                raw, rest = reader.feed(rest)
            except FrameError:
                break
            if raw is not None:
                assert raw[0] == STX and raw[-3] == ETX
