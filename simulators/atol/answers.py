"""What a simulated ATOL register answers (atol.md sections 4-5), from the device state.

One builder per allowed (command, sub-command): it gets the :class:`Context` and returns
the fields that follow the answer's prefix and error byte, or raises
:class:`~kktmon.simulators.emulator.RefusalError` with an error code;
:mod:`kktmon.simulators.atol.emulator` picks the builder and :func:`shaped` /
:func:`refusal` give the answer the shape of section 4.2: ``44 ...`` for 3Fh,
``55 mode flags`` for 45h, ``err ...`` for A5h and ``55 err data`` for everything else.

Encodings follow section 4.3 (quirk Q7): BCD, most significant first, for 3Fh, 9Dh and
the 91h registers; the FN pass-through queries (A4h) answer the drive's own binary
records from :mod:`kktmon.simulators.fn`, as their Shtrih-M twins do for the same state.

Identity (A5h, 3Fh's model byte, 9Dh): :func:`identity`. The shared default scenario
describes a Shtrih-M register, whose name no ATOL register reports, so unless the
scenario names an ATOL model (``model_code``, or a name of the codec's
:data:`~kktmon.protocol.atol.records.MODEL_NAMES`) the register is an АТОЛ 30Ф (code 61,
E6) with a "3.0" firmware of build 5199, the build TerminalClient knows as current for
ATOL's online trade models [M].
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from kktmon.protocol.atol import commands as cmd
from kktmon.protocol.atol.commands import ANSWER_OK, STATE_PREFIX, int_to_bcd
from kktmon.protocol.atol.errors import OK_CODES, WRONG_FN_STATE
from kktmon.protocol.atol.records import MODEL_NAMES
from kktmon.simulators import emulator, fn
from kktmon.simulators.fn import FFD_CODES, le
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import Transport

DEFAULT_MODEL_CODE = 61  # АТОЛ 30Ф, the model of E6
DEFAULT_FIRMWARE = "3.0"  # A5h major.minor of the "АТОЛ 3.0" protocol firmwares (E2)
DEFAULT_BUILD = 5199  # TerminalClient's current build for online trade models [M]
PROTOCOL_VERSION = 0x01  # E2
DEVICE_KKT = 0x01
DEVICE_MODE = b"\x10\x00"  # A5h offsets 4-5, meaning not established: E2's bytes
KKT_NUMBER = 1  # "KKT number in the shop" of 3Fh
DECIMALS = 2
# 3Fh offset 29: which interface the host is on. A pty stands for USB-CDC, the usual
# ATOL cable (E6 was read over USB); TCP is Ethernet.
INTERFACES: dict[Transport, int] = {"pty": 4, "tcp": 6}
_PREFIXES = {cmd.STATE: bytes([STATE_PREFIX]), cmd.STATUS_CODE: bytes([ANSWER_OK])}


@dataclass(frozen=True)
class Context(emulator.Context):
    transport: Transport  # the interface the host is on (3Fh reports it)


Handler = Callable[[Context], bytes]  # the fields after the prefix and error byte


@dataclass(frozen=True)
class Answer:
    """A command answer and its error code (00 for success)."""

    data: bytes
    error: int = 0

    @property
    def ok(self) -> bool:
        return self.error in OK_CODES


def refusal(code: int, error: int) -> Answer:
    """``err`` alone for A5h (its error comes first), ``55 err`` for every other command."""
    return Answer(bytes([error]) if code == cmd.DEVICE_TYPE else bytes([ANSWER_OK, error]), error)


def shaped(code: int, fields: bytes) -> Answer:
    """A successful answer in the shape of section 4.2: its prefix, then ``fields``."""
    if code == cmd.DEVICE_TYPE:
        return Answer(b"\x00" + fields)
    return Answer(_PREFIXES.get(code, bytes([ANSWER_OK, 0])) + fields)


@dataclass(frozen=True)
class Identity:
    """What the register says it is: model code and name (A5h), firmware and its build."""

    code: int
    name: str
    firmware: str
    build: int


DEFAULT_IDENTITY = Identity(
    DEFAULT_MODEL_CODE, MODEL_NAMES[DEFAULT_MODEL_CODE], DEFAULT_FIRMWARE, DEFAULT_BUILD
)
_CODES = {name: code for code, name in MODEL_NAMES.items()}


def identity(state: DeviceState) -> Identity:
    """The scenario's model when it names an ATOL one, else :data:`DEFAULT_IDENTITY`.

    ``model_code`` names the model, with ``model`` as its name; a ``model`` the codec's
    table knows brings its code. Without either the name is another vendor's (the
    shared default's ШТРИХ-ЛАЙТ-02Ф), which no ATOL register reports.
    """
    code = state.model_code if state.model_code is not None else _CODES.get(state.model)
    if code is None:
        return DEFAULT_IDENTITY
    return Identity(code, state.model, state.firmware, state.firmware_build)


# ------------------------------------------------------------------ encodings


def _bcd(value: int, size: int) -> bytes:
    """Big-endian BCD; a value too long for the field keeps its low digits, as counters do."""
    return int_to_bcd(value % 10 ** (2 * size), size)


def _bcd_stamp(moment: datetime, layout: str) -> bytes:
    """BCD bytes of ``moment`` in a strftime ``layout`` of two-digit fields."""
    return bytes.fromhex(moment.strftime(layout))


def _version(text: str) -> bytes:
    """``"3.0"`` -> ``03 00``; the first two numbers of any version string (``T.3`` -> 3.0)."""
    numbers = [int(group) % 100 for group in re.findall(r"\d+", text)] + [0, 0]
    return _bcd(numbers[0], 1) + _bcd(numbers[1], 1)


def _serial14(state: DeviceState) -> str:
    # ATOL serials have 14 digits; a 16-digit scenario serial keeps its last 14.
    return state.serial[-14:]


# ------------------------------------------------------------------ 3Fh, 45h, A5h, 9Dh


def _state_flags(state: DeviceState) -> int:
    flags = 0
    if state.fn.phase & 0x02:
        flags |= 0x01  # fiscalized: fiscal mode was opened
    if state.shift.is_open:
        flags |= 0x02
    if state.printer.paper != "out":
        flags |= 0x08
    if state.printer.cover_open:
        flags |= 0x20
    if state.fn.phase & 0x01:
        flags |= 0x40  # FN set up
    return flags


def device_state(ctx: Context) -> bytes:
    state, shift = ctx.state, ctx.state.shift
    next_receipt = shift.receipts + 1 if shift.is_open else 1
    last_closed = shift.number - 1 if shift.is_open else shift.number
    return b"".join(
        [
            b"\x00",  # cashier
            bytes([KKT_NUMBER]),
            _bcd_stamp(ctx.now, "%y%m%d%H%M%S"),
            bytes([_state_flags(state)]),
            bytes.fromhex(_serial14(state)[-8:]),
            bytes([identity(state).code]),
            b"\x00\x00",  # firmware of old models / reserved
            b"\x00",  # mode 0 (selection), submode 0: E6 shows it with a shift open
            _bcd(next_receipt, 2),
            _bcd(max(last_closed, 0), 2),
            b"\x00",  # no receipt open
            _bcd(0, 5),  # its total
            bytes([DECIMALS, INTERFACES[ctx.transport]]),
        ]
    )


def _printer_flags(state: DeviceState) -> int:
    printer, flags = state.printer, 0
    if printer.paper == "out":
        flags |= 0x01
    if printer.fault:
        flags |= 0x04  # mechanical / unrecoverable printer error
    if printer.paper == "near_end":
        flags |= 0x80
    return flags


def status_code(ctx: Context) -> bytes:
    return bytes([0x00, _printer_flags(ctx.state)])


def device_type(ctx: Context) -> bytes:
    model = identity(ctx.state)
    head = bytes([PROTOCOL_VERSION, DEVICE_KKT, model.code]) + DEVICE_MODE
    version = _version(model.firmware) + b"\x00" + _bcd(model.build, 2)
    return head + version + model.name.encode("cp866", errors="replace")


def firmware(sub: int) -> Handler:
    def handler(ctx: Context) -> bytes:
        state = ctx.state
        if sub == cmd.FIRMWARE_FISCAL_MEMORY:  # the FN stands in for the fiscal memory
            text, build = state.fn.firmware, 0
        else:  # the KKT's firmware, and the boot block reported as the same build
            model = identity(state)
            text, build = model.firmware, model.build
        return _version(text) + b"\x00" + _bcd(build, 2)

    return handler


# ------------------------------------------------------------------ 91h registers


def reg_clock(ctx: Context) -> bytes:
    # No documented layout: the same DD MM YY hh mm ss BCD as register 12h.
    return _bcd_stamp(ctx.now, "%d%m%y%H%M%S")


def reg_shift(ctx: Context) -> bytes:
    # [L] The stamp is taken as the moment the shift opened (TerminalClient reads it so
    # in one place); an expired shift is still open (state 1).
    shift = ctx.state.shift
    if not shift.is_open or shift.opened_at is None:
        return bytes(7)
    return b"\x01" + _bcd_stamp(shift.opened_at, "%d%m%y%H%M%S")


def reg_serial(ctx: Context) -> bytes:
    return bytes.fromhex(_serial14(ctx.state))


def reg_unsent(ctx: Context) -> bytes:
    return _bcd(ctx.state.ofd.unsent_count, 3)


def reg_ffd(ctx: Context) -> bytes:
    ffd = ctx.state.ffd
    return bytes([FFD_CODES[ffd.device], FFD_CODES[ffd.fn]])


def reg_extended_error(ctx: Context) -> bytes:
    return b"\x00\x00"


# ------------------------------------------------------------------ A4h FN queries


def fn_record(read: Callable[[DeviceState], bytes]) -> Handler:
    """The handler of an FN pass-through query: the drive's own record."""
    return lambda ctx: read(ctx.state)


def fn_resource(state: DeviceState) -> bytes:
    return fn.resource(state, marking=False)


def fn_registration(state: DeviceState) -> bytes:
    return fn.registration(state, wrong_state=WRONG_FN_STATE, long_layout=False)


def fn_ffd(ctx: Context) -> bytes:
    # [L] FN command 3Ah: the FFD in use, then the highest the FN supports.
    ffd = ctx.state.ffd
    return bytes([FFD_CODES[ffd.registered], FFD_CODES[ffd.fn]])


def fn_days_left(ctx: Context) -> bytes:
    return le(max((ctx.state.fn.valid_until - ctx.now.date()).days, 0), 2)
