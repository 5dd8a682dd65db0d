"""Typed records parsed from Pirit FN (0x78) and marking (0x79) replies, pirit.md 4.4-4.5.

Same conventions as :mod:`kktmon.protocol.pirit.records`: each ``parse_*`` takes the
:class:`~kktmon.protocol.pirit.Reply`, checks it and returns a frozen record. The drive's
own facts come back as the vendor-neutral records of :mod:`kktmon.protocol.fn`, the
same every vendor's parsers return; Pirit retells the drive's answers as decimal text
(quirk 8) instead of passing its bytes through:

=============  ===============  ==============================================
sub            record           notes
=============  ===============  ==============================================
0x78/2         FnStatus         packed state split into phase and two flags
0x78/6         ShiftParameters  shift open, number, receipt number
0x78/7         OfdStatus        ``exchange`` as sent: bit 6 is the reading flag
0x78/18        FnResource       Punix firmware only
=============  ===============  ==============================================

The expiry read (0x02/14) is in :mod:`kktmon.protocol.pirit.records`. What only Pirit
tells (0x78/14 versions, 0x78/22 FFD support, 0x78/19, the 0x79 marking reads) keeps
records of its own here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kktmon.protocol.fn import FnResource, FnStatus, OfdStatus, ShiftParameters
from kktmon.protocol.pirit.commands import FN_INFO, MARKING, FnInfo
from kktmon.protocol.pirit.fields import Values
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


#: Bits of the packed FN state (0x78/2 field 1) beside the life phase in bits 0-3.
STATE_PHASE_MASK = 0x0F
STATE_DOCUMENT_DATA = 0x10  # the FN holds data of a document in progress
STATE_SHIFT_OPEN = 0x20  # the FN's view of the shift


def parse_fn_status(reply: Reply) -> FnStatus:
    """0x78/2: packed FN state, current FN document (:data:`FN_DOCUMENTS`), warning flags.

    The state's bits 0-3 are the phase (:data:`FN_PHASES`), bit 4 "document data
    received", bit 5 "shift open"; the warning byte is the drive's (bits 4-6 are not
    defined by the Pirit documents and stay in it). Serial and last document come from
    other subs (0x78/1, 0x78/3), so they are None here.
    """
    v = Values.of(reply, FN_INFO, FnInfo.STATUS)
    state, document, warnings = v.integer(), v.integer(), v.integer()
    return FnStatus(
        serial=None,
        phase=state & STATE_PHASE_MASK,
        warnings=warnings,
        shift_open=bool(state & STATE_SHIFT_OPEN),
        current_document=document,
        document_data_received=bool(state & STATE_DOCUMENT_DATA),
    )


def parse_last_fd_number(reply: Reply) -> int:
    """0x78/3: number of the last fiscal document (a String field holding digits)."""
    return Values.of(reply, FN_INFO, FnInfo.LAST_FD).integer()


def parse_fn_registered_at(reply: Reply) -> datetime | None:
    """0x78/4: registration date and time."""
    return Values.of(reply, FN_INFO, FnInfo.REGISTERED_AT).moment()


def parse_registration_fd(reply: Reply) -> int:
    """0x78/5: FD number of the last registration."""
    return Values.of(reply, FN_INFO, FnInfo.REGISTRATION_FD).integer()


def parse_fn_shift(reply: Reply) -> ShiftParameters:
    """0x78/6: shift number, open (1/0), receipt number in the shift."""
    v = Values.of(reply, FN_INFO, FnInfo.SHIFT)
    number, is_open, receipt = v.integer(), v.integer() != 0, v.integer()
    return ShiftParameters(open=is_open, number=number, receipt_number=receipt)


#: Bit 6 of the 0x78/7 mask, "reading of a message for the OFD has started" (the drive
#: itself sends it as a byte of its own beside the exchange byte).
OFD_READING_MESSAGE = 0x40


def parse_ofd_queue(reply: Reply) -> OfdStatus:
    """0x78/7. With nothing unsent, number and date are None whatever was sent.

    ``exchange`` is the mask as sent, bit 6 included (bits 0-5 read as every vendor's
    exchange byte); ``reading_message`` is that bit 6.
    """
    v = Values.of(reply, FN_INFO, FnInfo.OFD_QUEUE)
    mask = v.integer()
    count = v.integer() if v.has() else 0
    reading = bool(mask & OFD_READING_MESSAGE)
    if count == 0:  # number, date and time may be 0, empty, 000000 or absent (4.4)
        return OfdStatus(mask, reading, 0, None, None)
    return OfdStatus(mask, reading, count, v.integer(), v.moment())


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


def parse_fn_memory(reply: Reply) -> FnResource:
    """0x78/18, Punix (Pirit 2SF / Dreamkas-F core) only: the approximate number of
    5-year-storage documents that still fit, free KB of the 30-day storage."""
    v = Values.of(reply, FN_INFO, FnInfo.MEMORY)
    return FnResource(documents_left=v.integer(), storage_30d_free_kb=v.integer())


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
