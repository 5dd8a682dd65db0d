"""ATOL command layer, common to both link layers: the allowlist gate, requests, answers.

A request is ``password(2) command(1) params`` (atol.md section 4.1): the 4-digit access
password as 2-byte big-endian BCD (factory ``00 00``), never the operator password of
56h. The only way to get one is :func:`encode_request` (or :func:`request`, which
takes the parts a driver's table of reads names: command, sub-code, parameter bytes),
which returns a :class:`Request`; a :class:`Request` cannot exist for a command outside
:data:`ALLOWLIST`, and both link machines (:class:`kktmon.protocol.atol.FeLink`,
:class:`kktmon.protocol.atol.legacy.LegacyLink`) accept nothing else, so the reference's
never-send list (section 6) cannot reach a transport::

    request = request_fn(FN_STATUS)          # A4h 30h, or CommandNotAllowedError
    request.body == b"\\x00\\x00\\xa4\\x30"     # what either link layer wraps

Answers carry no command echo, so every answer check is told which command it answers
(section 4.2): 3Fh starts with ``44``, 45h with ``55`` and has no error byte, A5h has its
error in byte 0, everything else is ``55 err data``. Error codes 00h and 01h mean OK.
Encodings (section 4.3) live here too: BCD, most significant byte first, for the
classic fields; the FN pass-through answers are binary little-endian (parsed in
:mod:`kktmon.protocol.atol.records`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kktmon.protocol.atol import errors
from kktmon.protocol.atol.errors import OK_CODES, device_error
from kktmon.protocol.errors import (
    CommandNotAllowedError,
    ConfigError,
    MalformedAnswerError,
    UnexpectedAnswerError,
)

VENDOR = errors.VENDOR
DEFAULT_PASSWORD = 0  # access password, table 2 field 23; factory 0000

STATE = 0x3F  # device state
STATUS_CODE = 0x45  # mode and printer flags
DEVICE_TYPE = 0xA5  # identification
FIRMWARE = 0x9D  # subsystem firmware version
READ_REGISTER = 0x91
FN_QUERY = 0xA4  # forwarded to the fiscal drive

# 9Dh subsystems.
FIRMWARE_KKT, FIRMWARE_FISCAL_MEMORY, FIRMWARE_BOOT = 0x01, 0x02, 0x03

# 91h registers (section 5.5).
REG_CLOCK = 0x11
REG_SHIFT = 0x12
REG_SERIAL = 0x16
REG_UNSENT = 0x2C
REG_FFD = 0x36
REG_EXTENDED_ERROR = 0x37

# A4h sub-commands: the FN's own command codes (section 5.6).
FN_SHIFT = 0x10
FN_OFD_STATUS = 0x20
FN_STATUS = 0x30
FN_SERIAL = 0x31
FN_VALIDITY = 0x32
FN_FIRMWARE = 0x33
FN_UNCONFIRMED = 0x42
FN_REGISTRATION = 0x43
FN_FFD = 0x3A  # experimental [L]
FN_DAYS_LEFT = 0x3B  # experimental [L]
FN_RESOURCE = 0x3D  # experimental [L]
FN_EXPERIMENTAL: frozenset[int] = frozenset({FN_FFD, FN_DAYS_LEFT, FN_RESOURCE})


@dataclass(frozen=True)
class Shape:
    """What may follow an allowed command byte: one sub-code from a set, then fixed params."""

    sub_codes: frozenset[int] = field(default_factory=frozenset)  # empty: no sub-code
    params: int = 0  # bytes after the sub-code, any value

    def accepts(self, data: bytes) -> bool:
        if not self.sub_codes:
            return data == b""
        return len(data) == 1 + self.params and data[0] in self.sub_codes


# Section 6 "Allowed": exact (command, sub-command) pairs; any other data is refused.
ALLOWLIST: dict[int, Shape] = {
    STATE: Shape(),
    STATUS_CODE: Shape(),
    DEVICE_TYPE: Shape(),
    FIRMWARE: Shape(frozenset({FIRMWARE_KKT, FIRMWARE_FISCAL_MEMORY, FIRMWARE_BOOT})),
    READ_REGISTER: Shape(
        frozenset({REG_CLOCK, REG_SHIFT, REG_SERIAL, REG_UNSENT, REG_FFD, REG_EXTENDED_ERROR}),
        params=2,  # p1 p2, 00 00 for every register above
    ),
    FN_QUERY: Shape(
        frozenset(
            {
                *(FN_SHIFT, FN_OFD_STATUS, FN_STATUS, FN_SERIAL, FN_VALIDITY, FN_FIRMWARE),
                *(FN_UNCONFIRMED, FN_REGISTRATION, *FN_EXPERIMENTAL),
            }
        )
    ),
}

# Section 6 "Never send" (fiscal, mode, configuration, printing, device control) plus the
# reads it rules out (46h needs programming mode, B3h not needed). Never consulted to
# allow anything: it exists so tests can prove the gate stays closed.
NEVER_SEND: frozenset[int] = frozenset(
    {
        *(0x56, 0x48, 0x92, 0x52, 0xE6, 0xEA, 0xEB, 0x57, 0x43, 0xB8, 0x99, 0x9B, 0x4A),
        *(0x59, 0x49, 0x4F, 0x9A, 0x5A, 0x67, 0x77, 0x6B, 0x71, 0x50, 0xE8, 0x64, 0x4B),
        *(0xED, 0x6D, 0xA6, 0xA7, 0xA8, 0xAB, 0x95, 0xEE, 0x97, 0xCE, 0x80, 0x85, 0x47),
        *(0x88, 0x4C, 0x87, 0x6C, 0x73, 0x7C, 0x8D, 0x8E, 0xC1, 0x75, 0x82),
        *(0x46, 0xB3),
    }
)
# A4h sub-commands that read the FN archive (multi-step sessions, or not yet verified).
FN_NEVER_SEND: frozenset[int] = frozenset({0x40, 0x41, 0x45, 0x46})


def command_name(code: int, sub: int | None = None) -> str:
    """``A4h 30h``; a code that is not a byte is shown as given."""
    name = f"{code:02X}h" if 0 <= code <= 0xFF else f"{code:#x}"
    return name if sub is None else f"{name} {sub:02X}h"


def is_allowed(code: int, data: bytes = b"") -> bool:
    shape = ALLOWLIST.get(code)
    return shape is not None and shape.accepts(data)


def password_bytes(password: int) -> bytes:
    """The 4-digit access password as 2-byte big-endian BCD: 1234 -> ``12 34``."""
    if not 0 <= password <= 9999:
        raise ConfigError(f"ATOL access password must be 0..9999, got {password}")
    return int_to_bcd(password, 2)


@dataclass(frozen=True)
class Request:
    """One allowed command. Construction runs the gate, so a refused one never exists."""

    code: int
    data: bytes = b""
    password: int = DEFAULT_PASSWORD

    def __post_init__(self) -> None:
        if not is_allowed(self.code, self.data):
            sub = self.data[0] if self.data and ALLOWLIST.get(self.code) else None
            raise CommandNotAllowedError(VENDOR, command_name(self.code, sub))
        password_bytes(self.password)

    @property
    def body(self) -> bytes:
        """``password(2) command params``: LEGACY DATA, or the FE task after ``C1 flags TID``."""
        return password_bytes(self.password) + bytes([self.code]) + self.data

    @property
    def sub(self) -> int | None:
        return self.data[0] if self.data else None

    @property
    def name(self) -> str:
        return command_name(self.code, self.sub)


def encode_request(code: int, data: bytes = b"", password: int = DEFAULT_PASSWORD) -> Request:
    """The gate: a :class:`Request`, or :class:`CommandNotAllowedError` before any byte exists."""
    return Request(code, data, password)


def request(
    code: int,
    sub: int | None = None,
    params: tuple[int, ...] = (),
    password: int = DEFAULT_PASSWORD,
) -> Request:
    """The :class:`Request` of ``code`` [``sub``] ``params`` (one byte each), through the gate."""
    data = b"" if sub is None else _sub(code, sub)
    if not all(0 <= param <= 0xFF for param in params):
        raise CommandNotAllowedError(VENDOR, f"{command_name(code, sub)} {params}")
    return encode_request(code, data + bytes(params), password)


# ------------------------------------------------------------------ request builders

#: p1 p2 after a 91h register number: 00 00 for every allowed register (section 5.5).
REGISTER_PARAMS = (0x00, 0x00)


def request_state(password: int = DEFAULT_PASSWORD) -> Request:
    return encode_request(STATE, password=password)


def request_status_code(password: int = DEFAULT_PASSWORD) -> Request:
    return encode_request(STATUS_CODE, password=password)


def request_device_type(password: int = DEFAULT_PASSWORD) -> Request:
    return encode_request(DEVICE_TYPE, password=password)


def request_firmware(subsystem: int = FIRMWARE_KKT, password: int = DEFAULT_PASSWORD) -> Request:
    return request(FIRMWARE, subsystem, password=password)


def request_register(register: int, password: int = DEFAULT_PASSWORD) -> Request:
    return request(READ_REGISTER, register, REGISTER_PARAMS, password)


def request_fn(sub: int, password: int = DEFAULT_PASSWORD) -> Request:
    return request(FN_QUERY, sub, password=password)


def _sub(code: int, sub: int) -> bytes:
    if not 0 <= sub <= 0xFF:  # never wrap 130h into 30h
        raise CommandNotAllowedError(VENDOR, f"{command_name(code)} {sub:#x}")
    return bytes([sub])


# ------------------------------------------------------------------ answer checking

ANSWER_OK = 0x55  # 'U'
STATE_PREFIX = 0x44  # 'D'
_PREFIX_ONLY = {STATE: STATE_PREFIX, STATUS_CODE: ANSWER_OK}


def answer_payload(answer: bytes, code: int, sub: int | None = None) -> bytes:
    """Fields of the answer to ``code`` after its prefix and error byte (section 4.2).

    Raises :class:`DeviceError` (or :class:`UnsupportedCommandError`) for an error code
    of :mod:`kktmon.protocol.atol.errors`, :class:`UnexpectedAnswerError` when the
    prefix belongs to another answer shape.
    """
    name = command_name(code, sub)
    if not answer:
        raise MalformedAnswerError(f"empty answer to {name}")
    if code == DEVICE_TYPE:
        _check_error(answer[0], code, sub)
        return answer[1:]
    if answer[0] == _PREFIX_ONLY.get(code):  # 3Fh and 45h answers have no error byte
        return answer[1:]
    if answer[0] != ANSWER_OK:
        raise UnexpectedAnswerError(f"answer to {name} starts with {answer[0]:02X}h")
    # A refused 3Fh comes back as ``55 err``; 45h has no error byte at all.
    if len(answer) < 2:
        raise MalformedAnswerError(f"answer to {name} has no error byte")
    _check_error(answer[1], code, sub)
    if code == STATE:
        raise UnexpectedAnswerError(f"answer to {name} is 55 {answer[1]:02X}, not a state")
    return answer[2:]


def _check_error(error: int, code: int, sub: int | None) -> None:
    if error not in OK_CODES:
        raise device_error(command_name(code, sub), error)


# ------------------------------------------------------------------ encodings


def bcd_to_int(raw: bytes, what: str = "BCD field") -> int:
    """Big-endian packed BCD to an int; a nibble above 9 is a malformed answer."""
    return int(bcd_digits(raw, what)) if raw else 0


def bcd_digits(raw: bytes, what: str = "BCD field") -> str:
    """Packed BCD to its digit string, leading zeros kept: ``00 12`` -> ``"0012"``."""
    digits = raw.hex()
    if not digits.isdigit() and raw:
        raise MalformedAnswerError(f"{what}: {raw.hex(' ')} is not BCD")
    return digits


def int_to_bcd(value: int, size: int) -> bytes:
    """``1234, 2`` -> ``12 34`` (for requests and emulators; ValueError if it does not fit)."""
    digits = f"{value:0{size * 2}d}"
    if value < 0 or len(digits) != size * 2:
        raise ValueError(f"{value} does not fit {size} BCD bytes")
    return bytes.fromhex(digits)
