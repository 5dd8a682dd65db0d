"""The read-only gate: :func:`encode_request` accepts exactly the allowlist, nothing else,
and every read in the driver's table (:mod:`kktmon.drivers.shtrih.reads`) passes it.

The denylist below is transcribed independently from shtrih-m.md section 9 (not copied
from the code), so a code dropped from ``NEVER_SEND`` by mistake shows up here.
"""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kktmon.drivers.shtrih import reads
from kktmon.drivers.wire import Read
from kktmon.protocol.errors import CommandNotAllowedError
from kktmon.protocol.shtrih.commands import (
    ALLOWLIST,
    NEVER_SEND,
    encode_request,
    is_allowed,
    request,
)
from kktmon.protocol.shtrih.frame import Frame, command_bytes, decode_frame

PASSWORD = b"\x1e\x00\x00\x00"


def _codes(text: str) -> set[int]:
    """``"E0 41 80-8E FF67-FF76"`` -> the set of codes, ranges inclusive."""
    codes: set[int] = set()
    for token in text.split():
        low, _, high = token.partition("-")
        codes.update(range(int(low, 16), int(high or low, 16) + 1))
    return codes


REFERENCE_NEVER_SEND = _codes(
    # shift / fiscal documents
    "E0 41 C6 C7 FF41 FF42 FF43 FF0B FF37 FF38"
    # receipts & money
    " 80-8E 50 51 FF0C FF0D FF44 FF45 FF46 FF4A FF4B FF4D FF35 FF36 FF50-FF52 FF61 FF67-FF76"
    # registration / FN lifecycle
    " FF05 FF06 FF34 FF3D FF3E FF07 FF08 FF62 FF64 FF65 FF66 0D 65"
    # device settings
    " 14 1E 20 21 22 23 24 27 16 0E 60 1C FF4E FF32 FF33"
    # printing / mechanics
    " 12 17 2F 18 52-54 C0-C5 DE 4D-4F 19 2B 25 28 29 13 2C 40 B0"
    # dumps / service
    " 01 02 03 FD FE"
)
REFERENCE_ALLOWED = _codes("FC F7 10 11 1F 2D 2E FF01 FF02 FF03 FF04 FF09 FF39 FF3F FF40 FF63 FF0A")
REFERENCE_OPTIONAL = _codes("FF0E FF4C FF60 FF3A FF3B FF3C 1A 1B 15 6B 26 0F D0 D1")

ALL_ONE_BYTE = range(0x00, 0x100)
ALL_FF_CODES = range(0xFF00, 0x10000)


def test_never_send_covers_the_reference_denylist() -> None:
    assert REFERENCE_NEVER_SEND <= NEVER_SEND


def test_allowlist_is_the_reference_allowlist() -> None:
    assert set(ALLOWLIST) >= REFERENCE_ALLOWED
    assert set(ALLOWLIST) <= REFERENCE_ALLOWED | REFERENCE_OPTIONAL


def test_no_code_is_both_allowed_and_denied() -> None:
    assert not set(ALLOWLIST) & NEVER_SEND
    assert not set(ALLOWLIST) & REFERENCE_NEVER_SEND


@pytest.mark.parametrize("code", sorted(NEVER_SEND), ids=lambda c: f"{c:X}h")
def test_never_send_refused_with_any_data(code: int) -> None:
    for data in (b"", b"\x01", PASSWORD, b"\x01" + PASSWORD, PASSWORD + bytes(8)):
        with pytest.raises(CommandNotAllowedError):
            encode_request(code, data)


@settings(max_examples=300, deadline=None)
@given(code=st.sampled_from(sorted(NEVER_SEND)), data=st.binary(max_size=300))
def test_never_send_refused_with_random_data(code: int, data: bytes) -> None:
    with pytest.raises(CommandNotAllowedError):
        encode_request(code, data)


def test_f7_needs_subcommand_01() -> None:
    assert decode_frame(encode_request(0xF7, b"\x01")).data == b"\x01"
    assert decode_frame(encode_request(0xF7, b"\x01\x00")).data == b"\x01\x00"
    for data in (b"", b"\x00", b"\x02", b"\xff\x01", b"\x10\x01"):
        with pytest.raises(CommandNotAllowedError):
            encode_request(0xF7, data)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=40))
def test_f7_refused_unless_data_starts_with_01(data: bytes) -> None:
    if data.startswith(b"\x01"):
        assert encode_request(0xF7, data)[2:-1] == b"\xf7" + data
    else:
        with pytest.raises(CommandNotAllowedError):
            encode_request(0xF7, data)


def _accepts(code: int, data: bytes) -> bool:
    try:
        frame = encode_request(code, data)
    except CommandNotAllowedError:
        return False
    assert decode_frame(frame).body == command_bytes(code) + data
    return True


@pytest.mark.parametrize("data", [b"\x01" + PASSWORD, PASSWORD, b""], ids=["01+pwd", "pwd", "none"])
def test_brute_force_walk_accepts_exactly_the_allowlist(data: bytes) -> None:
    expected = {code for code, prefix in ALLOWLIST.items() if data.startswith(prefix)}
    accepted = {code for code in (*ALL_ONE_BYTE, *ALL_FF_CODES) if _accepts(code, data)}
    assert accepted == expected
    if data.startswith(b"\x01"):
        assert accepted == set(ALLOWLIST)


@settings(max_examples=300, deadline=None)
@given(code=st.integers(min_value=-(2**16), max_value=2**32), data=st.binary(max_size=8))
def test_any_other_number_is_refused(code: int, data: bytes) -> None:
    # Includes codes that are not even encodable (negative, > FFFFh, 12 34 ...).
    if code in ALLOWLIST:
        assert is_allowed(code, data) == data.startswith(ALLOWLIST[code])
    else:
        with pytest.raises(CommandNotAllowedError):
            encode_request(code, data)


def test_refusal_names_the_command() -> None:
    with pytest.raises(CommandNotAllowedError) as caught:
        encode_request(0xFF41, PASSWORD)
    assert caught.value.command == "FF41h"
    assert caught.value.vendor == "shtrih"


# ------------------------------------------------------------------ the driver's reads

#: Sample arguments of each read the driver builds at run time (``reads`` functions).
RUNTIME_READS: dict[str, list[tuple[int, ...]]] = {
    "table_field": [(table, field) for table in (1, 17, 18, 255) for field in (1, 3, 17, 255)],
    "archive_document": [(0,), (1,), (2**32 - 1,)],
}


def _driver_reads() -> list[Read[Frame, object]]:
    """Every read the driver can make: the table's constants and its functions' reads."""
    constants = [value for value in vars(reads).values() if isinstance(value, Read)]
    functions = {
        name: value
        for name, value in vars(reads).items()
        if inspect.isfunction(value) and value.__module__ == reads.__name__ and name[0] != "_"
    }
    assert set(functions) == set(RUNTIME_READS), "give every new read function sample arguments"
    built = [functions[name](*args) for name, samples in RUNTIME_READS.items() for args in samples]
    return constants + built


@pytest.mark.parametrize("read", _driver_reads(), ids=lambda r: f"{r.command:X}h{r.params}")
def test_every_read_of_the_driver_is_on_the_allowlist(read: Read[Frame, object]) -> None:
    frame = decode_frame(request(read.command, read.sub, read.params, password=30))
    assert frame.code == read.command
    assert is_allowed(frame.code, frame.data)


@pytest.mark.parametrize(
    ("code", "params"),
    [(0x1F, (256, 1, 1)), (0x1F, (18, 1)), (0xFF0A, (2**32,)), (0xFF01, (1,)), (0xFC, (1,))],
)
def test_parameters_that_do_not_fit_the_command_are_refused(
    code: int, params: tuple[int, ...]
) -> None:
    with pytest.raises(CommandNotAllowedError):
        request(code, params=params)
