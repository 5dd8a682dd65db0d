"""Shtrih-M error codes a monitor meets, with their meanings (shtrih-m.md section 6).

On FN-era firmware codes 01h-20h are passed through from the fiscal drive; the rest
belong to the register. Meanings are English renderings of the vendor's texts.
"""

from __future__ import annotations

UNSUPPORTED = 0x37
WRONG_PASSWORD = 0x4F
STILL_PRINTING = 0x50
NO_DATA_IN_FN = 0x08
WRONG_FN_STATE = 0x02
BAD_PARAMETERS = 0x33
TABLE_NOT_DEFINED = 0x5D

ERROR_MEANINGS: dict[int, str] = {
    0x01: "FN: unknown command, bad format or unknown parameters",
    0x02: "FN: wrong FN state for this command",
    0x03: "FN failure",
    0x04: "FN crypto-coprocessor failure",
    0x05: "FN: parameters do not match the FN lifetime (FN lifetime over)",
    0x06: "FN archive full",
    0x07: "FN: wrong date/time",
    0x08: "FN: requested data not found",
    0x09: "FN: parameter value out of range",
    0x10: "FN: TLV data too big",
    0x11: "FN: no transport connection to the OFD",
    0x12: "FN resource exhausted (fiscal mode must be closed)",
    0x14: "FN storage for OFD documents exhausted",
    0x15: "FN: oldest unsent document waited more than 30 days",
    0x16: "FN: shift longer than 24 hours",
    0x17: "FN: time between documents differs more than 5 minutes from the FN timer",
    0x20: "FN: OFD message cannot be accepted",
    0x2F: "timeout talking to the FN",
    0x30: "FN does not answer",
    0x33: "wrong command parameters",
    0x34: "no data",
    0x35: "parameter wrong for these settings",
    0x36: "parameter wrong for this implementation",
    0x37: "command not supported by this model or firmware",
    0x4E: "shift exceeded 24 hours",
    0x4F: "wrong password",
    0x50: "still printing the result of the previous command",
    0x58: "waiting for the 'continue printing' command",
    0x5D: "table not defined",
    0x6B: "no receipt paper",
    0x72: "command not supported in this submode",
    0x73: "command not supported in this mode",
    0x7E: "wrong value in the length field",
    0xC0: "date and time must be confirmed",
    0xC8: "printer error: no tachometer pulses",
}
