"""ATOL error codes a monitor meets, with their meanings (atol.md section 4.4).

An answer's error byte (``55 err``, or byte 0 of A5h) is one of these; 00h and 01h
mean OK. Meanings are English renderings of the vendor's texts. :func:`device_error`
turns a refusal into what the answer check raises: :class:`UnsupportedCommandError`
for 7Ah (the model lacks the command), :class:`DeviceError` for the rest.
"""

from __future__ import annotations

from kktmon.protocol.errors import DeviceError, UnsupportedCommandError

VENDOR = "atol"  # what every ATOL refusal and allowlist error names as its vendor

UNSUPPORTED = 0x7A
WRONG_MODE = 0x66
WRONG_FN_STATE = 0xD4
NO_DATA_IN_FN = 0xDA
READ_EXTENDED = 0xEE
OK_CODES: frozenset[int] = frozenset({0x00, 0x01})  # 01: control tape processed

# Section 4.4 (TerminalClient's table).
ERROR_MEANINGS: dict[int, str] = {
    0x66: "command not allowed in the current mode",
    0x67: "no paper",
    0x68: "no link to the printer unit",
    0x69: "printer mechanical error",
    0x7A: "command not supported by this model",
    0x88: "shift longer than 24 hours (Z-report required)",
    0x8C: "wrong password",
    0x9A: "receipt closed: operation impossible",
    0x9B: "receipt open: operation impossible",
    0x9C: "shift open: operation impossible",
    0xA4: "invalid password",
    0xA8: "register not fiscalized",
    0xBA: "error talking to the fiscal drive",
    0xBF: "shift numbers in the register and the FN differ",
    0xD1: "printer head overheat",
    0xD2: "FN I2C exchange error",
    0xD3: "FN transfer-format error",
    0xD4: "wrong FN state for this command",
    0xD5: "unrecoverable FN error",
    0xD6: "FN crypto-coprocessor error",
    0xD7: "FN service life over",
    0xD8: "FN archive full",
    0xD9: "wrong date/time passed to the FN",
    0xDA: "FN has no such data",
    0xDB: "FN overflow (receipt total)",
    0xE1: "wrong FN number",
    0xE7: "invalid FN command parameters",
    0xE9: "no transport connection (FN)",
    0xEA: "FN crypto-coprocessor resource exhausted",
    0xEB: "FN storage resource exhausted",
    0xEC: "FN cannot accept the OFD message",
    0xED: "FN has unsent documents",
    0xEE: "read the extended error code from register 55 (37h)",
    0xEF: "FN message-wait resource exhausted",
    0xF0: "FN shift longer than 24 hours",
    0xF1: "invalid time difference between two FN operations",
}


def meaning(code: int) -> str:
    return ERROR_MEANINGS.get(code, "undocumented error")


def device_error(command: str, error: int) -> DeviceError:
    """The refusal ``error`` of ``command`` (as :func:`commands.command_name` names it)."""
    kind = UnsupportedCommandError if error == UNSUPPORTED else DeviceError
    return kind(VENDOR, command, error, meaning(error))
