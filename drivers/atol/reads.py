"""Where each ATOL fact comes from: one read per record (the table of sources).

Each constant names the command, its sub-code (a 91h register, an A4h FN query) and
the parser of its answer. Register reads are slow: the register may take T5 of 30-45 s
over them (atol.md 2.2). The driver runs them with its access password,
:mod:`kktmon.drivers.atol.mapping` maps what they return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from kktmon.drivers.wire import Read
from kktmon.protocol.atol import commands as cmd
from kktmon.protocol.atol import records as rec

T = TypeVar("T")


def _register(register: int, parse: Callable[[bytes], T]) -> Read[bytes, T]:
    return Read(cmd.READ_REGISTER, register, parse, params=cmd.REGISTER_PARAMS, slow=True)


def _fn(sub: int, parse: Callable[[bytes], T]) -> Read[bytes, T]:
    return Read(cmd.FN_QUERY, sub, parse)


STATE = Read(cmd.STATE, None, rec.parse_state)
STATUS_CODE = Read(cmd.STATUS_CODE, None, rec.parse_status_code)
DEVICE_TYPE = Read(cmd.DEVICE_TYPE, None, rec.parse_device_type)
SERIAL = _register(cmd.REG_SERIAL, rec.parse_serial_register)
FFD_VERSIONS = _register(cmd.REG_FFD, rec.parse_ffd_versions)
SHIFT_REGISTER = _register(cmd.REG_SHIFT, rec.parse_shift_register)
FN_STATUS = _fn(cmd.FN_STATUS, rec.parse_fn_status)
FN_SHIFT = _fn(cmd.FN_SHIFT, rec.parse_shift_parameters)
FN_VALIDITY = _fn(cmd.FN_VALIDITY, rec.parse_fn_validity)
FN_OFD_STATUS = _fn(cmd.FN_OFD_STATUS, rec.parse_ofd_status)
FN_REGISTRATION = _fn(cmd.FN_REGISTRATION, rec.parse_registration)
FN_RESOURCE = _fn(cmd.FN_RESOURCE, rec.parse_fn_resource)
FN_FIRMWARE = _fn(cmd.FN_FIRMWARE, rec.parse_fn_firmware)
