"""What a simulated Pirit register answers to each read-only command (pirit.md section 4).

Pure functions from a vendor-neutral :class:`~kktmon.simulators.scenario.DeviceState`
to reply values: each builder gets the :class:`Context` and returns the values of a
successful reply, or raises :class:`~kktmon.simulators.emulator.RefusalError` with the
reply's error code (and the extended reason 06h/1 reports afterwards). Commands with
sub-requests (02h, 78h, 79h ...) have a table of builders per sub, 11h one per setting;
:mod:`kktmon.simulators.pirit.emulator` routes each request to its builder after the
password and allowlist checks, and echoes the sub first (pirit.md 2.2).

Where the state has no home for a fact the register reports, a fixed plausible value is
sent: service values of 05h, drawer 81h (closed), paper width 02h/16 (80 mm), firmware
type 02h/15 (standard). 02h/2 "firmware identifier" is ``firmware_build``; the model
code 02h/21 is ``model_code``, by default 9 (Pirit 2SF, the Punix core that documents
78h/18). An unknown sub-request, and one the state lists as unsupported, answers 03h
and leaves extended reason 66 ("bad request number") for 06h/1, as worked example 8
does for 78h.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from kktmon.protocol.pirit.commands import FnInfo, Info
from kktmon.protocol.pirit.errors import BAD_PARAMETER, WRONG_FN_STATE
from kktmon.protocol.pirit.frame import TEXT_MAX, TEXT_MIN
from kktmon.simulators import emulator
from kktmon.simulators.emulator import RefusalError
from kktmon.simulators.fn import FFD_CODES
from kktmon.simulators.scenario import DeviceState

DEFAULT_MODEL_CODE = 9  # Pirit 2SF (Dreamkas-F core): 78h/18 is documented for it
BAD_REQUEST_NUMBER = 66  # 06h/1 extended reason
BUSY_DOCUMENT = 0x82  # 00h field 3: a sale (type 2) closed in the FN, still printing (8)
NO_DATE = "000000"
SERVICE_VALUES = {1: 24, 2: 31, 3: 1520, 4: 1876, 7: 3012, 8: 0, 9: 0, 10: 0, 11: 0, 12: 0, 13: 0}

Value = int | str | bytes


@dataclass(frozen=True)
class Context(emulator.Context):
    error_reason: int  # extended reason of the last 01h/03h error (06h/1)
    busy: bool  # printing: 00h shows a document in progress


Answer = Callable[[Context], tuple[Value, ...]]


def text(value: str) -> bytes:
    """CP866 text clamped to the legal range 20h..F0h (anything else becomes ``?``)."""
    raw = value.encode("cp866", errors="replace")
    return bytes(b if TEXT_MIN <= b <= TEXT_MAX else 0x3F for b in raw)


def ddmmyy(day: date | None) -> str:
    return NO_DATE if day is None else f"{day:%d%m%y}"


def moment(at: datetime | None) -> tuple[str, str]:
    """Date and Time fields; ``000000`` twice for "no date" (quirk 9)."""
    return (NO_DATE, NO_DATE) if at is None else (f"{at:%d%m%y}", f"{at:%H%M%S}")


def _fiscal(state: DeviceState) -> bool:
    return bool(state.fn.phase & 0x02)  # 3 fiscal, 7 post-fiscal, 15 archive


def _registered(ctx: Context) -> None:
    if not _fiscal(ctx.state):
        raise RefusalError(WRONG_FN_STATE)  # never registered: no registration data


# ------------------------------------------------------------------ 00h, 04h


def shift_over_24h(ctx: Context) -> bool:
    shift = ctx.state.shift
    if shift.state == "expired":
        return True
    opened = shift.opened_at
    return shift.is_open and opened is not None and ctx.now - opened >= timedelta(hours=24)


def status(ctx: Context) -> tuple[Value, ...]:
    state = ctx.state
    fatal = 1 << 6 if state.fn.warnings & 0x80 else 0  # FN critical error -> FN fatal
    flags = 0
    if not _fiscal(state):
        flags |= 1 << 1 | 1 << 5  # non-fiscal mode, FN not registered
    if state.shift.is_open:
        flags |= 1 << 2
    if shift_over_24h(ctx):
        flags |= 1 << 3
    if state.fn.phase & 0x04:  # 7 post-fiscal, 15 archive reading
        flags |= 1 << 4
    return fatal, flags, BUSY_DOCUMENT if ctx.busy else 0


def printer_status(ctx: Context) -> tuple[Value, ...]:
    printer = ctx.state.printer
    mask = int(printer.fault) | (printer.paper == "out") << 1 | printer.cover_open << 2
    return (mask,)


# ------------------------------------------------------------------ 02h register info


def _fn_expiry(ctx: Context) -> tuple[Value, ...]:
    until = ctx.state.fn.valid_until
    if ctx.state.ffd.device != "1.2":
        return (ddmmyy(until),)  # FFD 1.05 firmware: the date only
    return ddmmyy(until), max(0, (until - ctx.now.date()).days)


def _model(ctx: Context) -> tuple[Value, ...]:
    code = ctx.state.model_code
    return (DEFAULT_MODEL_CODE if code is None else code,)


def _shift_opened(ctx: Context) -> tuple[Value, ...]:
    return moment(ctx.state.shift.opened_at)  # the last shift's, once it is closed


INFO_ANSWERS: dict[int, Answer] = {
    Info.SERIAL: lambda c: (text(c.state.serial),),
    Info.FIRMWARE_ID: lambda c: (c.state.firmware_build,),
    Info.INN: lambda c: (text(c.state.inn.ljust(12)),),  # padded as the field is (quirk 13)
    Info.RNM: lambda c: (text(c.state.rnm),),
    Info.LAST_FISCAL_OPERATION: lambda c: moment(c.state.fn.last_document_at),
    Info.REGISTRATION_DATE: lambda c: (ddmmyy(c.state.registration.registered_at),),
    Info.NEXT_DOCUMENT: lambda c: (c.state.fn.last_document_number + 1,),
    Info.FN_EXPIRY: _fn_expiry,
    Info.FIRMWARE_TYPE: lambda c: (0,),
    Info.PAPER: lambda c: (0,),
    Info.SHIFT_OPENED: _shift_opened,
    Info.MODEL: _model,
    Info.TAX_MODES: lambda c: (c.state.registration.tax_systems, c.state.registration.work_mode, 0),
    Info.FIRMWARE_VERSION: lambda c: (text(c.state.firmware),),
}


# ------------------------------------------------------------------ 78h FN information


def fn_state(state: DeviceState) -> int:
    """0x78/2 field 1: phase in bits 0-3, bit 5 the FN's view of the shift."""
    return state.fn.phase & 0x0F | int(state.shift.is_open) << 5


def _fn_status(ctx: Context) -> tuple[Value, ...]:
    return fn_state(ctx.state), 0, ctx.state.fn.warnings


def _fn_registered_at(ctx: Context) -> tuple[Value, ...]:
    _registered(ctx)
    return moment(ctx.state.registration.registered_at)


def _registration_fd(ctx: Context) -> tuple[Value, ...]:
    _registered(ctx)
    return (ctx.state.registration.fd_number,)


def _fn_shift(ctx: Context) -> tuple[Value, ...]:
    shift = ctx.state.shift
    return shift.number, int(shift.is_open), shift.receipts


def ofd_queue(ctx: Context) -> tuple[Value, ...]:
    """0x78/7; an empty queue sends zeros (the reference leaves 0 vs empty open)."""
    state = ctx.state
    ofd = state.ofd
    if not ofd.unsent_count or ofd.first_unsent_at is None:
        return ofd.exchange_status, 0, 0, NO_DATE, NO_DATE
    first = state.first_unsent_number()
    return ofd.exchange_status, ofd.unsent_count, first, *moment(ofd.first_unsent_at)


def _fn_versions(ctx: Context) -> tuple[Value, ...]:
    state = ctx.state
    ffd = state.ffd
    head = (
        text(state.fn.firmware),
        int(state.fn.release_firmware),  # FN type: 0 debug, 1 serial
        FFD_CODES[ffd.registered],  # tag 1209
        text(state.firmware),  # tag 1188
        FFD_CODES[ffd.device],  # tag 1189
    )
    if ffd.device != "1.2":
        return head
    return (*head, FFD_CODES[ffd.registered], FFD_CODES[ffd.fn])


def _shift_open_fd(ctx: Context) -> tuple[Value, ...]:
    # The same numbering as the synthesised FN archive (scenario.synthesise_document).
    state = ctx.state
    closed = 0 if state.shift.is_open else 1
    return (max(0, state.fn.last_document_number - state.shift.receipts - closed),)


def _last_registration(ctx: Context) -> tuple[Value, ...]:
    _registered(ctx)
    reg = ctx.state.registration
    return reg.fd_number, reg.fiscal_sign, *moment(reg.registered_at)


def _ffd_support(ctx: Context) -> tuple[Value, ...]:
    ffd = ctx.state.ffd
    if ffd.device != "1.2":
        raise RefusalError(BAD_PARAMETER, BAD_REQUEST_NUMBER)  # FFD 1.2 firmware only
    return FFD_CODES[ffd.registered], FFD_CODES[ffd.fn]


FN_ANSWERS: dict[int, Answer] = {
    FnInfo.SERIAL: lambda c: (text(c.state.fn.serial),),
    FnInfo.STATUS: _fn_status,
    FnInfo.LAST_FD: lambda c: (str(c.state.fn.last_document_number),),
    FnInfo.REGISTERED_AT: _fn_registered_at,
    FnInfo.REGISTRATION_FD: _registration_fd,
    FnInfo.SHIFT: _fn_shift,
    FnInfo.OFD_QUEUE: ofd_queue,
    FnInfo.VERSIONS: _fn_versions,
    FnInfo.SHIFT_OPEN_FD: _shift_open_fd,
    FnInfo.MEMORY: lambda c: (c.state.fn.documents_left, c.state.fn.storage_30d_free_kb),
    FnInfo.LAST_REGISTRATION: _last_registration,
    FnInfo.FFD: _ffd_support,
}


# ------------------------------------------------------------------ 79h marking, others


def _marking_pct(ctx: Context) -> int:
    pct = ctx.state.fn.marking_fill_pct
    if pct is None:  # an FN not registered for marked goods: no such request
        raise RefusalError(BAD_PARAMETER, BAD_REQUEST_NUMBER)
    return pct


def _fill_level(pct: int) -> int:
    """0x79/0 level: 0 <50 %, 1 50-80 %, 2 80-90 %, 3 >90 %, 4 full."""
    return 4 if pct >= 100 else 3 if pct > 90 else 2 if pct >= 80 else 1 if pct >= 50 else 0


MARKING_ANSWERS: dict[int, Answer] = {
    0: lambda c: (0, 0, 0, 0, 0, _fill_level(_marking_pct(c))),
    6: lambda c: (0, 0, 0, NO_DATE, NO_DATE, _marking_pct(c)),
}


def _constant(value: Value) -> Answer:
    return lambda _: (value,)


SERVICE_ANSWERS: dict[int, Answer] = {
    sub: _constant(value) for sub, value in SERVICE_VALUES.items()
}

COUNTER_ANSWERS: dict[int, Answer] = {1: lambda c: (c.state.shift.number,)}

DIAGNOSTIC_ANSWERS: dict[int, Answer] = {
    1: lambda c: (c.error_reason,),
    2: lambda c: ((c.state.fn.documents_left == 0) << 7,),  # bit 7: FN full
}

#: 11h (setting number, index) -> value: OFD server, port and INN (pirit.md 4.5).
SETTINGS: dict[tuple[int, int], Callable[[DeviceState], Value]] = {
    (77, 0): lambda s: text(s.ofd.server),
    (78, 0): lambda s: s.ofd.port,
    (71, 0): lambda s: text(s.registration.ofd_inn),
}
