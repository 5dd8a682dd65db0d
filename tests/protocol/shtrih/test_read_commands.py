"""The optional reads of shtrih-m.md 8.14 (15h, 1Ah, 1Bh, 6Bh) and error 4Dh, golden.

Frames are constructed from the documented layouts (section 8.14; requests
``CMD [password] params``, answers ``CMD error fields``); their LRCs are checked here
independently of the codec. Every command on the allowlist must have a request builder
and an answer parser: a command the agent may send but cannot read is a gap (issue 13
item 6 found 6Bh so). B0h "continue printing" is the command a register waits for after
a paper-out; the agent must never be able to send it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from operator import xor

import pytest

from kktmon.protocol.errors import CommandNotAllowedError, DeviceError
from kktmon.protocol.shtrih import commands, records
from kktmon.protocol.shtrih.commands import ALLOWLIST, answer_payload, encode_request, request
from kktmon.protocol.shtrih.errors import ERROR_MEANINGS, VENDOR_TEXTS
from kktmon.protocol.shtrih.frame import Frame, decode_frame


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@dataclass(frozen=True)
class Golden:
    name: str
    request: bytes
    build: Callable[[], bytes]
    answer: bytes
    parse: Callable[[Frame], object]
    expected: object


ERROR_4D_TEXT = "Вносимая безналичной оплатой сумма больше суммы чека"

GOLDEN = [
    Golden(
        "15h exchange parameters of port 0",
        h("02 06 15 1E 00 00 00 00 0D"),
        lambda: commands.request_exchange_parameters(0),
        h("02 04 15 00 06 32 25"),  # 115200 (code 6), byte timeout 50 ms
        records.parse_exchange_parameters,
        records.ExchangeParameters(baud_code=6, baud=115200, byte_timeout_ms=50),
    ),
    Golden(
        "1Ah money register 241 (cash in the drawer)",
        h("02 06 1A 1E 00 00 00 F1 F3"),
        lambda: commands.request_money_register(241),
        h("02 09 1A 00 1E 40 E2 01 00 00 00 AE"),  # operator 30, 1234.56
        records.parse_money_register,
        records.RegisterValue(operator=30, value=123456),
    ),
    Golden(
        "1Bh operating register 152",
        h("02 06 1B 1E 00 00 00 98 9B"),
        lambda: commands.request_operating_register(152),
        h("02 05 1B 00 1E 07 00 07"),
        records.parse_operating_register,
        records.RegisterValue(operator=30, value=7),
    ),
    Golden(
        "6Bh text of error 4Dh",
        h("02 02 6B 4D 24"),  # no password
        lambda: commands.request_error_text(0x4D),
        h(
            "02 36 6B 00 C2 ED EE F1 E8 EC E0 FF 20 E1 E5 E7 ED E0 EB E8 F7 ED EE E9 20 EE EF"
            " EB E0 F2 EE E9 20 F1 F3 EC EC E0 20 E1 EE EB FC F8 E5 20 F1 F3 EC EC FB 20 F7"
            " E5 EA E0 7F"
        ),
        records.parse_error_text,
        ERROR_4D_TEXT,
    ),
]


@pytest.mark.parametrize("vector", GOLDEN, ids=[v.name for v in GOLDEN])
def test_constructed_frames_have_good_lrc(vector: Golden) -> None:
    for frame in (vector.request, vector.answer):
        assert reduce(xor, frame[1:], 0) == 0


@pytest.mark.parametrize("vector", GOLDEN, ids=[v.name for v in GOLDEN])
def test_builder_gives_the_documented_request(vector: Golden) -> None:
    assert vector.build() == vector.request


@pytest.mark.parametrize("vector", GOLDEN, ids=[v.name for v in GOLDEN])
def test_parser_reads_the_documented_answer(vector: Golden) -> None:
    assert vector.parse(decode_frame(vector.answer)) == vector.expected


@pytest.mark.parametrize(
    ("code", "milliseconds"),
    [(0, 0), (50, 50), (150, 150), (151, 300), (249, 15_000), (250, 30_000), (255, 105_000)],
)
def test_byte_timeout_codes(code: int, milliseconds: int) -> None:
    assert records.byte_timeout_ms(code) == milliseconds


def test_unknown_baud_code_is_kept_raw() -> None:
    params = records.parse_exchange_parameters(decode_frame(h("02 04 15 00 0C 32 2F")))
    assert (params.baud_code, params.baud) == (12, None)


def test_error_text_is_cut_at_the_first_nul() -> None:
    frame = decode_frame(h("02 07 6B 00 CD E5 F2 00 41 F7"))
    assert records.parse_error_text(frame) == "Нет"


def test_error_4d_has_its_meaning() -> None:
    """A real frame refused a closing receipt with 4Dh; the reason used to read
    'undocumented error'."""
    with pytest.raises(DeviceError) as caught:
        answer_payload(decode_frame(h("02 02 85 4D CA")), 0x85)
    assert caught.value.code == 0x4D
    assert caught.value.meaning == "amount paid by non-cash means exceeds the receipt total"
    assert VENDOR_TEXTS[0x4D] == ERROR_4D_TEXT


def test_every_meaning_has_the_vendors_text() -> None:
    assert set(ERROR_MEANINGS) <= set(VENDOR_TEXTS)
    assert all(text.encode("cp1251") for text in VENDOR_TEXTS.values())


# ------------------------------------------------------------------ the allowlist

#: How each allowlisted command is built and read: (builder name, sample arguments,
#: parser name). The names are looked up, so a missing one fails as a gap, not an import.
BUILDERS: dict[int, tuple[str, tuple[int, ...], str]] = {
    0xFC: ("request_device_type", (), "parse_device_type"),
    0xF7: ("request_model_parameters", (), "parse_model_parameters"),
    0x10: ("request_short_status", (), "parse_short_status"),
    0x11: ("request_long_status", (), "parse_long_status"),
    0x15: ("request_exchange_parameters", (0,), "parse_exchange_parameters"),
    0x1A: ("request_money_register", (241,), "parse_money_register"),
    0x1B: ("request_operating_register", (152,), "parse_operating_register"),
    0x1F: ("request_table_field", (18, 1, 4), "parse_table_value"),
    0x2D: ("request_table_structure", (18,), "parse_table_structure"),
    0x2E: ("request_field_structure", (18, 4), "parse_field_structure"),
    0x6B: ("request_error_text", (0x4D,), "parse_error_text"),
    0xFF01: ("request_fn", (0xFF01,), "parse_fn_status"),
    0xFF02: ("request_fn", (0xFF02,), "parse_fn_serial"),
    0xFF03: ("request_fn", (0xFF03,), "parse_fn_validity"),
    0xFF04: ("request_fn", (0xFF04,), "parse_fn_firmware"),
    0xFF09: ("request_fn", (0xFF09,), "parse_registration"),
    0xFF0A: ("request_archive_document", (420,), "parse_archive_document"),
    0xFF39: ("request_fn", (0xFF39,), "parse_ofd_status"),
    0xFF3F: ("request_fn", (0xFF3F,), "parse_unconfirmed_count"),
    0xFF40: ("request_fn", (0xFF40,), "parse_shift_parameters"),
    0xFF63: ("request_fn", (0xFF63,), "parse_fn_resource"),
}


def test_the_allowlist_has_no_command_without_a_builder_and_a_parser() -> None:
    assert set(ALLOWLIST) == set(BUILDERS)
    missing = [
        f"{code:X}h: {name}"
        for code, (builder, _, parser) in BUILDERS.items()
        for name in (builder, parser)
        if not hasattr(commands if name == builder else records, name)
    ]
    assert not missing


@pytest.mark.parametrize("code", sorted(BUILDERS), ids=lambda c: f"{c:X}h")
def test_each_builder_sends_its_command(code: int) -> None:
    builder, args, _ = BUILDERS[code]
    assert decode_frame(getattr(commands, builder)(*args)).code == code


def test_continue_printing_can_never_be_sent() -> None:
    """B0h is what a register in submode 3 waits for; only a person at the POS may."""
    assert 0xB0 not in ALLOWLIST and not commands.is_allowed(0xB0, b"\x1e\x00\x00\x00")
    with pytest.raises(CommandNotAllowedError):
        request(0xB0)
    with pytest.raises(CommandNotAllowedError):
        encode_request(0xB0, b"\x1e\x00\x00\x00")
