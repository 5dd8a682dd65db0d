"""Pirit error codes (the reply's ERR field) and 0x06/1 extended reasons, pirit.md section 3.

Meanings are English renderings of the vendor's texts. Codes 41h-7Eh come from the
fiscal drive (FN) and are passed through by the register.
"""

from __future__ import annotations

OK = 0x00
WRONG_STATE = 0x01  # the reason is in 0x06/1
BAD_FUNCTION = 0x02
BAD_PARAMETER = 0x03  # the reason is in 0x06/1
WRONG_PASSWORD = 0x06
PAPER_OUT = 0x08
PRINTER_NOT_READY = 0x09
FATAL = 0x20
WRONG_FN_STATE = 0x42
NO_DATA_IN_FN = 0x48

#: "Invalid command/sub number" and "bad format or parameter": the reference's polling
#: advice (4.6 step 7, quirk 10) treats both as "this firmware lacks the request".
UNSUPPORTED: frozenset[int] = frozenset({BAD_FUNCTION, BAD_PARAMETER})

ERROR_MEANINGS: dict[int, str] = {
    0x01: "function impossible in the current state (reason in 06h/1)",
    0x02: "invalid function (command or sub-request) number",
    0x03: "bad format or parameter (reason in 06h/1)",
    0x04: "communication buffer overflow",
    0x05: "timeout while receiving a byte",
    0x06: "wrong connection password",
    0x07: "checksum error in the command",
    0x08: "paper out",
    0x09: "printer not ready",
    0x0A: "shift longer than 24 hours (or date set more than 24 hours ahead)",
    0x0B: "host and register clocks differ by more than 8 minutes",
    0x0C: "date earlier than the last fiscal operation",
    0x0E: "negative result counter (not enough cash)",
    0x0F: "shift must be closed first",
    0x10: "no data in the journal",
    0x11: "control tape error",
    0x12: "error sending data to the OFD",
    0x13: "critical update error",
    0x20: "fatal register error (see the fatal status of 00h)",
    0x41: "FN: bad command format or parameter",
    0x42: "FN: wrong FN state",
    0x43: "FN failure: the FN must be replaced",
    0x44: "FN crypto-coprocessor failure: replace the FN",
    0x45: "FN time resource exhausted: replace the FN",
    0x46: "FN memory full: replace the FN",
    0x47: "wrong date/time relative to the FN",
    0x48: "requested data absent in the FN",
    0x49: "bad FN command parameter values",
    0x4A: "FN rejected the data",
    0x4B: "FN rejected the data",
    0x4C: "FN rejected the data",
    0x4D: "FN rejected the data",
    0x4E: "FN rejected the data",
    0x50: "TLV data too large",
    0x51: "no transport connection to the OFD",
    0x52: "crypto-coprocessor resource exhausted: replace the FN",
    0x54: "OFD storage exhausted (archive or 30-day storage full)",
    0x55: "oldest unsent document is older than 30 days",
    0x56: "FN shift longer than 24 hours",
    0x57: "clock drift over 5 minutes against the FN timer",
    0x58: "bad requisite",
    0x59: "requisite does not match the registration",
    0x60: "bad message from the OFD",
    0x61: "no link to the FN",
    0x62: "FN exchange error",
    0x63: "command too long for the FN",
    0x64: "key-update service or marking-code error",
    **{code: "key-update service or marking-code error" for code in (0x72, 0x73, 0x74, 0x75)},
    0x7C: "key-update service or marking-code error",
    0x7E: "key-update service or marking-code error",
}

#: 0x06/1 "extended reason" codes worth naming (pirit.md section 3, last paragraph).
EXTENDED_REASONS: dict[int, str] = {
    1: "start of work (10h) not done",
    2: "non-fiscal mode",
    3: "FN archive closed",
    4: "FN not registered",
    20: "shift not open",
    21: "FN fatal error",
    34: "documents not yet sent to the OFD",
    66: "bad request (sub) number",
}


def meaning(code: int) -> str:
    return ERROR_MEANINGS.get(code, "undocumented error")
