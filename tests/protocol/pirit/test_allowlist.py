"""The read-only gate: :func:`encode_request` accepts exactly the allowlist, nothing else,
and every read in the driver's table (:mod:`kktmon.drivers.pirit.reads`) passes it.

The reference tables below are transcribed independently from pirit.md section 5 (not
copied from the code), so a (command, sub) pair dropped from ``NEVER_SEND`` or slipped
into ``ALLOWLIST`` by mistake shows up here.
"""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kktmon.drivers.pirit import reads
from kktmon.drivers.wire import Read
from kktmon.protocol.errors import CommandNotAllowedError, FrameError
from kktmon.protocol.pirit.commands import (
    ALLOWLIST,
    ANY_SUB,
    NEVER_SEND,
    encode_request,
    is_allowed,
    parameters,
    request,
)
from kktmon.protocol.pirit.frame import Field, Reply, decode_request_frame

SUBS = range(256)


def _codes(text: str) -> set[int]:
    """``"15-18 20"`` -> {0x15, 0x16, 0x17, 0x18, 0x20}, ranges inclusive."""
    codes: set[int] = set()
    for token in text.split():
        low, _, high = token.partition("-")
        codes.update(range(int(low, 16), int(high or low, 16) + 1))
    return codes


# Section 5, commands forbidden whatever their data.
REFERENCE_NEVER_COMMANDS = _codes(
    "10 12 14 15-18 20 21 23 24 25 30-34 40-59 60 63 64 67 70-77 80 82 85 87 90 91 93"
    " 94 96 97 9A 9B 9C A0 A4 A1 A3 A5 A6 A7 A8"
)
# Section 5, forbidden subs of otherwise partly safe commands.
REFERENCE_NEVER_SUBS = {
    0x05: {5, 6},
    0x78: {202, 11, 12, 15, 16, 20, 21},
    0x79: {1, 2, 3, 9, 10, 11, 14, 15},
    0xAA: {1, 3},
}
# Section 5 safe set: command -> subs (None: the command takes no sub field).
REFERENCE_SAFE: dict[int, set[int] | None] = {
    0x00: None,
    0x01: set(SUBS),
    0x02: set(SUBS),
    0x03: {1, 2},
    0x04: None,
    0x05: {1, 2, 3, 4, *range(7, 14)},
    0x06: {1, 2},
    0x11: None,
    0x13: None,
    0x78: {1, 2, 3, 4, 5, 6, 7, 13, 14, 17, 18, 19, 22, 23},
    0x79: {0, 6, 7, 16},
    0x81: None,
    0x86: None,
    0xA9: None,
    0xAA: {2, 4},
}
# What the monitor needs (sections 4.1-4.6): must all be allowed.
REQUIRED: dict[int, set[int] | None] = {
    0x00: None,
    0x04: None,
    0x02: {1, 2, 3, 4, 14, 17, 21, 70},
    0x78: {1, 2, 6, 7, 14, 18, 22},
    0x06: {1, 2},
    0x13: None,
}


def _accepted_with_sub(code: int) -> set[int]:
    accepted = set()
    for sub in SUBS:
        try:
            frame = encode_request(code, [sub], packet_id=0x21)
        except CommandNotAllowedError:
            continue
        assert decode_request_frame(frame).fields == (str(sub).encode(),)
        accepted.add(sub)
    return accepted


def _accepted_without_sub(code: int) -> bool:
    try:
        frame = encode_request(code, packet_id=0x21)
    except CommandNotAllowedError:
        return False
    assert decode_request_frame(frame).fields == ()
    return True


def test_never_send_covers_the_reference() -> None:
    whole = {code for code, subs in NEVER_SEND.items() if subs is None}
    assert whole >= REFERENCE_NEVER_COMMANDS
    for code, subs in REFERENCE_NEVER_SUBS.items():
        forbidden = NEVER_SEND[code]
        assert forbidden is not None and forbidden >= subs


def test_start_of_work_and_baud_change_are_never_sent() -> None:
    # 10h silently sets the clock; 93h changes the baud rate and cuts the link.
    assert NEVER_SEND[0x10] is None and NEVER_SEND[0x93] is None
    for fields in ((), ("4",), (4,), ("010124", "120000"), ("",)):
        for code in (0x10, 0x93):
            with pytest.raises(CommandNotAllowedError):
                encode_request(code, fields, packet_id=0x21)


def test_allowlist_lies_within_the_reference_safe_set() -> None:
    for code, rule in ALLOWLIST.items():
        assert code in REFERENCE_SAFE, f"{code:02X}h"
        safe = REFERENCE_SAFE[code]
        if rule.subs is None:
            assert safe is None
        else:
            assert safe is not None and set(rule.subs) <= safe, f"{code:02X}h"


def test_allowlist_covers_what_the_monitor_needs() -> None:
    for code, subs in REQUIRED.items():
        rule = ALLOWLIST[code]
        assert (rule.subs is None) == (subs is None)
        assert rule.subs is None or subs is None or subs <= rule.subs


def test_no_pair_is_both_allowed_and_forbidden() -> None:
    for code, rule in ALLOWLIST.items():
        assert code not in REFERENCE_NEVER_COMMANDS
        forbidden = REFERENCE_NEVER_SUBS.get(code, set())
        assert rule.subs is None or not set(rule.subs) & forbidden


def test_walk_every_command_and_sub() -> None:
    """Every code 00h..FFh, bare and with every sub 0..255: accepted iff allowlisted."""
    for code in range(0x100):
        rule = ALLOWLIST.get(code)
        bare_expected = rule is not None and rule.subs is None and rule.args == 0
        assert _accepted_without_sub(code) == bare_expected, f"{code:02X}h"
        subs_expected = set(rule.subs) if rule and rule.subs is not None else set()
        assert _accepted_with_sub(code) == subs_expected, f"{code:02X}h"


def test_settings_read_takes_exactly_number_and_index() -> None:
    frame = encode_request(0x11, [77, 0], packet_id=0x21)
    assert decode_request_frame(frame).fields == (b"77", b"0")
    wrong: list[list[Field]] = [[], [77], [77, 0, 1], ["x", 0]]
    for fields in wrong:
        with pytest.raises(CommandNotAllowedError):
            encode_request(0x11, fields, packet_id=0x21)


def test_any_sub_means_every_one_byte_sub() -> None:
    assert ALLOWLIST[0x02].subs == ANY_SUB == frozenset(SUBS)
    with pytest.raises(CommandNotAllowedError):
        encode_request(0x02, [256], packet_id=0x21)


@pytest.mark.parametrize(
    "sub", ["07", " 7", "7 ", "+7", "-7", "7.0", "", "0x7", b"07", "٧", -7, True]
)
def test_only_canonical_decimal_subs_pass(sub: Field) -> None:
    with pytest.raises(CommandNotAllowedError):
        encode_request(0x78, [sub], packet_id=0x21)
    assert encode_request(0x78, ["7"], packet_id=0x21) == encode_request(0x78, [7], packet_id=0x21)


def test_fn_reads_send_only_the_sub() -> None:
    # 78h's optional offset/size fields are never needed (pirit.md 4.4).
    with pytest.raises(CommandNotAllowedError):
        encode_request(0x78, [7, 0], packet_id=0x21)
    with pytest.raises(CommandNotAllowedError):
        encode_request(0x00, [""], packet_id=0x21)  # the Java one-empty-field form


def test_a_register_reads_one_empty_field_as_no_data() -> None:
    """The gate sends only the no-data form; a register takes the Java form too."""
    java_form = decode_request_frame(bytes.fromhex("02 50 49 52 49 22 30 30 1C 03 33 46"))
    assert java_form.fields == (b"",)
    assert parameters(java_form.fields) == () and is_allowed(0x00, parameters(java_form.fields))
    assert parameters((b"", b"")) == (b"", b"")  # two fields are two fields
    assert parameters((b"7",)) == (b"7",)


forbidden_pairs = st.one_of(
    st.sampled_from(sorted(REFERENCE_NEVER_COMMANDS)).map(lambda c: (c, None)),
    st.sampled_from([(code, sub) for code, subs in REFERENCE_NEVER_SUBS.items() for sub in subs]),
)
junk_fields = st.lists(st.one_of(st.integers(0, 10**6), st.text(max_size=8)), max_size=3)


@settings(max_examples=300, deadline=None)
@given(pair=forbidden_pairs, extra=junk_fields)
def test_forbidden_refused_with_any_data(pair: tuple[int, int | None], extra: list[Field]) -> None:
    code, sub = pair
    fields: list[Field] = ([] if sub is None else [sub]) + extra
    with pytest.raises(CommandNotAllowedError):
        encode_request(code, fields, packet_id=0x21)


@settings(max_examples=300, deadline=None)
@given(code=st.integers(-(2**16), 2**16), fields=junk_fields)
def test_gate_agrees_with_is_allowed(code: int, fields: list[Field]) -> None:
    if is_allowed(code, fields):
        assert decode_request_frame(encode_request(code, fields, packet_id=0x30)).command == code
    else:
        with pytest.raises(CommandNotAllowedError):
            encode_request(code, fields, packet_id=0x30)


def test_refusal_comes_before_any_encoding() -> None:
    # A bad packet id would be a FrameError had encoding started.
    with pytest.raises(CommandNotAllowedError):
        encode_request(0x93, ["4"], packet_id=0x00)


def test_recovery_id_is_never_ours() -> None:
    with pytest.raises(FrameError):
        encode_request(0x00, packet_id=0x20)


def test_refusal_names_the_command_and_sub() -> None:
    with pytest.raises(CommandNotAllowedError) as caught:
        encode_request(0x78, [202], packet_id=0x21)
    assert (caught.value.vendor, caught.value.command) == ("pirit", "78h/202")
    with pytest.raises(CommandNotAllowedError) as caught:
        encode_request(0x10, packet_id=0x21)
    assert caught.value.command == "10h"


# ------------------------------------------------------------------ the driver's reads


def _driver_reads() -> list[Read[Reply, object]]:
    """Every read the driver can make: its table has constants only."""
    functions = [
        name
        for name, value in vars(reads).items()
        if inspect.isfunction(value) and value.__module__ == reads.__name__ and name[0] != "_"
    ]
    assert not functions, "a read built at run time needs sample arguments here"
    return [value for value in vars(reads).values() if isinstance(value, Read)]


@pytest.mark.parametrize("read", _driver_reads(), ids=lambda r: f"{r.command:02X}h/{r.sub}")
def test_every_read_of_the_driver_is_on_the_allowlist(read: Read[Reply, object]) -> None:
    frame = request(read.command, read.sub, read.params, packet_id=0x21)
    sent = decode_request_frame(frame)
    assert sent.command == read.command
    assert is_allowed(sent.command, sent.fields)
    expected = [] if read.sub is None else [read.sub]
    assert sent.fields == tuple(str(field).encode() for field in [*expected, *read.params])
    assert _reference_allows(sent.command, read.sub)


def _reference_allows(command: int, sub: int | None) -> bool:
    safe = REFERENCE_SAFE.get(command, set())
    return safe is None if sub is None else safe is not None and sub in safe
