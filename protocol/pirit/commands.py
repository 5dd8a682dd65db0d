"""Pirit command layer: the read-only allowlist, request builders and the answer check.

:func:`encode_request` is the single gate: a (command, sub) pair off :data:`ALLOWLIST`
is refused with :class:`CommandNotAllowedError` before any byte of it exists
(DESIGN.md section 1, pirit.md section 5). Builders take the packet id from the
driver's :class:`kktmon.protocol.pirit.PacketIds` and return the frame bytes::

    ids = PacketIds()
    frame = request_fn_info(FnInfo.OFD_QUEUE, packet_id=ids.next())
    ... HostLink(frame) ... reply = link.answer
    queue = pirit_records.parse_ofd_queue(reply)

:func:`request` builds one from the parts a driver's table of reads names: the
command, its sub number and any further decimal fields (0x11's setting number and
index).

:func:`answer_fields` checks a reply (command echo, error code, sub echo) and returns
the CP866 values after the echoed sub; a non-zero error code is raised as
:class:`DeviceError`, or :class:`UnsupportedCommandError` for 02h/03h.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from kktmon.protocol.errors import (
    CommandNotAllowedError,
    DeviceError,
    FrameError,
    MalformedAnswerError,
    UnexpectedAnswerError,
    UnsupportedCommandError,
)
from kktmon.protocol.pirit.errors import UNSUPPORTED, meaning
from kktmon.protocol.pirit.frame import (
    DEFAULT_PASSWORD,
    RECOVERY_PACKET_ID,
    Field,
    Reply,
    encode_request_frame,
)

VENDOR = "pirit"

# Command codes of the read-only set (pirit.md section 4).
STATUS = 0x00  # fatal status, flags, document status
COUNTERS = 0x01  # counters by sub; 1 = current shift number
INFO = 0x02  # register information by sub (:class:`Info`)
PRINTER_STATUS = 0x04
SERVICE_INFO = 0x05  # voltages, temperatures, resources by sub
DIAGNOSTICS = 0x06  # 1 = reason of the last error, 2 = FN lock status
READ_SETTING = 0x11
CLOCK = 0x13
FN_INFO = 0x78  # FN information by sub (:class:`FnInfo`)
MARKING = 0x79  # marking-notice status (FFD 1.2)
DRAWER = 0x81


class Info(enum.IntEnum):
    """Sub numbers of 0x02, register information (pirit.md 4.3)."""

    SERIAL = 1
    FIRMWARE_ID = 2
    INN = 3
    RNM = 4
    LAST_FISCAL_OPERATION = 5
    REGISTRATION_DATE = 6
    NEXT_DOCUMENT = 8
    REGISTRATION_SHIFT = 9
    FN_EXPIRY = 14
    FIRMWARE_TYPE = 15
    PAPER = 16
    SHIFT_OPENED = 17
    MODEL = 21
    HARDWARE = 22
    TAX_MODES = 23
    FIRMWARE_VERSION = 70
    WIFI_FIRMWARE = 71


class FnInfo(enum.IntEnum):
    """Sub numbers of 0x78, FN information (pirit.md 4.4)."""

    SERIAL = 1
    STATUS = 2
    LAST_FD = 3
    REGISTERED_AT = 4
    REGISTRATION_FD = 5
    SHIFT = 6
    OFD_QUEUE = 7
    VERSIONS = 14
    SHIFT_OPEN_FD = 17
    MEMORY = 18
    LAST_REGISTRATION = 19
    FFD = 22


@dataclass(frozen=True)
class Rule:
    """How a command may be sent: ``subs`` None means it takes no sub number;
    ``args`` decimal fields may follow (0x11 takes setting number and index)."""

    subs: frozenset[int] | None = None
    args: int = 0


ANY_SUB = frozenset(range(256))  # "any sub" of the reference, capped at one byte's range

# pirit.md section 5 "safe set", minus the entries whose replies the reference does not
# describe (03h, 78h/13 and /23, 79h/7 and /16, 86h, A9h, AAh): not needed, not sent.
ALLOWLIST: dict[int, Rule] = {
    STATUS: Rule(),
    COUNTERS: Rule(ANY_SUB),
    INFO: Rule(ANY_SUB),
    PRINTER_STATUS: Rule(),
    SERVICE_INFO: Rule(frozenset({1, 2, 3, 4, *range(7, 14)})),
    DIAGNOSTICS: Rule(frozenset({1, 2})),
    READ_SETTING: Rule(args=2),
    CLOCK: Rule(),
    FN_INFO: Rule(frozenset({1, 2, 3, 4, 5, 6, 7, 14, 17, 18, 19, 22})),
    MARKING: Rule(frozenset({0, 6})),
    DRAWER: Rule(),
}

# pirit.md section 5, transcribed: command -> forbidden subs (None: the command at all).
# Never consulted to allow anything; tests use it to prove the gate stays closed.
NEVER_SEND: dict[int, frozenset[int] | None] = {
    **dict.fromkeys((0x10, 0x12, 0x14, *range(0x15, 0x19), 0x20, 0x21, 0x23, 0x24, 0x25)),
    **dict.fromkeys((*range(0x30, 0x35), *range(0x40, 0x5A), 0x60, 0x63, 0x64, 0x67)),
    **dict.fromkeys((*range(0x70, 0x78), 0x80, 0x82, 0x85, 0x87, 0x90, 0x91, 0x93)),
    **dict.fromkeys((0x94, 0x96, 0x97, 0x9A, 0x9B, 0x9C, 0xA0, 0xA1, 0xA3, 0xA4, 0xA5)),
    **dict.fromkeys((0xA6, 0xA7, 0xA8)),
    SERVICE_INFO: frozenset({5, 6}),  # reset cutter / head counters
    FN_INFO: frozenset({202, 11, 12, 15, 16, 20, 21}),  # FN clock, archive walks
    MARKING: frozenset({1, 2, 3, 9, 10, 11, 14, 15}),
    0xAA: frozenset({1, 3}),
}
#: Single bytes the link never sends: LF feeds paper (pirit.md 2.5).
NEVER_SEND_BYTES = frozenset({0x0A})

#: pirit.md 2.7 suggested policy, seconds to wait for a reply (WaitKind.ANSWER).
ANSWER_TIMEOUT_S: dict[int, float] = {STATUS: 2.0, PRINTER_STATUS: 2.0, INFO: 10.0, FN_INFO: 20.0}
DEFAULT_ANSWER_TIMEOUT_S = 10.0
ENQ_TIMEOUT_S = 2.0  # WaitKind.CONTROL in the suggested policy (Crystal's ping: 0.2 s)
INTER_BYTE_TIMEOUT_S = 0.2  # WaitKind.BYTE: the register's own limit inside a frame

_DECIMAL = re.compile(rb"0|[1-9][0-9]*")


def answer_timeout_s(command: int) -> float:
    return ANSWER_TIMEOUT_S.get(command, DEFAULT_ANSWER_TIMEOUT_S)


def command_name(command: int, sub: int | str | None = None) -> str:
    """``00h``, ``78h/7``: how commands appear in errors and logs."""
    return f"{command:02X}h" if sub is None else f"{command:02X}h/{sub}"


def _shown(field: Field) -> str:
    return field.decode("latin-1") if isinstance(field, bytes) else str(field)


def _number(field: Field) -> int | None:
    """A canonical non-negative decimal (``7``, ``"7"``, ``b"7"``), else None."""
    if isinstance(field, bool):
        return None
    if isinstance(field, int):
        return field if field >= 0 else None
    raw = field.encode("latin-1", errors="replace") if isinstance(field, str) else field
    return int(raw) if _DECIMAL.fullmatch(raw) else None


def parameters(fields: Sequence[bytes]) -> tuple[bytes, ...]:
    """A decoded request's fields as a register reads them: one empty field is no data.

    A command without parameters reaches registers in two forms (pirit.md 2.1): no data
    bytes (Crystal's driver, Dreamkas' C++ library, this agent) or a single empty field
    (Dreamkas' Java example), and real registers answer both. The frame decoder keeps
    what was sent; the device side reads both forms as one request through this.
    """
    return () if tuple(fields) == (b"",) else tuple(fields)


def is_allowed(command: int, fields: Sequence[Field] = ()) -> bool:
    """True iff the command with exactly these fields is on the allowlist.

    The host's gate: it builds only the no-data form of a command without parameters,
    so a lone empty field is refused here (a register reads it via :func:`parameters`).
    """
    rule = ALLOWLIST.get(command)
    if rule is None or isinstance(fields, str | bytes):
        return False
    if len(fields) != (rule.subs is not None) + rule.args:
        return False
    numbers = [_number(field) for field in fields]
    if any(number is None for number in numbers):
        return False
    return rule.subs is None or numbers[0] in rule.subs


def encode_request(
    command: int,
    fields: Sequence[Field] = (),
    *,
    packet_id: int,
    password: str = DEFAULT_PASSWORD,
) -> bytes:
    """The only way to turn a command into bytes: refuses anything off the allowlist."""
    if not is_allowed(command, fields):
        sub = _shown(fields[0]) if fields else None
        raise CommandNotAllowedError(VENDOR, command_name(command, sub))
    if packet_id == RECOVERY_PACKET_ID:
        raise FrameError("packet id 20h is the register's recovery id (quirk 4): never ours")
    return encode_request_frame(command, fields, packet_id=packet_id, password=password)


def request(
    command: int,
    sub: int | None = None,
    params: Sequence[Field] = (),
    *,
    packet_id: int,
    password: str = DEFAULT_PASSWORD,
) -> bytes:
    """The frame of ``command`` [``sub``] ``params``, through the gate."""
    fields = [*params] if sub is None else [sub, *params]
    return encode_request(command, fields, packet_id=packet_id, password=password)


# ------------------------------------------------------------------ request builders


def request_status(*, packet_id: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """0x00: fatal status, current flags, document status."""
    return encode_request(STATUS, packet_id=packet_id, password=password)


def request_printer_status(*, packet_id: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """0x04: paper, cover, cutter, mechanism."""
    return encode_request(PRINTER_STATUS, packet_id=packet_id, password=password)


def request_info(sub: int, *, packet_id: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """0x02/sub: register information (:class:`Info`)."""
    return encode_request(INFO, [sub], packet_id=packet_id, password=password)


def request_fn_info(sub: int, *, packet_id: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """0x78/sub: FN information (:class:`FnInfo`); only the sub, no offset/size fields."""
    return encode_request(FN_INFO, [sub], packet_id=packet_id, password=password)


def request_counters(sub: int, *, packet_id: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """0x01/sub: counters; sub 1 is the current shift number."""
    return encode_request(COUNTERS, [sub], packet_id=packet_id, password=password)


def request_service_info(sub: int, *, packet_id: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """0x05/sub: voltages, temperatures, resources (subs 1-4, 7-13)."""
    return encode_request(SERVICE_INFO, [sub], packet_id=packet_id, password=password)


def request_error_reason(*, packet_id: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """0x06/1: extended reason of the last 01h/03h error (of any client)."""
    return encode_request(DIAGNOSTICS, [1], packet_id=packet_id, password=password)


def request_fn_lock(*, packet_id: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """0x06/2: FN lock status mask."""
    return encode_request(DIAGNOSTICS, [2], packet_id=packet_id, password=password)


def request_clock(*, packet_id: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """0x13: the register's date and time."""
    return encode_request(CLOCK, packet_id=packet_id, password=password)


def request_setting(
    number: int, index: int = 0, *, packet_id: int, password: str = DEFAULT_PASSWORD
) -> bytes:
    """0x11: one settings-table value (77/0 OFD host, 78/0 OFD port, 71/0 OFD INN)."""
    return encode_request(READ_SETTING, [number, index], packet_id=packet_id, password=password)


def request_marking(sub: int, *, packet_id: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """0x79/sub: marking-notice status (subs 0 and 6; FFD 1.2 firmware with marking)."""
    return encode_request(MARKING, [sub], packet_id=packet_id, password=password)


def request_drawer(*, packet_id: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """0x81: cash drawer state."""
    return encode_request(DRAWER, packet_id=packet_id, password=password)


# ------------------------------------------------------------------ answer checking


def answer_fields(reply: Reply, command: int, sub: int | None = None) -> tuple[str, ...]:
    """Values of a reply after the echoed sub; raises on a device error or a mismatch."""
    name = command_name(command, sub)
    if reply.command != command:
        raise UnexpectedAnswerError(f"answer to {reply.command:02X}h while waiting for {name}")
    if reply.error:
        kind = UnsupportedCommandError if reply.error in UNSUPPORTED else DeviceError
        raise kind(VENDOR, name, reply.error, meaning(reply.error))
    values = reply.text()
    if sub is None:
        return values
    if not values:
        raise MalformedAnswerError(f"{name}: answer does not echo the sub number")
    echo = values[0].strip()
    if _number(echo) != sub:
        raise UnexpectedAnswerError(f"{name}: answer echoes sub {echo!r}")
    return values[1:]
