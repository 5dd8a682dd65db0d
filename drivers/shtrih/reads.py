"""Where each Shtrih-M fact comes from: one read per record (the table of sources).

Each constant names the command (and sub-command), the parser of its answer and
whether it is slow; reads that take a value known only at run time are functions.
The driver runs them, :mod:`kktmon.drivers.shtrih.mapping` maps what they return.
The password every command but FCh, F7h and 6Bh carries is the driver's, added by
:func:`kktmon.protocol.shtrih.commands.request`.
"""

from __future__ import annotations

from kktmon.drivers.wire import Read
from kktmon.protocol.shtrih import commands as cmd
from kktmon.protocol.shtrih import records as rec
from kktmon.protocol.shtrih.frame import Frame

TABLE_ROW = 1  # every table the driver reads has one row of interest

DEVICE_TYPE = Read(cmd.DEVICE_TYPE, None, rec.parse_device_type)
MODEL_PARAMETERS = Read(cmd.MODEL_PARAMETERS, cmd.MODEL_PARAMETERS_SUB, rec.parse_model_parameters)
SHORT_STATUS = Read(cmd.SHORT_STATUS, None, rec.parse_short_status)
LONG_STATUS = Read(cmd.LONG_STATUS, None, rec.parse_long_status)
FN_STATUS = Read(cmd.FN_STATUS, None, rec.parse_fn_status)
FN_VALIDITY = Read(cmd.FN_VALIDITY, None, rec.parse_fn_validity)
FN_FIRMWARE = Read(cmd.FN_FIRMWARE, None, rec.parse_fn_firmware)
REGISTRATION = Read(cmd.FN_REGISTRATION, None, rec.parse_registration)
OFD_STATUS = Read(cmd.OFD_STATUS, None, rec.parse_ofd_status)
SHIFT = Read(cmd.FN_SHIFT, None, rec.parse_shift_parameters)
FN_RESOURCE = Read(cmd.FN_RESOURCE, None, rec.parse_fn_resource)


def table_field(table: int, field: int) -> Read[Frame, bytes]:
    """1Fh: the raw value of one field in row 1 of ``table``."""
    return Read(cmd.READ_TABLE, None, rec.parse_table_value, params=(table, TABLE_ROW, field))


def archive_document(number: int) -> Read[Frame, rec.ArchiveDocument]:
    """FF0Ah: one document of the FN archive, a slow read."""
    return Read(
        cmd.FN_ARCHIVE_DOCUMENT,
        None,
        rec.parse_archive_document,
        params=(number,),
        slow=True,
    )
