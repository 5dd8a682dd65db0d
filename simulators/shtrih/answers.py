"""What a simulated Shtrih-M register answers to each read-only command (shtrih-m.md 8).

Functions of a vendor-neutral :class:`~kktmon.simulators.scenario.DeviceState`:
each builder gets the :class:`Context` (state, device time, the operator the password
belongs to) and the parameters after the password, and returns what follows the answer's
command echo and error byte, or raises
:class:`~kktmon.simulators.emulator.RefusalError` with the error code.
:mod:`kktmon.simulators.shtrih.emulator` decides which builder answers which command,
after the length, password and allowlist checks. The FN pass-through queries (FFxxh)
answer the drive's own records from :mod:`kktmon.simulators.fn`, as ATOL's A4h do; the
settings tables live in :mod:`kktmon.simulators.shtrih.tables`. Only B0h "continue
printing", which the agent never sends, changes the state.

Answers follow section 8 byte for byte (worked examples E1-E13 are the check), including
the junk real devices send (legacy fiscal-memory bytes, the tail after a serial's NUL).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from kktmon.protocol.shtrih.errors import NO_DATA_IN_FN, VENDOR_TEXTS, WRONG_FN_STATE
from kktmon.simulators import emulator, fn
from kktmon.simulators.emulator import RefusalError
from kktmon.simulators.fn import le
from kktmon.simulators.scenario import DOC_RECEIPT, DeviceState
from kktmon.simulators.shtrih import tables

SYSADMIN_PASSWORD = 30
DEFAULT_MODEL_CODE = 252  # ШТРИХ-ЛАЙТ family (E1)


@dataclass(frozen=True)
class Context(emulator.Context):
    operator: int  # the operator the password belongs to (0: no password)


Handler = Callable[[Context, bytes], bytes]


def _classic_date(day: date) -> bytes:
    return bytes([day.day, day.month, day.year - 2000])


# ------------------------------------------------------------------ status (10h, 11h, FCh, F7h)


def _mode(ctx: Context) -> int:
    shift = ctx.state.shift
    if not shift.is_open:
        return 4
    opened = shift.opened_at
    if shift.state == "expired" or (opened and ctx.now - opened >= timedelta(hours=24)):
        return 3
    return 2


PAPER_PRESENT, PASSIVE_PAPER_OUT, ACTIVE_PAPER_OUT, AFTER_ACTIVE_PAPER_OUT = 0, 1, 2, 3
PRINTING = 5


def submode(state: DeviceState) -> int:
    """Section 7's submode from the printer: paper gone while idle is 1; gone in the
    middle of a document is 2, which turns into 3 (waiting for B0h "continue printing")
    only once paper is back, never straight from printing."""
    printer = state.printer
    if printer.paper == "out":
        return ACTIVE_PAPER_OUT if printer.suspended else PASSIVE_PAPER_OUT
    if printer.suspended:
        return AFTER_ACTIVE_PAPER_OUT
    return PRINTING if state.faults.busy_printing else PAPER_PRESENT


def _submode(ctx: Context) -> int:
    return submode(ctx.state)


def _flags(ctx: Context) -> int:
    printer = ctx.state.printer
    flags = 1 << 4  # legacy bit a real ЛАЙТ-02Ф keeps set (E2: 0292h)
    if printer.paper != "out":
        flags |= 1 << 7  # optical sensor: paper
    if printer.paper == "ok":
        flags |= 1 << 1  # roll sensor: not near the end
    flags |= 1 << 10 if printer.cover_open else 1 << 9  # open cover lifts the head lever
    return flags


def device_type(ctx: Context, _: bytes) -> bytes:
    code = ctx.state.model_code if ctx.state.model_code is not None else DEFAULT_MODEL_CODE
    return bytes([0, 0, 1, 14, code, 0]) + ctx.state.model.encode("cp1251", errors="replace")


_CAPABILITIES = 1 << 43 | 1 << 47  # fiscal drive supported, FFD 1.1


def model_parameters(ctx: Context, _: bytes) -> bytes:
    return struct.pack(
        "<QBBBBBBBIIBBHBBHBBBBB",
        *(_CAPABILITIES, 48, 64, 1, 12, 16, 20, 16, 0, SYSADMIN_PASSWORD, 0, 0, 255, 64),
        *(64, 1200, 18, 19, 0, 17, 17),  # FS, OFD tables; FFD version in table 17 field 17
    )


def short_status(ctx: Context, _: bytes) -> bytes:
    # Battery 9Fh, supply 2Ch, head temperature 76h, previous mode 4, key status 24h: E3.
    tail = bytes([0, 0x9F, 0x2C, 0, 0, 0, 0x76, 4, 0x24])
    last_print = b"\x02" if ctx.state.printer.fault else b""  # LEN 17: printer error
    head = bytes([ctx.operator]) + le(_flags(ctx), 2) + bytes([_mode(ctx), _submode(ctx)])
    return head + tail + last_print


_LEGACY_FP = bytes.fromhex("57 41 00 00 01 01 10")  # junk a real FN model sends (E2)


def long_status(ctx: Context, _: bytes) -> bytes:
    state, now = ctx.state, ctx.now
    firmware = (state.firmware.replace(".", "") + "  ")[:2].encode("cp1251", errors="replace")
    last_closed = state.shift.number - 1 if state.shift.is_open else state.shift.number
    return b"".join(
        [
            bytes([ctx.operator]),
            firmware,
            le(state.firmware_build, 2),
            _classic_date(state.firmware_date),
            b"\x01",  # number in hall
            le(state.fn.last_document_number % 10_000, 2),
            le(_flags(ctx), 2),
            bytes([_mode(ctx), _submode(ctx), 2]),  # port: a real one reached over TCP said 2
            _LEGACY_FP,
            _classic_date(now),
            bytes([now.hour, now.minute, now.second]),
            b"\x00",  # legacy FP flags
            le(int(state.serial[-6:]), 4),  # E2: 16-digit serials do not fit; trailing digits
            le(max(last_closed, 0), 2),
            bytes(4),  # legacy FP records and registration counters: 0 on FN models
            le(int(state.inn), 6),
        ]
    )


# ------------------------------------------------------------------ tables (1Fh, 2Dh, 2Eh)


def read_table(ctx: Context, params: bytes) -> bytes:
    return tables.read_field(ctx.state, params)


def table_structure(ctx: Context, params: bytes) -> bytes:
    return tables.structure(params[0])


def field_structure(ctx: Context, params: bytes) -> bytes:
    return tables.field_structure(params[0], params[1])


# ------------------------------------------------------------------ 15h, 1Ah, 1Bh, 6Bh

BAUD_115200 = 6  # speed code of 14h/15h
BYTE_TIMEOUT_50_MS = 50  # byte-timeout code: 0..150 are milliseconds (section 1's 50 ms)


def exchange_parameters(ctx: Context, params: bytes) -> bytes:
    """15h: every port of the simulated register runs at 115200 with the 50 ms default."""
    return bytes([BAUD_115200, BYTE_TIMEOUT_50_MS])


def money_register(ctx: Context, params: bytes) -> bytes:
    """1Ah (register number 1 byte, or 2 on newer models): the state holds no money
    totals, so every register reads 0 kopecks, as after a technological reset."""
    return bytes([ctx.operator]) + le(0, 6)


def operating_register(ctx: Context, params: bytes) -> bytes:
    """1Bh: the state holds no operation counters; every register reads 0."""
    return bytes([ctx.operator]) + le(0, 2)


def error_text(ctx: Context, params: bytes) -> bytes:
    """6Bh: the vendor's Russian text, Windows-1251; a code without one gets the
    vendor driver's "unknown error code" text (what firmware says then is unverified)."""
    text = VENDOR_TEXTS.get(params[0], "Неизвестный код ошибки")
    return text.encode("cp1251", errors="replace")


def continue_printing(ctx: Context, params: bytes) -> bytes:
    """B0h, never sent by the agent: once paper is back the suspended document is printed
    again (submode 3 -> 5 or 0). With the paper still out nothing changes (unverified:
    what firmware answers B0h outside submode 3; the vendor documents list no error)."""
    printer = ctx.state.printer
    if printer.paper != "out":
        printer.suspended = False
    return bytes([ctx.operator])


# ------------------------------------------------------------------ fiscal drive (FFxxh)


def fn_record(read: Callable[[DeviceState], bytes]) -> Handler:
    """The handler of an FN pass-through query: the drive's own record."""
    return lambda ctx, _: read(ctx.state)


def fn_resource(state: DeviceState) -> bytes:
    return fn.resource(state, marking=True)


def registration(state: DeviceState) -> bytes:
    # FFD 1.1+ registrations answer the long layout: ext. mode, OFD INN, reasons.
    long_layout = state.ffd.registered in ("1.1", "1.2")
    return fn.registration(state, wrong_state=WRONG_FN_STATE, long_layout=long_layout)


def archive_document(ctx: Context, params: bytes) -> bytes:
    if ctx.state.fn.phase not in (3, 7):
        raise RefusalError(WRONG_FN_STATE)
    doc = ctx.state.archive_document(int.from_bytes(params, "little"))
    if doc is None:
        raise RefusalError(NO_DATA_IN_FN)
    body = bytes([doc.doc_type, int(doc.ofd_confirmed)]) + fn.fn_datetime(doc.at)
    body += le(doc.number, 4) + le(doc.fiscal_sign, 4)
    if doc.shift_number is not None:
        return body + le(doc.shift_number, 2)
    if doc.doc_type == DOC_RECEIPT:
        return body + b"\x01" + le(doc.amount, 5)  # operation 1 = sale (приход)
    return body
