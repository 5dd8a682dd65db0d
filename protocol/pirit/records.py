"""Typed records parsed from Pirit replies (pirit.md section 4).

Each ``parse_*`` takes the :class:`~kktmon.protocol.pirit.Reply` that
:class:`~kktmon.protocol.pirit.HostLink` returned, checks command, error code and sub
echo (:func:`~kktmon.protocol.pirit.commands.answer_fields`) and returns a frozen record
or a plain value. Flag masks stay raw beside their decoded bits. Replies may carry more
values than documented (newer firmware, quirk 10): extras are ignored; values that
older firmware leaves out come back as ``None``. FN (0x78) and marking (0x79) replies
are in :mod:`kktmon.protocol.pirit.fn_records`; the FN expiry (0x02/14) is the drive's
vendor-neutral :class:`~kktmon.protocol.fn.FnValidity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from kktmon.protocol.fn import FnValidity
from kktmon.protocol.pirit.commands import (
    CLOCK,
    COUNTERS,
    DIAGNOSTICS,
    DRAWER,
    INFO,
    PRINTER_STATUS,
    READ_SETTING,
    SERVICE_INFO,
    STATUS,
    Info,
    answer_fields,
)
from kktmon.protocol.pirit.errors import EXTENDED_REASONS
from kktmon.protocol.pirit.fields import Bit, Values
from kktmon.protocol.pirit.frame import Reply

# ------------------------------------------------------------------ 0x00 status


@dataclass(frozen=True)
class FatalStatus:
    """Field 1 of 0x00; any bit set blocks the register (pirit.md 4.1)."""

    raw: int

    nvr_checksum = Bit(0)
    config_checksum = Bit(1)
    fn_link_lost = Bit(2)
    not_authorized = Bit(5)
    fn_fatal = Bit(6)
    sd_card_fault = Bit(8)  # Viki Print only


@dataclass(frozen=True)
class StatusFlags:
    """Field 2 of 0x00, the current flags."""

    raw: int

    start_of_work_pending = Bit(0)  # 10h not yet sent
    non_fiscal = Bit(1)
    shift_open = Bit(2)
    shift_over_24h = Bit(3)
    fn_archive_closed = Bit(4)
    fn_not_registered = Bit(5)
    shift_close_unfinished = Bit(8)
    control_tape_error = Bit(9)  # Viki Print only


DOCUMENT_TYPES = {
    0: "none",
    1: "service",
    2: "sale",
    3: "sale return",
    4: "cash-in",
    5: "cash-out",
    6: "purchase",
    7: "purchase return",
    9: "sale correction",
    10: "purchase correction",
    11: "sale return correction",
    12: "purchase return correction",
}
DOCUMENT_STATES = {
    0: "closed",
    1: "opened",
    2: "after first subtotal",
    3: "after second subtotal / payment started",
    4: "paid, must be closed",
    8: "closed in FN, not fully printed",
}


@dataclass(frozen=True)
class DocumentStatus:
    """Field 3 of 0x00: bits 0-3 the open document's type, bits 4-7 its state."""

    raw: int

    @property
    def type(self) -> int:
        return self.raw & 0x0F

    @property
    def state(self) -> int:
        return self.raw >> 4 & 0x0F

    @property
    def open(self) -> bool:
        """Any document in progress (pirit.md 4.6: field 3 != 0)."""
        return self.raw != 0


@dataclass(frozen=True)
class Status:
    fatal: FatalStatus
    flags: StatusFlags
    document: DocumentStatus
    skno: int | None  # 4th field, Belarus (SKNO) firmware only


def parse_status(reply: Reply) -> Status:
    v = Values.of(reply, STATUS)
    fatal, flags, document = v.integer(), v.integer(), v.integer()
    return Status(FatalStatus(fatal), StatusFlags(flags), DocumentStatus(document), v.opt_integer())


# ------------------------------------------------------------------ 0x04 printer


@dataclass(frozen=True)
class PrinterStatus:
    raw: int

    not_ready = Bit(0)
    paper_out = Bit(1)
    cover_open = Bit(2)
    cutter_error = Bit(3)
    mechanism_link_lost = Bit(7)


def parse_printer_status(reply: Reply) -> PrinterStatus:
    return PrinterStatus(Values.of(reply, PRINTER_STATUS).integer())


# ------------------------------------------------------------------ 0x02 register info


def parse_info_text(reply: Reply, sub: int) -> str:
    """0x02 subs answering one string: 1 serial, 3 INN, 4 RNM, 70/71 versions."""
    return Values.of(reply, INFO, sub).text()


def parse_info_int(reply: Reply, sub: int) -> int:
    """0x02 subs answering one integer: 2 firmware id, 8, 9, 15, 16 (0 = 80 mm, 1 = 57 mm)."""
    return Values.of(reply, INFO, sub).integer()


def parse_serial(reply: Reply) -> str:
    return parse_info_text(reply, Info.SERIAL)


def parse_inn(reply: Reply) -> str:
    return parse_info_text(reply, Info.INN)


def parse_rnm(reply: Reply) -> str:
    return parse_info_text(reply, Info.RNM)


def parse_firmware_version(reply: Reply) -> str:
    """0x02/70, ``x.y.z``."""
    return parse_info_text(reply, Info.FIRMWARE_VERSION)


def parse_firmware_id(reply: Reply) -> int:
    """0x02/2: 565 for Pirit 2F, 665 for Viki Print (pirit.md 7)."""
    return parse_info_int(reply, Info.FIRMWARE_ID)


def parse_last_fiscal_operation(reply: Reply) -> datetime | None:
    return Values.of(reply, INFO, Info.LAST_FISCAL_OPERATION).moment()


def parse_registration_date(reply: Reply) -> date | None:
    return Values.of(reply, INFO, Info.REGISTRATION_DATE).day()


def parse_shift_opened_at(reply: Reply) -> datetime | None:
    """0x02/17: when the open shift began (meaningless with the shift closed)."""
    return Values.of(reply, INFO, Info.SHIFT_OPENED).moment()


def parse_fn_expiry(reply: Reply) -> FnValidity:
    """0x02/14: the date (FFD 1.05 firmware) or the date and the days left (FFD 1.2)."""
    v = Values.of(reply, INFO, Info.FN_EXPIRY)
    return FnValidity(valid_until=v.day(), days_left=v.opt_integer())


MODEL_NAMES = {
    1: "Viki Mini",
    2: "Viki Tower",
    3: "Viki Print 57",
    4: "Viki Print 57+",
    5: "Viki Print 80+",
    8: "Pirit 2F",
    9: "Pirit 2SF",
}


@dataclass(frozen=True)
class Model:
    code: int
    name: str | None  # None for a code the reference does not list


def parse_model(reply: Reply) -> Model:
    code = parse_info_int(reply, Info.MODEL)
    return Model(code, MODEL_NAMES.get(code))


@dataclass(frozen=True)
class Hardware:
    """0x02/22, Viki Print only."""

    raw: int

    sd_present = Bit(2)
    fn_present = Bit(3)


def parse_hardware(reply: Reply) -> Hardware:
    return Hardware(parse_info_int(reply, Info.HARDWARE))


@dataclass(frozen=True)
class TaxModes:
    tax_systems: int
    work_mode: int
    extra_mode: int


def parse_tax_modes(reply: Reply) -> TaxModes:
    v = Values.of(reply, INFO, Info.TAX_MODES)
    return TaxModes(v.integer(), v.integer(), v.integer())


# ------------------------------------------------------------------ other helpers


def parse_shift_number(reply: Reply) -> int:
    """0x01/1: the current shift number."""
    return Values.of(reply, COUNTERS, 1).integer()


def parse_service_value(reply: Reply, sub: int) -> str:
    """0x05/sub as the register wrote it: the reference gives no units or formats."""
    return Values.of(reply, SERVICE_INFO, sub).text()


@dataclass(frozen=True)
class ErrorReason:
    code: int
    text: str | None  # Viki Print / Punix add the vendor's text

    @property
    def meaning(self) -> str | None:
        return EXTENDED_REASONS.get(self.code)


def parse_error_reason(reply: Reply) -> ErrorReason:
    """0x06/1: reason of the last 01h/03h error (of any client of the register)."""
    v = Values.of(reply, DIAGNOSTICS, 1)
    code = v.integer()
    text = v.text() if v.has() else ""
    return ErrorReason(code, text or None)


@dataclass(frozen=True)
class FnLock:
    """0x06/2, the FN lock status mask."""

    raw: int

    fn_not_found = Bit(1)
    archive_not_closed = Bit(2)
    archive_test_error = Bit(3)
    fn_link_error = Bit(4)
    shift_close_unfinished = Bit(5)
    fn_full = Bit(7)


def parse_fn_lock(reply: Reply) -> FnLock:
    return FnLock(Values.of(reply, DIAGNOSTICS, 2).integer())


def parse_clock(reply: Reply) -> datetime | None:
    """0x13: the register's clock (None if it reports a placeholder date)."""
    return Values.of(reply, CLOCK).moment()


def parse_setting(reply: Reply) -> str:
    """0x11: the value only (no echo); empty when the register sends no value."""
    values = answer_fields(reply, READ_SETTING)
    return values[0].strip() if values else ""


def parse_drawer_open(reply: Reply) -> bool:
    """0x81: 0 closed, 1 open."""
    return Values.of(reply, DRAWER).integer() != 0
