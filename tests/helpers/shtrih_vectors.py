"""Golden Shtrih-M frames: the worked examples E1-E13 of shtrih-m.md section 10.

A plain data table, in the manner of pymodbus's framer test tables and NUT's
``nutdrv_qx`` testing tables: each vector pairs the documented request bytes (when the
reference gives them) with the documented answer bytes and the facts the reference
decodes from them. ``tests/protocol/conftest.py`` registers this file as the module
``shtrih_vectors`` so the tests can import it although ``tests/`` is not a package.

Facts are keyed by attribute path on the parser's result (``"flags.raw"``); the empty
path ``""`` means the result itself (for parsers that return a plain value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from kktmon.protocol.errors import DeviceError, UnsupportedCommandError
from kktmon.protocol.shtrih.commands import (
    answer_payload,
    request_device_type,
    request_fn,
    request_long_status,
    request_model_parameters,
    request_short_status,
    request_table_field,
)
from kktmon.protocol.shtrih.frame import Frame
from kktmon.protocol.shtrih.records import (
    parse_device_type,
    parse_fn_resource,
    parse_fn_status,
    parse_fn_validity,
    parse_long_status,
    parse_ofd_status,
    parse_shift_parameters,
    parse_short_status,
    parse_table_value,
    table_text,
)


def h(text: str) -> bytes:
    """Bytes from the reference's spaced hex notation."""
    return bytes.fromhex(text)


def _serial_from_table(frame: Frame) -> str:
    return table_text(parse_table_value(frame))


def _open_receipt_answer(frame: Frame) -> bytes:
    # 8Dh is never sent by the agent; the answer checker alone is exercised.
    return answer_payload(frame, 0x8D)


@dataclass(frozen=True)
class Vector:
    """One documented request/answer pair and what the answer means."""

    name: str
    request: bytes | None
    answer: bytes | None
    build: Callable[[], bytes] | None = None
    parse: Callable[[Frame], object] | None = None
    facts: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorVector:
    """A documented answer that carries a non-zero error code."""

    name: str
    answer: bytes
    parse: Callable[[Frame], object]
    error: type[DeviceError]
    code: int
    meaning: str


@dataclass(frozen=True)
class RefusedVector:
    """A real frame of a state-changing command the allowlist must refuse."""

    name: str
    request: bytes
    code: int
    data: bytes


E1_NAME = "ШТРИХ-ЛАЙТ-02Ф"
E4_FN_SERIAL = "9287440301120991"

_E4_ANSWER = h(
    "02 21 FF 01 00 03 00 00 01 00 15 07 1D 0B 1D 39 32 38 37 34 34 30 33 30 31 31 32 30"
    " 39 39 31 A9 01 00 00 68"
)

VECTORS: list[Vector] = [
    Vector(
        "E1 device type FCh",
        request=h("02 01 FC FD"),
        answer=h("02 16 FC 00 00 00 01 0E FC 00 D8 D2 D0 C8 D5 2D CB C0 C9 D2 2D 30 32 D4 18"),
        build=request_device_type,
        parse=parse_device_type,
        facts={
            "device_type": 0,
            "subtype": 0,
            "protocol_version": "1.14",
            "model_number": 252,
            "language": 0,
            "name": E1_NAME,
        },
    ),
    Vector(
        "E2 full status 11h",
        request=h("02 05 11 1E 00 00 00 0A"),
        answer=h(
            "02 30 11 00 1E 54 33 1C 1C 11 0C 19 01 DF 00 92 02 04 00 02 57 41 00 00 01 01"
            " 10 0F 01 1A 10 07 28 00 86 45 00 00 5A 00 00 00 00 00 12 8C 86 42 02 00 F8"
        ),
        build=request_long_status,
        parse=parse_long_status,
        facts={
            "operator": 30,
            "firmware": "T.3",
            "firmware_build": 7196,
            "firmware_date": date(2025, 12, 17),
            "document_number": 223,
            "flags.raw": 0x0292,
            "flags.receipt_roll": True,
            "flags.receipt_paper": True,
            "flags.receipt_lever_lowered": True,
            "flags.cover_open": False,
            "mode": 4,
            "mode_number": 4,
            "submode": 0,
            "port": 2,
            "device_time": datetime(2026, 1, 15, 16, 7, 40),
            "serial_low": 17798,
            "last_closed_shift": 90,
            "inn": "9706048530",
            "serial_high": None,
        },
    ),
    Vector(
        "E3 short status 10h while printing",
        request=h("02 05 10 1E 00 00 00 0B"),
        answer=h("02 10 10 00 1E 92 02 02 05 00 9F 2C 00 00 00 76 04 24 6C"),
        build=request_short_status,
        parse=parse_short_status,
        facts={
            "operator": 30,
            "flags.raw": 0x0292,
            "mode": 2,
            "mode_number": 2,
            "submode": 5,
            "operations": 0,
            "battery_raw": 0x9F,
            "supply_raw": 0x2C,
            "key_update_status": 0x24,
            "last_print_result": None,
        },
    ),
    Vector(
        "E4 FN status FF01h",
        request=h("02 06 FF 01 1E 00 00 00 E6"),
        answer=_E4_ANSWER,
        build=lambda: request_fn(0xFF01),
        parse=parse_fn_status,
        facts={
            "phase": 3,
            "current_document": 0,
            "document_data_received": False,
            "shift_open": True,
            "warnings": 0,
            "last_document_at": datetime(2021, 7, 29, 11, 29),
            "serial": E4_FN_SERIAL,
            "last_document_number": 425,
        },
    ),
    Vector(
        "E5 register serial from table 18",
        request=h("02 09 1F 1E 00 00 00 12 01 00 01 1A"),
        answer=h("02 17 1F 00 30 33 39 32 31 39 30 30 30 38 30 31 37 37 39 38 00 30 30 30 00 30"),
        build=lambda: request_table_field(18, 1, 1),
        parse=_serial_from_table,
        facts={"": "0392190008017798"},
    ),
    Vector(
        "E7 OFD exchange status FF39h",
        request=h("02 06 FF 39 1E 00 00 00 DE"),
        answer=h("02 10 FF 39 00 02 00 03 00 A7 01 00 00 15 07 1D 0B 14 61"),
        build=lambda: request_fn(0xFF39),
        parse=parse_ofd_status,
        facts={
            "exchange": 0x02,
            "reading_message": False,
            "unsent_count": 3,
            "first_unsent_number": 423,
            "first_unsent_at": datetime(2021, 7, 29, 11, 20),
        },
    ),
    Vector(
        "E8 FN resource FF63h",
        request=h("02 06 FF 63 1E 00 00 00 84"),
        answer=h("02 0B FF 63 00 EF BD 03 00 FF 03 00 00 3A"),
        build=lambda: request_fn(0xFF63),
        parse=parse_fn_resource,
        facts={"documents_left": 245231, "storage_30d_free_kb": 1023, "marking_fill_pct": None},
    ),
    Vector(
        "E9 FN validity FF03h long form",
        request=h("02 06 FF 03 1E 00 00 00 E4"),
        answer=h("02 08 FF 03 00 1A 0C 1F 0B 01 F7"),
        build=lambda: request_fn(0xFF03),
        parse=parse_fn_validity,
        facts={
            "valid_until": date(2026, 12, 31),
            "registrations_left": 11,
            "registrations_done": 1,
        },
    ),
    Vector(
        "E10 shift parameters FF40h",
        request=h("02 06 FF 40 1E 00 00 00 A7"),
        answer=h("02 08 FF 40 00 01 2A 00 05 00 99"),
        build=lambda: request_fn(0xFF40),
        parse=parse_shift_parameters,
        facts={"open": True, "number": 42, "receipt_number": 5},
    ),
    Vector(
        "E11 FN status with warnings",
        request=None,
        answer=_E4_ANSWER[:9] + b"\x0a" + _E4_ANSWER[10:-1] + b"\x62",
        parse=parse_fn_status,
        facts={
            "phase": 3,
            "shift_open": True,
            "warnings": 0x0A,
            "serial": E4_FN_SERIAL,
            "last_document_number": 425,
        },
    ),
    Vector(
        "F7h 01h model parameters request",
        request=h("02 02 F7 01 F4"),
        answer=None,
        build=request_model_parameters,
    ),
]

# E11 is spelled out in the reference too; keep the literal to catch a slip in the splice.
E11_LITERAL = h(
    "02 21 FF 01 00 03 00 00 01 0A 15 07 1D 0B 1D 39 32 38 37 34 34 30 33 30 31 31 32 30"
    " 39 39 31 A9 01 00 00 62"
)

ERROR_VECTORS: list[ErrorVector] = [
    ErrorVector(
        "E6 8Dh refused in this mode",
        answer=h("02 02 8D 73 FC"),
        parse=_open_receipt_answer,
        error=DeviceError,
        code=0x73,
        meaning="command not supported in this mode",
    ),
    ErrorVector(
        "E12 FF01h not supported",
        answer=h("02 03 FF 01 37 CA"),
        parse=parse_fn_status,
        error=UnsupportedCommandError,
        code=0x37,
        meaning="command not supported by this model or firmware",
    ),
    ErrorVector(
        "E12 11h wrong password",
        answer=h("02 02 11 4F 5C"),
        parse=parse_long_status,
        error=DeviceError,
        code=0x4F,
        meaning="wrong password",
    ),
]

REFUSED: list[RefusedVector] = [
    RefusedVector(
        "E13 88h cancel receipt",
        request=h("02 05 88 1E 00 00 00 93"),
        code=0x88,
        data=h("1E 00 00 00"),
    ),
    RefusedVector(
        "E0h open shift",
        request=h("02 05 E0 1E 00 00 00 FB"),
        code=0xE0,
        data=h("1E 00 00 00"),
    ),
]

# The device's answer to E13's request (real): decodes, but must never be provoked.
E13_ANSWER = h("02 03 88 00 1E 95")

# Section 3.3: the canonical exchange of E1 over TCP, host and device bytes in order.
CANONICAL_EXCHANGE: list[tuple[str, bytes]] = [
    ("host", h("05")),
    ("dev", h("15")),
    ("host", VECTORS[0].request or b""),
    ("dev", h("06")),
    ("dev", VECTORS[0].answer or b""),
    ("host", h("06")),
]


def all_frames() -> list[tuple[str, bytes]]:
    """Every example frame of section 10, named, for frame-level checks (LRC, decode)."""
    frames: list[tuple[str, bytes]] = []
    for vector in VECTORS:
        if vector.request is not None:
            frames.append((f"{vector.name} request", vector.request))
        if vector.answer is not None:
            frames.append((f"{vector.name} answer", vector.answer))
    frames += [(f"{v.name} answer", v.answer) for v in ERROR_VECTORS]
    frames += [(f"{v.name} request", v.request) for v in REFUSED]
    frames += [("E11 literal", E11_LITERAL), ("E13 answer", E13_ANSWER)]
    return frames
