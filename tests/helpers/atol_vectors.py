"""Golden ATOL frames: the worked examples E1-E8 of atol.md section 8, on both link layers.

The reference gives each command example on one link layer (E2, E4, E5 on FE; E6, E8 on
LEGACY). The other layer's bytes of the same request and answer were computed by a
separate table-driven CRC-8 / loop-stuffing script (not the codec under test) and are
marked ``documented=False``; a codec bug therefore cannot agree with them by
construction. Packet ids and TIDs continue the reference's own sequence (E5 used ID 11h
TID 06h, so the FE form of E6 uses ID 12h TID 07h).

Facts are keyed by attribute path on the parser's result (``"flags.shift_open"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from kktmon.protocol.atol.commands import (
    FN_OFD_STATUS,
    FN_SHIFT,
    FN_STATUS,
    Request,
    request_device_type,
    request_fn,
    request_state,
)
from kktmon.protocol.atol.records import (
    parse_device_type,
    parse_fn_status,
    parse_ofd_status,
    parse_shift_parameters,
    parse_state,
)
from kktmon.protocol.errors import DeviceError, UnsupportedCommandError


def h(text: str) -> bytes:
    """Bytes from the reference's spaced hex notation."""
    return bytes.fromhex(text)


@dataclass(frozen=True)
class Exchange:
    """One command of section 8: request and answer on both link layers, and its facts."""

    name: str
    build: Callable[[], Request]
    packet_id: int  # FE packet id of the request and of the register's reply
    tid: int
    fe_request: bytes
    fe_answer: bytes
    legacy_request: bytes
    legacy_answer: bytes
    answer: bytes  # the command answer both layers carry (section 4.2)
    parse: Callable[[bytes], object]
    facts: dict[str, object] = field(default_factory=dict)
    documented: str = "fe"  # the layer whose bytes the reference prints


E2_NAME = "Казначей ФА"
E4_FN = "9961440300012345"

EXCHANGES: list[Exchange] = [
    Exchange(
        "E2 device type A5h",
        build=request_device_type,
        packet_id=0x07,
        tid=0x02,
        fe_request=h("FE 06 00 07 C1 01 02 00 00 A5 8D"),
        fe_answer=h(
            "FE 17 00 07 A3 00 01 01 4C 10 00 03 00 00 21 95 8A A0 A7 AD A0 E7 A5 A9 20 94 80 57"
        ),
        legacy_request=h("02 00 00 A5 03 A6"),
        legacy_answer=h(
            "02 00 01 01 4C 10 10 00 10 03 00 00 21 95 8A A0 A7 AD A0 E7 A5 A9 20 94 80 03 B7"
        ),
        answer=h("00 01 01 4C 10 00 03 00 00 21 95 8A A0 A7 AD A0 E7 A5 A9 20 94 80"),
        parse=parse_device_type,
        facts={
            "protocol": 1,
            "device_type": 1,
            "model": 76,
            "model_name": "Paymaster (Казначей)",
            "mode_raw": 0x1000,
            "version": "3.0",
            "language": 0,
            "build": 2195,
            "name": E2_NAME,
        },
    ),
    Exchange(
        "E4 FN status A4h 30h",
        build=lambda: request_fn(FN_STATUS),
        packet_id=0x10,
        tid=0x05,
        fe_request=h("FE 07 00 10 C1 01 05 00 00 A4 30 C6"),
        fe_answer=h(
            "FE 21 00 10 A3 55 00 03 00 00 01 00 18 05 0F 0A 1E"
            " 39 39 36 31 34 34 30 33 30 30 30 31 32 33 34 35 FD ED 01 00 00 ED"
        ),
        legacy_request=h("02 00 00 A4 30 03 97"),
        legacy_answer=h(
            "02 55 00 10 03 00 00 01 00 18 05 0F 0A 1E"
            " 39 39 36 31 34 34 30 33 30 30 30 31 32 33 34 35 FD 01 00 00 03 BB"
        ),
        answer=h(
            "55 00 03 00 00 01 00 18 05 0F 0A 1E"
            " 39 39 36 31 34 34 30 33 30 30 30 31 32 33 34 35 FD 01 00 00"
        ),
        parse=parse_fn_status,
        facts={
            "phase": 0x03,
            "current_document": 0,
            "document_data_received": False,
            "shift_open": True,
            "warnings": 0,
            "last_document_at": datetime(2024, 5, 15, 10, 30),
            "serial": E4_FN,
            "last_document_number": 509,
        },
    ),
    Exchange(
        "E5 OFD exchange status A4h 20h",
        build=lambda: request_fn(FN_OFD_STATUS),
        packet_id=0x11,
        tid=0x06,
        fe_request=h("FE 07 00 11 C1 01 06 00 00 A4 20 88"),
        fe_answer=h("FE 10 00 11 A3 55 00 02 00 03 00 F7 01 00 00 18 05 0F 09 12 3B"),
        legacy_request=h("02 00 00 A4 20 03 87"),
        legacy_answer=h("02 55 00 02 00 10 03 00 F7 01 00 00 18 05 0F 09 12 03 B8"),
        answer=h("55 00 02 00 03 00 F7 01 00 00 18 05 0F 09 12"),
        parse=parse_ofd_status,
        facts={
            "exchange": 0x02,  # bit 0 clear: not connected
            "reading_message": False,
            "unsent_count": 3,
            "first_unsent_number": 503,
            "first_unsent_at": datetime(2024, 5, 15, 9, 18),
        },
    ),
    Exchange(
        "E6 device state 3Fh",
        build=request_state,
        packet_id=0x12,
        tid=0x07,
        fe_request=h("FE 06 00 12 C1 01 07 00 00 3F 6B"),
        fe_answer=h(
            "FE 1F 00 12 A3 44 00 01 24 05 15 10 30 45 4B 00 12 34 56 3D 00 00 00 00 08 00 41"
            " 00 00 00 00 00 00 02 04 4C"
        ),
        legacy_request=h("02 00 00 3F 03 3C"),
        legacy_answer=h(
            "02 44 00 01 24 05 15 10 10 30 45 4B 00 12 34 56 3D 00 00 00 00 08 00 41"
            " 00 00 00 00 00 00 02 04 03 4E"
        ),
        answer=h(
            "44 00 01 24 05 15 10 30 45 4B 00 12 34 56 3D 00 00 00 00 08 00 41"
            " 00 00 00 00 00 00 02 04"
        ),
        parse=parse_state,
        facts={
            "cashier": 0,
            "kkt_number": 1,
            "device_time": datetime(2024, 5, 15, 10, 30, 45),
            "flags.raw": 0x4B,
            "flags.fiscalized": True,
            "flags.shift_open": True,
            "flags.paper_present": True,
            "flags.fn_active": True,
            "flags.cover_open": False,
            "flags.battery_low": False,
            "serial_low": "00123456",
            "model": 61,
            "mode": 0,
            "submode": 0,
            "next_receipt": 8,
            "last_closed_shift": 41,
            "receipt_state": 0,
            "receipt_total": 0,
            "decimals": 2,
            "interface": 4,
        },
        documented="legacy",
    ),
    Exchange(
        "E8 shift parameters A4h 10h",
        build=lambda: request_fn(FN_SHIFT),
        packet_id=0x13,
        tid=0x08,
        fe_request=h("FE 07 00 13 C1 01 08 00 00 A4 10 69"),
        fe_answer=h("FE 08 00 13 A3 55 00 01 2A 00 05 00 B0"),
        legacy_request=h("02 00 00 A4 10 10 03 A7"),
        legacy_answer=h("02 55 00 01 2A 00 05 00 03 78"),
        answer=h("55 00 01 2A 00 05 00"),
        parse=parse_shift_parameters,
        facts={"open": True, "number": 42, "receipt_number": 5},
        documented="legacy",
    ),
]

# E1: Abort (ID 06) and its reply.
E1_ABORT = h("FE 01 00 06 C4 58")
E1_REPLY = h("FE 01 00 06 A3 74")
# E3: an async result for TID 57h whose CRC (FE) is escaped, and the host's Ack (ID 08).
E3_ASYNC = h("FE 05 00 F0 A6 57 55 00 00 FD EE")
E3_ASYNC_ANSWER = h("55 00 00")
E3_ACK = h("FE 02 00 08 C2 57 83")
# E7: the LEGACY stuffing/LRC reference vector (atol4j's unit test).
E7_DATA = h("1F 00 FF 10 02 03 1A")
E7_FRAME = h("02 1F 00 FF 10 10 02 10 03 1A 03 E8")

# Host Acks (C2) that follow E2 and E4 in a session, computed like the cross-layer bytes.
E2_ACK = h("FE 02 00 08 C2 02 08")


@dataclass(frozen=True)
class ErrorVector:
    """A constructed answer carrying an error code, and what it must raise."""

    name: str
    answer: bytes
    parse: Callable[[bytes], object]
    error: type[DeviceError]
    code: int
    command: str
    meaning: str


ERROR_VECTORS: list[ErrorVector] = [
    ErrorVector(
        "A4h 30h without an FN",
        h("55 D4"),
        parse_fn_status,
        DeviceError,
        0xD4,
        "A4h 30h",
        "wrong FN state for this command",
    ),
    ErrorVector(
        "A5h unsupported",
        h("7A"),
        parse_device_type,
        UnsupportedCommandError,
        0x7A,
        "A5h",
        "command not supported by this model",
    ),
    ErrorVector(
        "3Fh wrong password",
        h("55 8C 00"),
        parse_state,
        DeviceError,
        0x8C,
        "3Fh",
        "wrong password",
    ),
    ErrorVector(
        "A4h 20h extended error",
        h("55 EE 00"),
        parse_ofd_status,
        DeviceError,
        0xEE,
        "A4h 20h",
        "read the extended error code from register 55 (37h)",
    ),
]


def all_fe_frames() -> list[tuple[str, bytes]]:
    frames = [("E1 abort", E1_ABORT), ("E1 reply", E1_REPLY), ("E3 async", E3_ASYNC)]
    frames += [("E3 ack", E3_ACK), ("E2 ack", E2_ACK)]
    for ex in EXCHANGES:
        frames += [(f"{ex.name} request", ex.fe_request), (f"{ex.name} answer", ex.fe_answer)]
    return frames


def all_legacy_frames() -> list[tuple[str, bytes]]:
    frames = [("E7", E7_FRAME)]
    for ex in EXCHANGES:
        frames += [
            (f"{ex.name} request", ex.legacy_request),
            (f"{ex.name} answer", ex.legacy_answer),
        ]
    return frames
