"""Shtrih-M command layer: command codes, the read-only allowlist, requests, the answer check.

Every request is built by :func:`encode_request`, the single gate that refuses a
command outside :data:`ALLOWLIST` before any byte of it exists (DESIGN.md section 1).
:func:`request` builds one from its parts, the way a driver's table of reads names
them: the command, its sub-command (F7h 01h), then the password unless the command
takes none, then the parameters packed as :data:`PARAMS_LAYOUT` says::

    request(READ_TABLE, params=(18, 1, 1), password=30)   # 1Fh: table 18 row 1 field 1

:func:`answer_payload` checks an answer frame for the parsers of
:mod:`kktmon.protocol.shtrih.records` and raises :class:`DeviceError` for a non-zero
error code. Offsets follow shtrih-m.md section 8 ("payload offset" 0 is the error
code); answers may be longer than documented (quirk 11.6): extra bytes are ignored.
"""

from __future__ import annotations

import struct

from kktmon.protocol.errors import (
    CommandNotAllowedError,
    DeviceError,
    MalformedAnswerError,
    UnexpectedAnswerError,
    UnsupportedCommandError,
)
from kktmon.protocol.shtrih.errors import ERROR_MEANINGS, UNSUPPORTED
from kktmon.protocol.shtrih.frame import Frame, command_bytes, encode_frame

VENDOR = "shtrih"
DEFAULT_PASSWORD = 30  # system administrator (table 2 row 30)

# Command codes of the read-only set (shtrih-m.md section 8).
DEVICE_TYPE = 0xFC
MODEL_PARAMETERS = 0xF7  # with sub-command 01h only
SHORT_STATUS = 0x10
LONG_STATUS = 0x11
EXCHANGE_PARAMETERS = 0x15  # read a port's speed and byte timeout (14h, which sets them, never)
MONEY_REGISTER = 0x1A
OPERATING_REGISTER = 0x1B
READ_TABLE = 0x1F
TABLE_STRUCTURE = 0x2D
FIELD_STRUCTURE = 0x2E
ERROR_TEXT = 0x6B
FN_STATUS = 0xFF01
FN_SERIAL = 0xFF02
FN_VALIDITY = 0xFF03
FN_FIRMWARE = 0xFF04
FN_REGISTRATION = 0xFF09  # last registration
FN_ARCHIVE_DOCUMENT = 0xFF0A
OFD_STATUS = 0xFF39  # OFD exchange status
FN_UNCONFIRMED = 0xFF3F  # documents without OFD receipt
FN_SHIFT = 0xFF40  # shift parameters
FN_RESOURCE = 0xFF63  # FN free resource

MODEL_PARAMETERS_SUB = 0x01

# Command codes the agent may send: code -> required leading data bytes (F7 only with 01).
ALLOWLIST: dict[int, bytes] = {
    DEVICE_TYPE: b"",
    MODEL_PARAMETERS: bytes([MODEL_PARAMETERS_SUB]),
    SHORT_STATUS: b"",
    LONG_STATUS: b"",
    EXCHANGE_PARAMETERS: b"",
    MONEY_REGISTER: b"",
    OPERATING_REGISTER: b"",
    READ_TABLE: b"",
    TABLE_STRUCTURE: b"",
    FIELD_STRUCTURE: b"",
    FN_STATUS: b"",
    FN_SERIAL: b"",
    FN_VALIDITY: b"",
    FN_FIRMWARE: b"",
    FN_REGISTRATION: b"",
    FN_ARCHIVE_DOCUMENT: b"",
    OFD_STATUS: b"",
    FN_UNCONFIRMED: b"",
    FN_SHIFT: b"",
    FN_RESOURCE: b"",
    ERROR_TEXT: b"",
}

#: Commands whose data carries no password (section 8: FCh, F7h, 6Bh).
WITHOUT_PASSWORD: frozenset[int] = frozenset({DEVICE_TYPE, MODEL_PARAMETERS, ERROR_TEXT})
#: How a command's parameters follow the password (:mod:`struct`, little-endian);
#: a command not listed takes none.
PARAMS_LAYOUT: dict[int, str] = {
    EXCHANGE_PARAMETERS: "<B",  # port: 0.. COM ports, 128 the TCP socket
    MONEY_REGISTER: "<B",  # register 0..255 (newer models also take 2-byte numbers)
    OPERATING_REGISTER: "<B",  # register 0..255
    READ_TABLE: "<BHB",  # table, row, field
    TABLE_STRUCTURE: "<B",  # table
    FIELD_STRUCTURE: "<BB",  # table, field
    FN_ARCHIVE_DOCUMENT: "<I",  # document number
    ERROR_TEXT: "<B",  # error code
}

# Documented in shtrih-m.md section 9 as changing fiscal, device or printer state.
# Never consulted to allow anything: it exists so tests can prove the gate closes.
NEVER_SEND: frozenset[int] = frozenset(
    {
        *(0xE0, 0x41, 0xC6, 0xC7, 0xFF41, 0xFF42, 0xFF43, 0xFF0B, 0xFF37, 0xFF38),  # shifts
        *range(0x80, 0x8F),  # receipts
        *(0x50, 0x51, 0xFF0C, 0xFF0D, 0xFF44, 0xFF45, 0xFF46, 0xFF4A, 0xFF4B, 0xFF4D),
        *(0xFF35, 0xFF36, 0xFF50, 0xFF51, 0xFF52, 0xFF61, *range(0xFF67, 0xFF77)),
        *(0xFF05, 0xFF06, 0xFF34, 0xFF3D, 0xFF3E, 0xFF07, 0xFF08, 0xFF62, 0xFF64),  # FN
        *(0xFF65, 0xFF66, 0x0D, 0x65),
        *(0x14, 0x1E, 0x20, 0x21, 0x22, 0x23, 0x24, 0x27, 0x16, 0x0E, 0x60, 0x1C),  # settings
        *(0xFF4E, 0xFF32, 0xFF33),
        *(0x12, 0x17, 0x2F, 0x18, 0x52, 0x53, 0x54, *range(0xC0, 0xC6), 0xDE),  # printing
        *(0x4D, 0x4E, 0x4F, 0x19, 0x2B, 0x25, 0x28, 0x29, 0x13, 0x2C, 0x40, 0xB0),
        *(0x01, 0x02, 0x03, 0xFD, 0xFE),  # dumps, service
    }
)


def command_name(code: int) -> str:
    return f"{code:02X}h" if code <= 0xFF else f"{code:04X}h"


def is_allowed(code: int, data: bytes) -> bool:
    prefix = ALLOWLIST.get(code)
    return prefix is not None and data.startswith(prefix)


def encode_request(code: int, data: bytes = b"") -> bytes:
    """The only way to turn a command into bytes: refuses anything off the allowlist."""
    if not is_allowed(code, data):
        raise CommandNotAllowedError(VENDOR, command_name(code))
    return encode_frame(command_bytes(code) + data)


def request(
    code: int,
    sub: int | None = None,
    params: tuple[int, ...] = (),
    password: int = DEFAULT_PASSWORD,
) -> bytes:
    """The frame of ``code`` [``sub``] [password] ``params``, through the gate."""
    data = b"" if sub is None else _byte(code, sub)
    if code not in WITHOUT_PASSWORD:
        data += password.to_bytes(4, "little")
    layout = PARAMS_LAYOUT.get(code, "<")
    try:
        data += struct.pack(layout, *params)
    except struct.error:
        shown = ", ".join(map(str, params))
        raise CommandNotAllowedError(VENDOR, f"{command_name(code)} ({shown})") from None
    return encode_request(code, data)


def _byte(code: int, sub: int) -> bytes:
    if not 0 <= sub <= 0xFF:  # never wrap a sub-command into an allowed one
        raise CommandNotAllowedError(VENDOR, f"{command_name(code)} {sub:#x}")
    return bytes([sub])


# ------------------------------------------------------------------ request builders


def request_device_type() -> bytes:
    return request(DEVICE_TYPE)


def request_model_parameters() -> bytes:
    return request(MODEL_PARAMETERS, MODEL_PARAMETERS_SUB)


def request_short_status(password: int = DEFAULT_PASSWORD) -> bytes:
    return request(SHORT_STATUS, password=password)


def request_long_status(password: int = DEFAULT_PASSWORD) -> bytes:
    return request(LONG_STATUS, password=password)


def request_table_field(
    table: int, row: int, field: int, password: int = DEFAULT_PASSWORD
) -> bytes:
    return request(READ_TABLE, params=(table, row, field), password=password)


def request_table_structure(table: int, password: int = DEFAULT_PASSWORD) -> bytes:
    return request(TABLE_STRUCTURE, params=(table,), password=password)


def request_field_structure(table: int, field: int, password: int = DEFAULT_PASSWORD) -> bytes:
    return request(FIELD_STRUCTURE, params=(table, field), password=password)


def request_exchange_parameters(port: int, password: int = DEFAULT_PASSWORD) -> bytes:
    """15h: the speed and byte timeout the register uses on ``port``."""
    return request(EXCHANGE_PARAMETERS, params=(port,), password=password)


def request_money_register(number: int, password: int = DEFAULT_PASSWORD) -> bytes:
    """1Ah: a money register (6 bytes, kopecks), e.g. 241 cash in the drawer."""
    return request(MONEY_REGISTER, params=(number,), password=password)


def request_operating_register(number: int, password: int = DEFAULT_PASSWORD) -> bytes:
    """1Bh: an operating register (a 2-byte counter)."""
    return request(OPERATING_REGISTER, params=(number,), password=password)


def request_error_text(error: int) -> bytes:
    """6Bh: the register's own text for an error code (no password)."""
    return request(ERROR_TEXT, params=(error,))


def request_fn(code: int, password: int = DEFAULT_PASSWORD) -> bytes:
    """FN commands that take only the password: FF01/02/03/04/09/39/3F/40/63."""
    return request(code, password=password)


def request_archive_document(number: int, password: int = DEFAULT_PASSWORD) -> bytes:
    return request(FN_ARCHIVE_DOCUMENT, params=(number,), password=password)


# ------------------------------------------------------------------ answer checking


def answer_payload(frame: Frame, code: int) -> bytes:
    """Fields of the answer to ``code`` after the error byte; raises on a device error."""
    expected = command_bytes(code)
    data = frame.data
    if frame.command != expected:
        # Vendor Java driver's rule: FF yy with the wrong sub-code carries yy as error.
        if len(expected) == 2 and frame.command[:1] == b"\xff" and len(frame.command) == 2:
            raise _device_error(code, frame.command[1])
        raise UnexpectedAnswerError(
            f"answer to {frame.command.hex().upper()}h while waiting for {command_name(code)}"
        )
    if not data:
        raise MalformedAnswerError(f"answer to {command_name(code)} has no error byte")
    if data[0] != 0:
        raise _device_error(code, data[0])
    return data[1:]


def _device_error(code: int, error: int) -> DeviceError:
    meaning = ERROR_MEANINGS.get(error, "undocumented error")
    kind = UnsupportedCommandError if error == UNSUPPORTED else DeviceError
    return kind(VENDOR, command_name(code), error, meaning)
