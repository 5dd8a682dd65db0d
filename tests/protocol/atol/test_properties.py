"""Hypothesis properties of the ATOL codecs: hostile bytes only ever raise ProtocolError.

Both link layers: any byte string decodes to a frame or raises a ProtocolError subclass;
the readers survive any stream and find frames behind noise; escaping and stuffing
round-trip; CRC-8 and LRC catch what they must. Every answer parser, fed golden answers
mutated (truncated, extended, bytes replaced), raises nothing but ProtocolError.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
from collections.abc import Callable

import atol_vectors as av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kktmon.protocol.atol import legacy as atol_legacy
from kktmon.protocol.atol import records as atol_records
from kktmon.protocol.atol.commands import ALLOWLIST, answer_payload
from kktmon.protocol.atol.frame import (
    MAX_LEN,
    START,
    PacketReader,
    crc8,
    decode_packet,
    encode_packet,
    escape,
    parse_host_task,
    parse_task_reply,
    unescape,
)
from kktmon.protocol.atol.legacy import ETX, STX, FrameReader, lrc, stuff, unstuff
from kktmon.protocol.errors import FrameError, ProtocolError

EXAMPLES = settings(max_examples=200, deadline=None)
PER_PARSER = settings(max_examples=100, deadline=None)

PARSERS: dict[str, Callable[[bytes], object]] = {
    name: func
    for name, func in inspect.getmembers(atol_records, inspect.isfunction)
    if name.startswith("parse_") and name != "parse_register"
}
SEEDS = [ex.answer for ex in av.EXCHANGES] + [v.answer for v in av.ERROR_VECTORS]
ZEROS = bytes(64)
packet_ids = st.integers(0, 0xFF).filter(lambda i: i not in (0xFD, 0xFE))
datas = st.binary(max_size=300)
# Bytes rich in the escape and control values, where the codecs have their edge cases.
edgy = st.lists(st.sampled_from([0xFE, 0xFD, 0xEE, 0xED, 0x02, 0x03, 0x10, 0x00]), max_size=40)
data_with_edges = st.one_of(datas, edgy.map(bytes))


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    keep = draw(st.one_of(st.just(len(seed)), st.integers(0, len(seed))))
    data = bytearray(seed[:keep])
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data) + draw(st.binary(max_size=12))


answers = st.one_of(
    st.binary(max_size=80),
    st.binary(max_size=80).map(lambda tail: b"\x55\x00" + tail),  # "OK" + junk
    st.binary(max_size=80).map(lambda tail: b"\x44" + tail),  # a state + junk
    st.sampled_from([*SEEDS, ZEROS, b"\x55\x00" + ZEROS]).flatmap(mutated),
)


def test_every_parser_is_fuzzed() -> None:
    assert len(PARSERS) >= 17


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parsers_raise_only_protocol_errors(name: str) -> None:
    parse = PARSERS[name]

    @PER_PARSER
    @given(answer=answers)
    def check(answer: bytes) -> None:
        with contextlib.suppress(ProtocolError):
            parse(answer)

    check()


@EXAMPLES
@given(
    answer=answers,
    code=st.sampled_from(sorted(ALLOWLIST)),
    sub=st.one_of(st.none(), st.integers(0, 255)),
)
def test_answer_payload_raises_only_protocol_errors(
    answer: bytes, code: int, sub: int | None
) -> None:
    with contextlib.suppress(ProtocolError):
        answer_payload(answer, code, sub)


@EXAMPLES
@given(data=st.binary(max_size=40))
def test_task_parsers_raise_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_task_reply(data)
    with contextlib.suppress(ProtocolError):
        parse_host_task(data)


# ------------------------------------------------------------------ FE


@EXAMPLES
@given(data=data_with_edges)
def test_escape_round_trip(data: bytes) -> None:
    wire = escape(data)
    assert START not in wire
    assert unescape(wire) == data
    assert len(wire) == len(data) + data.count(0xFE) + data.count(0xFD)


@EXAMPLES
@given(wire=st.one_of(st.binary(max_size=40), edgy.map(bytes)))
def test_unescape_yields_bytes_or_frame_error(wire: bytes) -> None:
    try:
        data = unescape(wire)
    except FrameError:
        return
    assert escape(data) == wire


@EXAMPLES
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        edgy.map(lambda b: bytes([0xFE, len(b) & 0x7F, 0, 0x01, *b])),
        st.tuples(packet_ids, data_with_edges, st.integers(0, 255)).map(
            lambda t: encode_packet(t[0], t[1])[:-1] + bytes([t[2]])
        ),
    )
)
def test_decode_packet_yields_packet_or_protocol_error(raw: bytes) -> None:
    try:
        packet = decode_packet(raw)
    except ProtocolError:
        return
    assert raw[0] == START and len(packet.data) == raw[1] | raw[2] << 7


@EXAMPLES
@given(packet_id=packet_ids, data=data_with_edges)
def test_packet_round_trip(packet_id: int, data: bytes) -> None:
    raw = encode_packet(packet_id, data)
    assert raw.count(START) == 1 and raw[0] == START
    decoded = decode_packet(raw)
    assert (decoded.id, decoded.data) == (packet_id, data)


@EXAMPLES
@given(data=data_with_edges)
def test_crc8_residue_is_zero(data: bytes) -> None:
    # Non-reflected CRC without a final XOR: the message followed by its CRC leaves 0.
    assert crc8(data + bytes([crc8(data)])) == 0


plain_data = st.binary(max_size=120).map(lambda b: b.replace(b"\xfe", b"").replace(b"\xfd", b""))


@EXAMPLES
@given(packet_id=packet_ids, data=plain_data, bit=st.integers(0, 7), where=st.data())
def test_any_single_bit_error_is_caught(
    packet_id: int, data: bytes, bit: int, where: st.DataObject
) -> None:
    # Without FE/FD in DATA both CRC variants coincide, so CRC-8 catches every single
    # flipped bit; with them, the tolerated escaped-CRC variant gives a 1/256 chance.
    raw = bytearray(encode_packet(packet_id, data))
    index = where.draw(st.integers(1, len(raw) - 1))
    raw[index] ^= 1 << bit
    with pytest.raises(ProtocolError):
        decode_packet(bytes(raw))


def test_crc_over_escaped_data_is_tolerated() -> None:
    data = b"\xa3\xfe\x01"
    crc = crc8(b"\x07" + escape(data))
    raw = bytes([START, len(data), 0, 0x07]) + escape(data) + escape(bytes([crc]))
    assert decode_packet(raw).data == data


@pytest.mark.parametrize("size", [MAX_LEN + 1, 20000])
def test_encode_refuses_packets_that_do_not_fit(size: int) -> None:
    with pytest.raises(FrameError):
        encode_packet(1, bytes(size))


@pytest.mark.parametrize("packet_id", [0xFD, 0xFE, -1, 256])
def test_encode_refuses_ids_that_cannot_be_sent(packet_id: int) -> None:
    with pytest.raises(FrameError):
        encode_packet(packet_id, b"\xc4")


@st.composite
def chunked(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def feed_all(reader: PacketReader | FrameReader, chunks: list[bytes]) -> list[bytes]:
    frames: list[bytes] = []
    for chunk in chunks:
        rest = chunk
        while True:
            raw, rest = reader.feed(rest)
            if raw is None:
                break
            frames.append(raw)
    return frames


@EXAMPLES
@given(chunks=st.one_of(st.binary(max_size=400), edgy.map(bytes)).flatmap(chunked))
def test_packet_reader_survives_any_stream(chunks: list[bytes]) -> None:
    reader = PacketReader()
    for raw in feed_all(reader, chunks):
        assert raw[0] == START and START not in raw[1:]
        with contextlib.suppress(ProtocolError):
            decode_packet(raw)


@EXAMPLES
@given(
    before=st.binary(max_size=20).map(lambda b: b.replace(b"\xfe", b"")),
    packets=st.lists(st.tuples(packet_ids, data_with_edges), min_size=1, max_size=3),
    data=st.data(),
)
def test_packet_reader_finds_packets_behind_noise(
    before: bytes, packets: list[tuple[int, bytes]], data: st.DataObject
) -> None:
    frames = [encode_packet(pid, body) for pid, body in packets]
    reader = PacketReader()
    assert feed_all(reader, data.draw(chunked(before + b"".join(frames)))) == frames
    assert reader.skipped == len(before)


def test_packet_reader_abandons_a_packet_cut_by_a_new_start() -> None:
    good = encode_packet(0x07, b"\xa3\x55\x00")
    reader = PacketReader()
    assert feed_all(reader, [good[:5] + good]) == [good]
    assert reader.skipped == 5


# ------------------------------------------------------------------ LEGACY


@EXAMPLES
@given(data=data_with_edges)
def test_stuff_round_trip(data: bytes) -> None:
    wire = stuff(data)
    assert unstuff(wire) == data
    assert len(wire) == len(data) + data.count(0x10) + data.count(0x03)


@EXAMPLES
@given(wire=st.one_of(st.binary(max_size=40), edgy.map(bytes)))
def test_unstuff_yields_bytes_or_frame_error(wire: bytes) -> None:
    try:
        data = unstuff(wire)
    except FrameError:
        return
    assert stuff(data) == wire


@EXAMPLES
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        edgy.map(lambda b: bytes([STX, *b, ETX, 0])),
        st.tuples(data_with_edges.filter(bool), st.integers(0, 255)).map(
            lambda t: atol_legacy.encode_frame(t[0])[:-1] + bytes([t[1]])
        ),
    )
)
def test_decode_frame_yields_data_or_protocol_error(raw: bytes) -> None:
    try:
        data = atol_legacy.decode_frame(raw)
    except ProtocolError:
        return
    assert atol_legacy.encode_frame(data) == raw


@EXAMPLES
@given(data=data_with_edges.filter(bool))
def test_frame_round_trip_and_lrc(data: bytes) -> None:
    raw = atol_legacy.encode_frame(data)
    assert raw[0] == STX and raw[-2] == ETX
    assert lrc(raw[1:]) == 0
    assert atol_legacy.decode_frame(raw) == data


@EXAMPLES
@given(a=st.binary(max_size=64), b=st.binary(max_size=64))
def test_lrc_is_xor_linear(a: bytes, b: bytes) -> None:
    assert lrc(a + b) == lrc(a) ^ lrc(b)
    assert lrc(b"") == 0


@EXAMPLES
@given(data=data_with_edges.filter(bool), bit=st.integers(0, 7), where=st.data())
def test_any_single_bit_error_in_a_frame_is_caught(
    data: bytes, bit: int, where: st.DataObject
) -> None:
    raw = bytearray(atol_legacy.encode_frame(data))
    index = where.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= 1 << bit
    with pytest.raises(ProtocolError):
        atol_legacy.decode_frame(bytes(raw))


@EXAMPLES
@given(chunks=st.one_of(st.binary(max_size=400), edgy.map(bytes)).flatmap(chunked))
def test_frame_reader_survives_any_stream(chunks: list[bytes]) -> None:
    reader = FrameReader()
    for raw in feed_all(reader, chunks):
        assert raw[0] == STX
        with contextlib.suppress(ProtocolError):
            atol_legacy.decode_frame(raw)


@EXAMPLES
@given(
    before=st.binary(max_size=20).map(lambda b: b.replace(bytes([STX]), b"")),
    bodies=st.lists(data_with_edges.filter(bool), min_size=1, max_size=3),
    data=st.data(),
)
def test_frame_reader_finds_frames_behind_noise(
    before: bytes, bodies: list[bytes], data: st.DataObject
) -> None:
    frames = [atol_legacy.encode_frame(body) for body in bodies]
    reader = FrameReader()
    assert feed_all(reader, data.draw(chunked(before + b"".join(frames)))) == frames
    assert reader.skipped == len(before)
