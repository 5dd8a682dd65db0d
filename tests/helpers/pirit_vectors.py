"""Golden Pirit frames: the worked examples 1-8 of pirit.md section 6.

A plain data table like ``shtrih_vectors``: each vector pairs the documented request
bytes with the documented reply bytes, the checksums the reference states, the reply
fields it lists and the facts it reads from them. Facts are keyed by attribute path on
the parser's result (``"flags.shift_open"``); ``""`` is the result itself.

:func:`reply` and :func:`reply_frame` build *constructed* replies (not from the
reference) for parsers that section 6 does not exemplify; the simulator helpers may use
them too. Examples 3 and 4 use packet ids 0x20 and 0x22 as printed in the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from kktmon.protocol.errors import DeviceError, UnsupportedCommandError
from kktmon.protocol.pirit.commands import (
    FnInfo,
    Info,
    request_fn_info,
    request_info,
    request_status,
)
from kktmon.protocol.pirit.fn_records import parse_fn_status, parse_ofd_queue
from kktmon.protocol.pirit.frame import Reply, encode_reply_frame
from kktmon.protocol.pirit.records import parse_shift_opened_at, parse_status


def h(text: str) -> bytes:
    """Bytes from the reference's spaced hex notation."""
    return bytes.fromhex(text)


def reply(command: int, *fields: str, packet_id: int = 0x21, error: int = 0) -> Reply:
    """A constructed reply (fields as CP866 text)."""
    return Reply(packet_id, command, error, tuple(f.encode("cp866") for f in fields))


def reply_frame(command: int, *fields: str, packet_id: int = 0x21, error: int = 0) -> bytes:
    return encode_reply_frame(reply(command, *fields, packet_id=packet_id, error=error))


@dataclass(frozen=True)
class Vector:
    """One documented example: request and/or reply, checksums, fields and facts."""

    name: str
    request: bytes | None
    reply: bytes | None
    request_checksum: int | None = None
    reply_checksum: int | None = None
    packet_id: int | None = None
    reply_fields: tuple[str, ...] | None = None
    build: Callable[[], bytes] | None = None
    parse: Callable[[Reply], object] | None = None
    facts: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorVector:
    """A documented reply that carries a non-zero error code."""

    name: str
    reply: bytes
    checksum: int
    command: int
    code: int
    error: type[DeviceError]
    meaning: str


# Example 1: no framing, no checksum.
LINK_CHECK = (h("05"), h("06"))

VECTORS: list[Vector] = [
    Vector(
        "Ex2 status request 00h",
        request=h("02 50 49 52 49 21 30 30 03 32 30"),
        reply=None,
        request_checksum=0x20,
        packet_id=0x21,
        build=lambda: request_status(packet_id=0x21),
    ),
    Vector(
        "Ex3 status reply, everything clear",
        request=None,
        reply=h("02 20 30 30 30 30 30 1C 30 1C 30 1C 03 30 46"),
        reply_checksum=0x0F,
        packet_id=0x20,
        reply_fields=("0", "0", "0"),
        parse=parse_status,
        facts={
            "fatal.raw": 0,
            "flags.raw": 0,
            "flags.shift_open": False,
            "flags.start_of_work_pending": False,
            "flags.non_fiscal": False,
            "document.raw": 0,
            "document.open": False,
            "skno": None,
        },
    ),
    Vector(
        "Ex4 status reply, shift open",
        request=None,
        reply=h("02 22 30 30 30 30 30 1C 34 1C 30 1C 03 30 39"),
        reply_checksum=0x09,
        packet_id=0x22,
        reply_fields=("0", "4", "0"),
        parse=parse_status,
        facts={
            "fatal.raw": 0,
            "flags.raw": 4,
            "flags.shift_open": True,
            "flags.shift_over_24h": False,
            "flags.start_of_work_pending": False,
            "document.open": False,
        },
    ),
    Vector(
        "Ex5 FN status 78h/2",
        request=h("02 50 49 52 49 23 37 38 32 1C 03 30 33"),
        reply=h("02 23 37 38 30 30 32 1C 33 35 1C 30 1C 32 1C 03 31 39"),
        request_checksum=0x03,
        reply_checksum=0x19,
        packet_id=0x23,
        reply_fields=("2", "35", "0", "2"),
        build=lambda: request_fn_info(FnInfo.STATUS, packet_id=0x23),
        parse=parse_fn_status,
        # State 35 = phase 3, shift open, no document data; warnings 2 = bit 1 only
        # (resource exhausting; the health model's FnWarnings names the bits).
        facts={
            "phase": 3,
            "shift_open": True,
            "document_data_received": False,
            "current_document": 0,
            "warnings": 2,
            "serial": None,
        },
    ),
    Vector(
        "Ex6 OFD queue 78h/7",
        request=h("02 50 49 52 49 24 37 38 37 1C 03 30 31"),
        reply=h(
            "02 24 37 38 30 30 37 1C 32 1C 33 1C 31 32 33 34 1C 31 35 30 33 32 34 1C"
            " 31 30 31 35 33 30 1C 03 31 44"
        ),
        request_checksum=0x01,
        reply_checksum=0x1D,
        packet_id=0x24,
        reply_fields=("7", "2", "3", "1234", "150324", "101530"),
        build=lambda: request_fn_info(FnInfo.OFD_QUEUE, packet_id=0x24),
        parse=parse_ofd_queue,
        # Exchange 2 = bit 1 only: a message is pending, no transport connection (the
        # health model's OfdExchangeStatus names the bits).
        facts={
            "exchange": 2,
            "reading_message": False,
            "unsent_count": 3,
            "first_unsent_number": 1234,
            "first_unsent_at": datetime(2024, 3, 15, 10, 15, 30),
        },
    ),
    Vector(
        "Ex7 shift opening time 02h/17",
        request=h("02 50 49 52 49 25 30 32 31 37 1C 03 33 43"),
        reply=h("02 25 30 32 30 30 31 37 1C 31 34 30 33 32 34 1C 30 38 33 30 31 32 1C 03 33 36"),
        request_checksum=0x3C,
        reply_checksum=0x36,
        packet_id=0x25,
        reply_fields=("17", "140324", "083012"),
        build=lambda: request_info(Info.SHIFT_OPENED, packet_id=0x25),
        parse=parse_shift_opened_at,
        facts={"": datetime(2024, 3, 14, 8, 30, 12)},
    ),
]

ERROR_VECTORS: list[ErrorVector] = [
    ErrorVector(
        "Ex8 error reply 78h/03h",
        reply=h("02 26 37 38 30 33 03 32 39"),
        checksum=0x29,
        command=0x78,
        code=0x03,
        error=UnsupportedCommandError,
        meaning="bad format or parameter (reason in 06h/1)",
    ),
]

# State-changing requests, constructed with the frame encoder (bypassing the gate) so
# the tests can show they are well-formed frames that the gate still refuses.
FORBIDDEN: list[tuple[str, int, tuple[str, ...]]] = [
    ("10h start of work (sets the clock)", 0x10, ("010124", "120000")),
    ("93h baud change to 57600", 0x93, ("4",)),
    ("21h close shift (Z report)", 0x21, ("Cashier",)),
    ("23h open shift", 0x23, ("Cashier",)),
    ("71h close FN", 0x71, ()),
    ("A4h emergency FN close", 0xA4, ()),
    ("78h/202 set FN clock", 0x78, ("202",)),
    ("05h/5 reset cutter counter", 0x05, ("5",)),
]


def all_frames() -> list[tuple[str, bytes]]:
    """Every example frame of section 6, named, for frame-level checks."""
    frames: list[tuple[str, bytes]] = []
    for vector in VECTORS:
        if vector.request is not None:
            frames.append((f"{vector.name} request", vector.request))
        if vector.reply is not None:
            frames.append((f"{vector.name} reply", vector.reply))
    frames += [(f"{v.name} reply", v.reply) for v in ERROR_VECTORS]
    return frames


def documented_checksums() -> list[tuple[str, bytes, int]]:
    """(name, frame, checksum the reference prints) for every example frame."""
    rows: list[tuple[str, bytes, int]] = []
    for v in VECTORS:
        if v.request is not None and v.request_checksum is not None:
            rows.append((f"{v.name} request", v.request, v.request_checksum))
        if v.reply is not None and v.reply_checksum is not None:
            rows.append((f"{v.name} reply", v.reply, v.reply_checksum))
    rows += [(f"{v.name} reply", v.reply, v.checksum) for v in ERROR_VECTORS]
    return rows
