"""What a simulated Shtrih-M register answers to each read-only command (shtrih-m.md 8).

Pure functions from a vendor-neutral :class:`~kktmon.simulators.scenario.DeviceState`:
each builder gets the :class:`Context` (state, device time, the operator the password
belongs to) and the parameters after the password, and returns what follows the answer's
command echo and error byte, or raises
:class:`~kktmon.simulators.emulator.RefusalError` with the error code.
:mod:`kktmon.simulators.shtrih.emulator` decides which builder answers which command,
after the length, password and allowlist checks. The FN pass-through queries (FFxxh)
answer the drive's own records from :mod:`kktmon.simulators.fn`, as ATOL's A4h do.

Answers follow section 8 byte for byte (worked examples E1-E13 are the check), including
the junk real devices send (legacy fiscal-memory bytes, the tail after a serial's NUL).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from kktmon.protocol.shtrih.errors import (
    ERROR_MEANINGS,
    NO_DATA_IN_FN,
    WRONG_FN_STATE,
)
from kktmon.simulators import emulator, fn
from kktmon.simulators.emulator import RefusalError
from kktmon.simulators.fn import FFD_CODES, le
from kktmon.simulators.scenario import DOC_RECEIPT, DeviceState

SYSADMIN_PASSWORD = 30
DEFAULT_MODEL_CODE = 252  # ШТРИХ-ЛАЙТ family (E1)
BAD_PARAMETERS = 0x33
TABLE_NOT_DEFINED = 0x5D


@dataclass(frozen=True)
class Context(emulator.Context):
    operator: int  # the operator the password belongs to (0: no password)


Handler = Callable[[Context, bytes], bytes]


def _classic_date(day: date) -> bytes:
    return bytes([day.day, day.month, day.year - 2000])


def _text(value: str, size: int) -> bytes:
    return value.encode("cp1251", errors="replace")[:size].ljust(size, b"\x00")


# ------------------------------------------------------------------ status (10h, 11h, FCh, F7h)


def _mode(ctx: Context) -> int:
    shift = ctx.state.shift
    if not shift.is_open:
        return 4
    opened = shift.opened_at
    if shift.state == "expired" or (opened and ctx.now - opened >= timedelta(hours=24)):
        return 3
    return 2


def _submode(ctx: Context) -> int:
    busy = ctx.state.faults.busy_printing
    if ctx.state.printer.paper == "out":
        return 3 if busy else 1  # ran out while printing: waits for "continue printing"
    return 5 if busy else 0


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


@dataclass(frozen=True)
class TableField:
    name: str
    size: int
    text: bool
    value: Callable[[DeviceState], int | str | bytes]


TABLES: dict[int, tuple[str, dict[int, TableField]]] = {
    17: (
        "Региональные настройки",
        {17: TableField("Формат ФД", 1, False, lambda s: FFD_CODES[s.ffd.device])},
    ),
    18: (
        "Fiscal storage",
        {
            # The real device leaves junk after the NUL (E5): drivers must cut there.
            1: TableField(
                "Заводской номер ККТ", 21, True, lambda s: s.serial.encode() + b"\x00000\x00"
            ),
            3: TableField("РНМ", 20, True, lambda s: s.rnm),
            7: TableField("Пользователь", 64, True, lambda s: s.organisation),
            13: TableField("Адрес сайта ФНС", 64, True, lambda s: "www.nalog.gov.ru"),
        },
    ),
    19: (
        "Параметры ОФД",
        {
            1: TableField("Сервер", 64, True, lambda s: s.ofd.server),
            2: TableField("Порт", 2, False, lambda s: s.ofd.port),
        },
    ),
}


def _table_field(table: int, field: int) -> TableField:
    if table not in TABLES:
        raise RefusalError(TABLE_NOT_DEFINED)
    spec = TABLES[table][1].get(field)
    if spec is None:
        raise RefusalError(BAD_PARAMETERS)
    return spec


def read_table(ctx: Context, params: bytes) -> bytes:
    table, row, field = struct.unpack("<BHB", params)
    spec = _table_field(table, field)
    if row != 1:
        raise RefusalError(BAD_PARAMETERS)
    value = spec.value(ctx.state)
    if isinstance(value, int):
        return le(value, spec.size)
    return value[: spec.size] if isinstance(value, bytes) else _text(value, spec.size)


def table_structure(ctx: Context, params: bytes) -> bytes:
    if params[0] not in TABLES:
        raise RefusalError(TABLE_NOT_DEFINED)
    name, fields = TABLES[params[0]]
    return _text(name, 40) + le(1, 2) + bytes([max(fields)])


def field_structure(ctx: Context, params: bytes) -> bytes:
    spec = _table_field(params[0], params[1])
    head = _text(spec.name, 40) + bytes([int(spec.text), spec.size])
    if spec.text:
        return head + b"\x00\x00"  # what real devices append after a CHAR field's size
    return head + le(0, spec.size) + le(256**spec.size - 1, spec.size)


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


def error_text(ctx: Context, params: bytes) -> bytes:
    text = ERROR_MEANINGS.get(params[0], "no error" if params[0] == 0 else "unknown error")
    return text.encode("cp1251", errors="replace")
