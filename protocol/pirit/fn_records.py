"""Typed records parsed from Pirit FN (0x78) and marking (0x79) replies, pirit.md 4.4-4.5.

Same conventions as :mod:`kktmon.protocol.pirit.records`: each ``parse_*`` takes the
:class:`~kktmon.protocol.pirit.Reply`, checks it and returns a frozen record. The FN
state, warning flags and OFD exchange status stay raw integers (decimal on the wire,
quirk 8) with their documented bits as attributes; ``FnStatus.phase`` and
``FnStatus.warnings.raw`` feed ``FnPhaseInfo.from_byte`` and ``FnWarnings.from_byte``
of the health model (same bit layout), ``OfdQueue.status`` feeds
``OfdExchangeStatus.from_byte``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kktmon.protocol.pirit.commands import FN_INFO, MARKING, FnInfo
from kktmon.protocol.pirit.fields import Bit, Values
from kktmon.protocol.pirit.frame import Reply

#: FFD version codes used by 0x78/14 and 0x78/22 (2 = 1.05, 4 = 1.2).
FFD_VERSIONS = {1: "1.0", 2: "1.05", 3: "1.1", 4: "1.2"}

#: Life phases of 0x78/2 field 1, bits 0-3; other values are "unknown".
FN_PHASES = {0: "setup", 1: "ready", 3: "fiscal", 7: "post_fiscal", 15: "archive_read"}

#: Current FN document of 0x78/2 field 2 (decimal on the wire, hex here as documented).
FN_DOCUMENTS = {
    0x00: "none",
    0x01: "registration report",
    0x02: "shift-open report",
    0x04: "receipt",
    0x08: "shift-close report",
    0x10: "fiscal-mode close report",
    0x11: "BSO",
    0x12: "re-registration with FN change",
    0x13: "re-registration",
    0x14: "correction receipt",
    0x15: "correction BSO",
    0x17: "settlement-state report",
}


def parse_fn_serial(reply: Reply) -> str:
    """0x78/1: the FN serial (16 digits)."""
    return Values.of(reply, FN_INFO, FnInfo.SERIAL).text()


@dataclass(frozen=True)
class FnWarningFlags:
    """0x78/2 field 3; bits 4-6 are not defined by the Pirit documents (keep ``raw``)."""

    raw: int

    urgent_replacement = Bit(0)  # crypto-coprocessor expires within 3 days
    resource_exhausting = Bit(1)  # expires within 30 days
    memory_90 = Bit(2)
    ofd_timeout = Bit(3)
    critical_error = Bit(7)


@dataclass(frozen=True)
class FnStatus:
    """0x78/2: packed FN state, current FN document, warning flags."""

    state: int
    current_document: int
    warnings: FnWarningFlags

    @property
    def phase(self) -> int:
        """Bits 0-3 of the state: 0, 1, 3, 7 or 15 (:data:`FN_PHASES`)."""
        return self.state & 0x0F

    @property
    def document_in_progress(self) -> bool:
        return bool(self.state >> 4 & 1)

    @property
    def shift_open(self) -> bool:
        return bool(self.state >> 5 & 1)


def parse_fn_status(reply: Reply) -> FnStatus:
    v = Values.of(reply, FN_INFO, FnInfo.STATUS)
    state, document, warnings = v.integer(), v.integer(), v.integer()
    return FnStatus(state, document, FnWarningFlags(warnings))


def parse_last_fd_number(reply: Reply) -> int:
    """0x78/3: number of the last fiscal document (a String field holding digits)."""
    return Values.of(reply, FN_INFO, FnInfo.LAST_FD).integer()


def parse_fn_registered_at(reply: Reply) -> datetime | None:
    """0x78/4: registration date and time."""
    return Values.of(reply, FN_INFO, FnInfo.REGISTERED_AT).moment()


def parse_registration_fd(reply: Reply) -> int:
    """0x78/5: FD number of the last registration."""
    return Values.of(reply, FN_INFO, FnInfo.REGISTRATION_FD).integer()


@dataclass(frozen=True)
class FnShift:
    number: int
    open: bool
    receipt_number: int


def parse_fn_shift(reply: Reply) -> FnShift:
    """0x78/6: shift number, open (1/0), receipt number in the shift."""
    v = Values.of(reply, FN_INFO, FnInfo.SHIFT)
    return FnShift(v.integer(), v.integer() != 0, v.integer())


@dataclass(frozen=True)
class OfdQueue:
    """0x78/7. With nothing unsent, number and date are None whatever was sent."""

    status: int
    unsent_count: int
    first_unsent_number: int | None
    first_unsent_at: datetime | None

    transport_connected = Bit(0)
    message_pending = Bit(1)
    awaiting_receipt = Bit(2)
    command_from_ofd = Bit(3)
    settings_changed = Bit(4)
    awaiting_command_answer = Bit(5)
    reading_started = Bit(6)

    @property
    def raw(self) -> int:
        return self.status


def parse_ofd_queue(reply: Reply) -> OfdQueue:
    v = Values.of(reply, FN_INFO, FnInfo.OFD_QUEUE)
    status = v.integer()
    count = v.integer() if v.has() else 0
    if count == 0:  # number, date and time may be 0, empty, 000000 or absent (4.4)
        return OfdQueue(status, 0, None, None)
    return OfdQueue(status, count, v.integer(), v.moment())


@dataclass(frozen=True)
class FnVersions:
    """0x78/14: 5 values on FFD 1.05 firmware, 7 on FFD 1.2; absent ones are None."""

    fn_firmware: str
    fn_type: int | None  # 0 debug, 1 serial
    ffd: int | None  # tag 1209, FFD version code
    register_version: str | None  # tag 1188
    register_ffd: int | None  # tag 1189
    fn_registered_ffd: int | None
    fn_max_ffd: int | None


def parse_fn_versions(reply: Reply) -> FnVersions:
    v = Values.of(reply, FN_INFO, FnInfo.VERSIONS)
    firmware, fn_type, ffd = v.text(), v.opt_integer(), v.opt_integer()
    register_version = v.text() if v.has() else None
    return FnVersions(
        firmware, fn_type, ffd, register_version, v.opt_integer(), v.opt_integer(), v.opt_integer()
    )


def parse_shift_open_fd(reply: Reply) -> int:
    """0x78/17: FD number that opened the current shift."""
    return Values.of(reply, FN_INFO, FnInfo.SHIFT_OPEN_FD).integer()


@dataclass(frozen=True)
class FnMemory:
    """0x78/18, Punix (Pirit 2SF / Dreamkas-F core) only."""

    documents_left: int  # approx. 5-year-storage documents that still fit
    storage_30d_free_kb: int


def parse_fn_memory(reply: Reply) -> FnMemory:
    v = Values.of(reply, FN_INFO, FnInfo.MEMORY)
    return FnMemory(v.integer(), v.integer())


@dataclass(frozen=True)
class LastRegistration:
    fd_number: int
    fiscal_sign: int
    at: datetime | None


def parse_last_registration(reply: Reply) -> LastRegistration:
    """0x78/19: FD, FP, date and time of the last (re)registration."""
    v = Values.of(reply, FN_INFO, FnInfo.LAST_REGISTRATION)
    return LastRegistration(v.integer(), v.integer(), v.moment())


@dataclass(frozen=True)
class FfdSupport:
    current: int
    fn_max: int


def parse_ffd_support(reply: Reply) -> FfdSupport:
    """0x78/22 (FFD 1.2 firmware): current FFD and the FN's maximum (2 = 1.05, 4 = 1.2)."""
    v = Values.of(reply, FN_INFO, FnInfo.FFD)
    return FfdSupport(v.integer(), v.integer())


# ------------------------------------------------------------------ 0x79 marking


@dataclass(frozen=True)
class MarkingNotices:
    """0x79/6 (FFD 1.2 with marking): the notice backlog."""

    state: int
    queue_size: int
    current_number: int
    at: datetime | None
    storage_fill_pct: int


def parse_marking_notices(reply: Reply) -> MarkingNotices:
    v = Values.of(reply, MARKING, 6)
    state, size, number, at = v.integer(), v.integer(), v.integer(), v.moment()
    return MarkingNotices(state, size, number, at, v.integer())


MARKING_FILL_LEVELS = {0: "<50 %", 1: "50-80 %", 2: "80-90 %", 3: ">90 %", 4: "full"}


@dataclass(frozen=True)
class MarkingStatus:
    """0x79/0: six integers; the last is the notice storage fill level 0..4."""

    values: tuple[int, ...]

    @property
    def storage_fill_level(self) -> int:
        return self.values[-1]


def parse_marking_status(reply: Reply) -> MarkingStatus:
    v = Values.of(reply, MARKING, 0)
    return MarkingStatus(tuple(v.integer() for _ in range(6)))
