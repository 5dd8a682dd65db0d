"""Hypothesis properties of the Shtrih-M codec: hostile bytes only ever raise ProtocolError.

A register (or the line to it) can send anything; the agent must turn every oddity into
a typed :class:`ProtocolError`, never an ``IndexError`` or ``ValueError`` that escapes
the driver's error mapping. Golden answers from ``shtrih_vectors`` seed the mutations so
the parsers are driven past their first length check.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
from collections.abc import Callable
from functools import reduce
from operator import xor

import pytest
import shtrih_vectors as sv
from hypothesis import given, settings
from hypothesis import strategies as st

from kktmon.protocol.errors import ChecksumError, FrameError, ProtocolError
from kktmon.protocol.shtrih import records as shtrih_records
from kktmon.protocol.shtrih.commands import ALLOWLIST, answer_payload
from kktmon.protocol.shtrih.frame import (
    MAX_BODY,
    STX,
    Frame,
    FrameReader,
    command_bytes,
    decode_frame,
    encode_frame,
    lrc,
    split_command,
)

EXAMPLES = settings(max_examples=300, deadline=None)
# Run once per parser (17 of them): fewer each keeps the directory well under budget.
PER_PARSER = settings(max_examples=200, deadline=None)

PARSERS: dict[Callable[[Frame], object], int] = {
    shtrih_records.parse_device_type: 0xFC,
    shtrih_records.parse_model_parameters: 0xF7,
    shtrih_records.parse_short_status: 0x10,
    shtrih_records.parse_long_status: 0x11,
    shtrih_records.parse_exchange_parameters: 0x15,
    shtrih_records.parse_money_register: 0x1A,
    shtrih_records.parse_operating_register: 0x1B,
    shtrih_records.parse_error_text: 0x6B,
    shtrih_records.parse_table_value: 0x1F,
    shtrih_records.parse_table_structure: 0x2D,
    shtrih_records.parse_field_structure: 0x2E,
    shtrih_records.parse_fn_status: 0xFF01,
    shtrih_records.parse_fn_serial: 0xFF02,
    shtrih_records.parse_fn_validity: 0xFF03,
    shtrih_records.parse_fn_firmware: 0xFF04,
    shtrih_records.parse_registration: 0xFF09,
    shtrih_records.parse_archive_document: 0xFF0A,
    shtrih_records.parse_ofd_status: 0xFF39,
    shtrih_records.parse_unconfirmed_count: 0xFF3F,
    shtrih_records.parse_shift_parameters: 0xFF40,
    shtrih_records.parse_fn_resource: 0xFF63,
}

GOLDEN_DATA = [decode_frame(frame).data for _, frame in sv.all_frames()]
SEEDS: dict[int, list[bytes]] = {}
for _, golden in sv.all_frames():
    SEEDS.setdefault(decode_frame(golden).code, []).append(decode_frame(golden).data)
bodies = st.binary(min_size=1, max_size=MAX_BODY)
# Zeros: "no error" followed by FN dates that mean "none" and zero counters.
ZEROS = bytes(121)


def test_every_parser_is_fuzzed() -> None:
    names = {n for n, f in inspect.getmembers(shtrih_records, inspect.isfunction)}
    assert {n for n in names if n.startswith("parse_")} == {p.__name__ for p in PARSERS}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` truncated, extended and with a few bytes replaced."""
    keep = draw(st.one_of(st.just(len(seed)), st.integers(0, len(seed))))
    data = bytearray(seed[:keep])
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data) + draw(st.binary(max_size=12))


def answer_data(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=120),
        st.binary(max_size=120).map(lambda tail: b"\x00" + tail),  # "no error" + junk
        st.sampled_from([*seeds, ZEROS]).flatmap(mutated),
    )


other_commands = st.one_of(
    st.sampled_from(sorted(ALLOWLIST)).map(command_bytes),
    st.binary(min_size=1, max_size=2),
)


@st.composite
def answers(draw: st.DrawFn, code: int) -> Frame:
    """Mostly answers to ``code`` itself, so parsing gets past the command check."""
    own = draw(st.integers(0, 9)) < 8
    command = command_bytes(code) if own else draw(other_commands)
    return Frame(command, draw(answer_data(SEEDS.get(code, []))))


@pytest.mark.parametrize(("parse", "code"), PARSERS.items(), ids=[p.__name__ for p in PARSERS])
def test_parsers_raise_only_protocol_errors(parse: Callable[[Frame], object], code: int) -> None:
    @PER_PARSER
    @given(frame=answers(code))
    def check(frame: Frame) -> None:
        with contextlib.suppress(ProtocolError):
            parse(frame)

    check()


@EXAMPLES
@given(
    command=other_commands,
    data=answer_data(GOLDEN_DATA),
    code=st.sampled_from(sorted(ALLOWLIST)),
)
def test_answer_payload_raises_only_protocol_errors(command: bytes, data: bytes, code: int) -> None:
    with contextlib.suppress(ProtocolError):
        assert answer_payload(Frame(command, data), code) == data[1:]


@EXAMPLES
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=260).map(lambda b: bytes([STX, len(b) - 1 & 0xFF]) + b),
        st.tuples(bodies, st.integers(0, 255)).map(  # right length, any LRC byte
            lambda body_lrc: encode_frame(body_lrc[0])[:-1] + bytes([body_lrc[1]])
        ),
    )
)
def test_decode_frame_yields_frame_or_protocol_error(raw: bytes) -> None:
    try:
        frame = decode_frame(raw)
    except ProtocolError:
        return
    assert encode_frame(frame.body) == raw


def feed_all(reader: FrameReader, chunks: list[bytes]) -> list[bytes]:
    """Feed every chunk, re-feeding the leftovers after each complete frame."""
    frames: list[bytes] = []
    for chunk in chunks:
        rest = chunk
        while True:
            raw, rest = reader.feed(rest)
            if raw is None:
                break
            frames.append(raw)
    return frames


@st.composite
def chunked(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


noise = st.binary(max_size=20).map(lambda b: b.replace(bytes([STX]), b""))


@EXAMPLES
@given(chunks=st.binary(max_size=400).flatmap(chunked))
def test_frame_reader_survives_any_stream(chunks: list[bytes]) -> None:
    reader = FrameReader()
    frames = feed_all(reader, chunks)
    total = sum(map(len, chunks))
    assert sum(map(len, frames)) + reader.skipped <= total
    for raw in frames:
        assert raw[0] == STX and len(raw) == raw[1] + 3
        with contextlib.suppress(ProtocolError):
            decode_frame(raw)


@EXAMPLES
@given(
    parts=st.tuples(noise, st.lists(bodies, min_size=1, max_size=3), noise),
    data=st.data(),
)
def test_frame_reader_finds_frames_behind_noise(
    parts: tuple[bytes, list[bytes], bytes], data: st.DataObject
) -> None:
    before, frame_bodies, after = parts
    frames = [encode_frame(body) for body in frame_bodies]
    stream = before + b"".join(frames) + after
    reader = FrameReader()
    assert feed_all(reader, data.draw(chunked(stream))) == frames
    assert reader.skipped == len(before) + len(after)
    assert not reader.started


@EXAMPLES
@given(body=bodies)
def test_encode_decode_round_trip(body: bytes) -> None:
    frame = encode_frame(body)
    assert frame[0] == STX and frame[1] == len(body) and len(frame) == len(body) + 3
    decoded = decode_frame(frame)
    assert decoded == split_command(body)
    assert decoded.body == body


@EXAMPLES
@given(body=bodies)
def test_lrc_xor_of_everything_after_stx_is_zero(body: bytes) -> None:
    frame = encode_frame(body)
    assert reduce(xor, frame[1:], 0) == 0
    assert frame[-1] == lrc(frame[1:-1])


@EXAMPLES
@given(a=st.binary(max_size=64), b=st.binary(max_size=64))
def test_lrc_is_xor_linear(a: bytes, b: bytes) -> None:
    assert lrc(a + b) == lrc(a) ^ lrc(b)
    assert lrc(b"") == 0


@EXAMPLES
@given(body=bodies, data=st.data())
def test_any_single_bit_error_is_caught(body: bytes, data: st.DataObject) -> None:
    frame = bytearray(encode_frame(body))
    index = data.draw(st.integers(0, len(frame) - 1))
    frame[index] ^= 1 << data.draw(st.integers(0, 7))
    expected = ChecksumError if index >= 2 else FrameError
    with pytest.raises(expected):
        decode_frame(bytes(frame))


@pytest.mark.parametrize("size", [0, MAX_BODY + 1, 1000])
def test_encode_refuses_bodies_that_do_not_fit(size: int) -> None:
    with pytest.raises(FrameError):
        encode_frame(bytes(size))
