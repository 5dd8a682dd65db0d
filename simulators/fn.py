"""What the fiscal drive itself answers, built from the device state, for every register
that passes its commands through.

The drive speaks one protocol whatever register it sits in: Shtrih-M (``FFxxh``) and
ATOL (``A4h xx``) hand its binary records over byte for byte, so both emulators answer
them from here, and one state reads the same through either (the encoding side of
:mod:`kktmon.protocol.fn`). Numbers are little-endian, dates ``YY MM DD`` and times
``hh mm`` in binary, serials ASCII. Each function returns the record that follows the
vendor's command echo and error byte.
"""

from __future__ import annotations

from datetime import date, datetime

from kktmon.simulators.emulator import RefusalError
from kktmon.simulators.scenario import DeviceState

#: FFD version codes (tag 1209 and its twins), as every register reports them.
FFD_CODES = {"1.0": 1, "1.05": 2, "1.1": 3, "1.2": 4}


# ------------------------------------------------------------------ encodings


def le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


def fn_date(day: date) -> bytes:
    return bytes([day.year - 2000, day.month, day.day])


def fn_datetime(moment: datetime) -> bytes:
    return fn_date(moment) + bytes([moment.hour, moment.minute])


def ascii_field(text: str, size: int) -> bytes:
    """ASCII, cut or padded with spaces to ``size`` (INN, RNM)."""
    return text.encode("ascii")[:size].ljust(size, b" ")


# ------------------------------------------------------------------ records


def status(state: DeviceState) -> bytes:
    """FN status: phase, document, shift flag, warnings, last document and the serial."""
    fn = state.fn
    head = bytes([fn.phase, 0, 0, int(state.shift.is_open), fn.warnings])
    last_at = fn_datetime(fn.last_document_at) if fn.last_document_number else bytes(5)
    return head + last_at + fn.serial.encode() + le(fn.last_document_number, 4)


def serial(state: DeviceState) -> bytes:
    return state.fn.serial.encode()


def validity(state: DeviceState) -> bytes:
    fn = state.fn
    return fn_date(fn.valid_until) + bytes([fn.registrations_left, fn.registrations_done])


def firmware(state: DeviceState) -> bytes:
    fn = state.fn
    return fn.firmware.encode("ascii").ljust(16, b"\x00") + bytes([int(fn.release_firmware)])


def ofd_status(state: DeviceState) -> bytes:
    """OFD exchange: status bits, unsent count, the first unsent document and its time."""
    ofd = state.ofd
    number, when = 0, bytes(5)
    if ofd.unsent_count and ofd.first_unsent_at is not None:
        number, when = state.first_unsent_number(), fn_datetime(ofd.first_unsent_at)
    return bytes([ofd.exchange_status, 0]) + le(ofd.unsent_count, 2) + le(number, 4) + when


def unconfirmed(state: DeviceState) -> bytes:
    return le(state.ofd.unsent_count, 2)


def shift(state: DeviceState) -> bytes:
    """Shift parameters: open, number, receipts in it."""
    current = state.shift
    return bytes([int(current.is_open)]) + le(current.number, 2) + le(current.receipts, 2)


def resource(state: DeviceState, *, marking: bool) -> bytes:
    """Documents and 30-day storage left; ``marking``: the marking fill byte, if known."""
    fn = state.fn
    tail = b"" if not marking or fn.marking_fill_pct is None else bytes([fn.marking_fill_pct])
    return le(fn.documents_left, 4) + le(fn.storage_30d_free_kb, 4) + tail


def registration(state: DeviceState, *, wrong_state: int, long_layout: bool) -> bytes:
    """The last registration; refused with ``wrong_state`` before fiscal mode opened.

    ``long_layout`` adds the FFD 1.1+ tail (extended mode, OFD INN, change reasons).
    """
    reg = state.registration
    if state.fn.phase & 0x02 == 0:  # fiscal mode never opened: nothing registered
        raise RefusalError(wrong_state)
    body = fn_datetime(reg.registered_at) + ascii_field(state.inn, 12)
    body += ascii_field(state.rnm, 20) + bytes([reg.tax_systems, reg.work_mode])
    if long_layout:
        body += b"\x00" + ascii_field(reg.ofd_inn, 12) + le(0, 4)
    return body + le(reg.fd_number, 4) + le(reg.fiscal_sign, 4)
