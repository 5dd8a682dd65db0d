"""The fields of ATOL answers, built from the vendor-neutral device state (atol.md section 5).

One handler per allowed (command, sub-command): it returns what follows the answer's
prefix and error byte, or raises :class:`RefusalError` with an error code;
:mod:`kktmon.simulators.atol.answers` adds the prefix of section 4.2. Encodings follow
section 4.3 (quirk Q7): BCD, most significant first, for 3Fh, 9Dh and the 91h
registers; binary little-endian with binary ``YY MM DD hh mm`` dates for the FN
pass-through queries (A4h), which answer like their Shtrih-M twins for the same state.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from kktmon.protocol.atol import commands as cmd
from kktmon.protocol.atol.commands import WRONG_FN_STATE, int_to_bcd
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import Transport

DEFAULT_MODEL_CODE = 61  # ATOL 30Ф, the model of E6
PROTOCOL_VERSION = 0x01  # E2
DEVICE_KKT = 0x01
DEVICE_MODE = b"\x10\x00"  # A5h offsets 4-5, meaning not established: E2's bytes
KKT_NUMBER = 1  # "KKT number in the shop" of 3Fh
DECIMALS = 2
# 3Fh offset 29: which interface the host is on. A pty stands for USB-CDC, the usual
# ATOL cable (E6 was read over USB); TCP is Ethernet.
INTERFACES: dict[Transport, int] = {"pty": 4, "tcp": 6}
FFD_CODES = {"1.0": 1, "1.05": 2, "1.1": 3, "1.2": 4}


class RefusalError(Exception):
    """A handler's way of answering with a non-zero error code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"error {code:02X}h")
        self.code = code


@dataclass(frozen=True)
class Context:
    state: DeviceState
    now: datetime  # the device's clock
    transport: Transport


Handler = Callable[[Context], bytes]  # the fields after the prefix and error byte

# ------------------------------------------------------------------ encodings


def _bcd(value: int, size: int) -> bytes:
    """Big-endian BCD; a value too long for the field keeps its low digits, as counters do."""
    return int_to_bcd(value % 10 ** (2 * size), size)


def _le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


def _bcd_stamp(moment: datetime, layout: str) -> bytes:
    """BCD bytes of ``moment`` in a strftime ``layout`` of two-digit fields."""
    return bytes.fromhex(moment.strftime(layout))


def _fn_date(day: date) -> bytes:
    return bytes([day.year - 2000, day.month, day.day])


def _fn_datetime(moment: datetime) -> bytes:
    return _fn_date(moment) + bytes([moment.hour, moment.minute])


def _ascii(text: str, size: int) -> bytes:
    return text.encode("ascii")[:size].ljust(size, b" ")


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


def _device_state(ctx: Context) -> bytes:
    state, shift = ctx.state, ctx.state.shift
    model = state.model_code if state.model_code is not None else DEFAULT_MODEL_CODE
    next_receipt = shift.receipts + 1 if shift.is_open else 1
    last_closed = shift.number - 1 if shift.is_open else shift.number
    return b"".join(
        [
            b"\x00",  # cashier
            bytes([KKT_NUMBER]),
            _bcd_stamp(ctx.now, "%y%m%d%H%M%S"),
            bytes([_state_flags(state)]),
            bytes.fromhex(_serial14(state)[-8:]),
            bytes([model]),
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


def _status_code(ctx: Context) -> bytes:
    return bytes([0x00, _printer_flags(ctx.state)])


def _device_type(ctx: Context) -> bytes:
    state = ctx.state
    model = state.model_code if state.model_code is not None else DEFAULT_MODEL_CODE
    head = bytes([PROTOCOL_VERSION, DEVICE_KKT, model]) + DEVICE_MODE
    version = _version(state.firmware) + b"\x00" + _bcd(state.firmware_build, 2)
    return head + version + state.model.encode("cp866", errors="replace")


def _firmware(sub: int) -> Handler:
    def handler(ctx: Context) -> bytes:
        state = ctx.state
        if sub == cmd.FIRMWARE_FISCAL_MEMORY:  # the FN stands in for the fiscal memory
            text, build = state.fn.firmware, 0
        else:  # the KKT's firmware, and the boot block reported as the same build
            text, build = state.firmware, state.firmware_build
        return _version(text) + b"\x00" + _bcd(build, 2)

    return handler


# ------------------------------------------------------------------ 91h registers


def _reg_clock(ctx: Context) -> bytes:
    # No documented layout: the same DD MM YY hh mm ss BCD as register 12h.
    return _bcd_stamp(ctx.now, "%d%m%y%H%M%S")


def _reg_shift(ctx: Context) -> bytes:
    # [L] The stamp is taken as the moment the shift opened (TerminalClient reads it so
    # in one place); an expired shift is still open (state 1).
    shift = ctx.state.shift
    if not shift.is_open or shift.opened_at is None:
        return bytes(7)
    return b"\x01" + _bcd_stamp(shift.opened_at, "%d%m%y%H%M%S")


def _reg_serial(ctx: Context) -> bytes:
    return bytes.fromhex(_serial14(ctx.state))


def _reg_unsent(ctx: Context) -> bytes:
    return _bcd(ctx.state.ofd.unsent_count, 3)


def _reg_ffd(ctx: Context) -> bytes:
    ffd = ctx.state.ffd
    return bytes([FFD_CODES[ffd.device], FFD_CODES[ffd.fn]])


def _reg_extended_error(ctx: Context) -> bytes:
    return b"\x00\x00"


# ------------------------------------------------------------------ A4h FN queries


def _fn_shift(ctx: Context) -> bytes:
    shift = ctx.state.shift
    return bytes([int(shift.is_open)]) + _le(shift.number, 2) + _le(shift.receipts, 2)


def _fn_ofd_status(ctx: Context) -> bytes:
    state, ofd = ctx.state, ctx.state.ofd
    number, when = 0, bytes(5)
    if ofd.unsent_count and ofd.first_unsent_at is not None:
        number, when = state.first_unsent_number(), _fn_datetime(ofd.first_unsent_at)
    return bytes([ofd.exchange_status, 0]) + _le(ofd.unsent_count, 2) + _le(number, 4) + when


def _fn_status(ctx: Context) -> bytes:
    fn = ctx.state.fn
    head = bytes([fn.phase, 0, 0, int(ctx.state.shift.is_open), fn.warnings])
    last_at = _fn_datetime(fn.last_document_at) if fn.last_document_number else bytes(5)
    return head + last_at + fn.serial.encode() + _le(fn.last_document_number, 4)


def _fn_serial(ctx: Context) -> bytes:
    return ctx.state.fn.serial.encode()


def _fn_validity(ctx: Context) -> bytes:
    fn = ctx.state.fn
    return _fn_date(fn.valid_until) + bytes([fn.registrations_left, fn.registrations_done])


def _fn_firmware(ctx: Context) -> bytes:
    fn = ctx.state.fn
    return fn.firmware.encode("ascii").ljust(16, b"\x00") + bytes([int(fn.release_firmware)])


def _fn_unconfirmed(ctx: Context) -> bytes:
    return _le(ctx.state.ofd.unsent_count, 2)


def _fn_registration(ctx: Context) -> bytes:
    state, reg = ctx.state, ctx.state.registration
    if state.fn.phase & 0x02 == 0:  # fiscal mode never opened: nothing registered
        raise RefusalError(WRONG_FN_STATE)
    body = _fn_datetime(reg.registered_at) + _ascii(state.inn, 12) + _ascii(state.rnm, 20)
    body += bytes([reg.tax_systems, reg.work_mode])
    return body + _le(reg.fd_number, 4) + _le(reg.fiscal_sign, 4)


def _fn_ffd(ctx: Context) -> bytes:
    # [L] FN command 3Ah: the FFD in use, then the highest the FN supports.
    ffd = ctx.state.ffd
    return bytes([FFD_CODES[ffd.registered], FFD_CODES[ffd.fn]])


def _fn_days_left(ctx: Context) -> bytes:
    return _le(max((ctx.state.fn.valid_until - ctx.now.date()).days, 0), 2)


def _fn_resource(ctx: Context) -> bytes:
    fn = ctx.state.fn
    return _le(fn.documents_left, 4) + _le(fn.storage_30d_free_kb, 4)


# (command, sub-command or None) -> handler; the allowlist decides what params follow.
COMMANDS: dict[tuple[int, int | None], Handler] = {
    (cmd.STATE, None): _device_state,
    (cmd.STATUS_CODE, None): _status_code,
    (cmd.DEVICE_TYPE, None): _device_type,
    **{(cmd.FIRMWARE, sub): _firmware(sub) for sub in (1, 2, 3)},
    (cmd.READ_REGISTER, cmd.REG_CLOCK): _reg_clock,
    (cmd.READ_REGISTER, cmd.REG_SHIFT): _reg_shift,
    (cmd.READ_REGISTER, cmd.REG_SERIAL): _reg_serial,
    (cmd.READ_REGISTER, cmd.REG_UNSENT): _reg_unsent,
    (cmd.READ_REGISTER, cmd.REG_FFD): _reg_ffd,
    (cmd.READ_REGISTER, cmd.REG_EXTENDED_ERROR): _reg_extended_error,
    (cmd.FN_QUERY, cmd.FN_SHIFT): _fn_shift,
    (cmd.FN_QUERY, cmd.FN_OFD_STATUS): _fn_ofd_status,
    (cmd.FN_QUERY, cmd.FN_STATUS): _fn_status,
    (cmd.FN_QUERY, cmd.FN_SERIAL): _fn_serial,
    (cmd.FN_QUERY, cmd.FN_VALIDITY): _fn_validity,
    (cmd.FN_QUERY, cmd.FN_FIRMWARE): _fn_firmware,
    (cmd.FN_QUERY, cmd.FN_UNCONFIRMED): _fn_unconfirmed,
    (cmd.FN_QUERY, cmd.FN_REGISTRATION): _fn_registration,
    (cmd.FN_QUERY, cmd.FN_FFD): _fn_ffd,
    (cmd.FN_QUERY, cmd.FN_DAYS_LEFT): _fn_days_left,
    (cmd.FN_QUERY, cmd.FN_RESOURCE): _fn_resource,
}
