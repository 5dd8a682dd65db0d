"""Where each Pirit fact comes from: one read per record (the table of sources).

Each constant names the command, its sub number and the parser of its reply; the
driver runs them, :mod:`kktmon.drivers.pirit.mapping` maps what they return. No read
is marked slow: Pirit's answer waits go by command
(:func:`kktmon.protocol.pirit.commands.answer_timeout_s`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from kktmon.drivers.wire import Read
from kktmon.protocol.pirit import commands as cmd
from kktmon.protocol.pirit import fn_records as fnr
from kktmon.protocol.pirit import records as rec
from kktmon.protocol.pirit.commands import FN_INFO, INFO, FnInfo, Info
from kktmon.protocol.pirit.frame import Reply

T = TypeVar("T")


def _info(sub: Info, parse: Callable[[Reply], T]) -> Read[Reply, T]:
    return Read(INFO, sub, parse)


def _fn(sub: FnInfo, parse: Callable[[Reply], T]) -> Read[Reply, T]:
    return Read(FN_INFO, sub, parse)


STATUS = Read(cmd.STATUS, None, rec.parse_status)
CLOCK = Read(cmd.CLOCK, None, rec.parse_clock)
PRINTER = Read(cmd.PRINTER_STATUS, None, rec.parse_printer_status)
FN_STATUS = _fn(FnInfo.STATUS, fnr.parse_fn_status)
FN_SERIAL = _fn(FnInfo.SERIAL, fnr.parse_fn_serial)
FN_SHIFT = _fn(FnInfo.SHIFT, fnr.parse_fn_shift)
LAST_FD = _fn(FnInfo.LAST_FD, fnr.parse_last_fd_number)
LAST_FISCAL_AT = _info(Info.LAST_FISCAL_OPERATION, rec.parse_last_fiscal_operation)
OFD_QUEUE = _fn(FnInfo.OFD_QUEUE, fnr.parse_ofd_queue)
FN_MEMORY = _fn(FnInfo.MEMORY, fnr.parse_fn_memory)
SHIFT_OPENED = _info(Info.SHIFT_OPENED, rec.parse_shift_opened_at)
SERIAL = _info(Info.SERIAL, rec.parse_serial)
MODEL = _info(Info.MODEL, rec.parse_model)
FIRMWARE_VERSION = _info(Info.FIRMWARE_VERSION, rec.parse_firmware_version)
FIRMWARE_ID = _info(Info.FIRMWARE_ID, rec.parse_firmware_id)
INN = _info(Info.INN, rec.parse_inn)
RNM = _info(Info.RNM, rec.parse_rnm)
FN_EXPIRY = _info(Info.FN_EXPIRY, rec.parse_fn_expiry)
FN_VERSIONS = _fn(FnInfo.VERSIONS, fnr.parse_fn_versions)
FFD_SUPPORT = _fn(FnInfo.FFD, fnr.parse_ffd_support)
