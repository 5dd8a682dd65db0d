"""Where each Pirit fact comes from: one read per record (the table of sources).

Each constant names the command, its sub number and the parser of its reply; the
driver runs them, :mod:`kktmon.drivers.pirit.mapping` maps what they return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from kktmon.protocol.pirit import commands as cmd
from kktmon.protocol.pirit import fn_records as fnr
from kktmon.protocol.pirit import records as rec
from kktmon.protocol.pirit.commands import FN_INFO, INFO, FnInfo, Info
from kktmon.protocol.pirit.frame import Reply

T = TypeVar("T")


@dataclass(frozen=True)
class Query(Generic[T]):
    """One read: command, sub number (None for commands without one) and its parser.

    The constants below are the table of sources: which request yields which record.
    """

    command: int
    sub: int | None
    parse: Callable[[Reply], T]

    @property
    def fields(self) -> tuple[int, ...]:
        return () if self.sub is None else (self.sub,)


def _info_query(sub: Info, parse: Callable[[Reply], T]) -> Query[T]:
    return Query(INFO, sub, parse)


def _fn_query(sub: FnInfo, parse: Callable[[Reply], T]) -> Query[T]:
    return Query(FN_INFO, sub, parse)


STATUS = Query(cmd.STATUS, None, rec.parse_status)
CLOCK = Query(cmd.CLOCK, None, rec.parse_clock)
PRINTER = Query(cmd.PRINTER_STATUS, None, rec.parse_printer_status)
FN_STATUS = _fn_query(FnInfo.STATUS, fnr.parse_fn_status)
FN_SERIAL = _fn_query(FnInfo.SERIAL, fnr.parse_fn_serial)
FN_SHIFT = _fn_query(FnInfo.SHIFT, fnr.parse_fn_shift)
LAST_FD = _fn_query(FnInfo.LAST_FD, fnr.parse_last_fd_number)
LAST_FISCAL_AT = _info_query(Info.LAST_FISCAL_OPERATION, rec.parse_last_fiscal_operation)
OFD_QUEUE = _fn_query(FnInfo.OFD_QUEUE, fnr.parse_ofd_queue)
FN_MEMORY = _fn_query(FnInfo.MEMORY, fnr.parse_fn_memory)
SHIFT_OPENED = _info_query(Info.SHIFT_OPENED, rec.parse_shift_opened_at)
SERIAL = _info_query(Info.SERIAL, rec.parse_serial)
MODEL = _info_query(Info.MODEL, rec.parse_model)
FIRMWARE_VERSION = _info_query(Info.FIRMWARE_VERSION, rec.parse_firmware_version)
FIRMWARE_ID = _info_query(Info.FIRMWARE_ID, rec.parse_firmware_id)
INN = _info_query(Info.INN, rec.parse_inn)
RNM = _info_query(Info.RNM, rec.parse_rnm)
FN_EXPIRY = _info_query(Info.FN_EXPIRY, rec.parse_fn_expiry)
FN_VERSIONS = _fn_query(FnInfo.VERSIONS, fnr.parse_fn_versions)
FFD_SUPPORT = _fn_query(FnInfo.FFD, fnr.parse_ffd_support)
