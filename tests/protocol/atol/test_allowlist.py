"""The read-only gate: an ATOL :class:`Request` exists for exactly the allowlist, nothing else,
and every read in the driver's table (:mod:`kktmon.drivers.atol.reads`) passes it.

The lists below are transcribed independently from atol.md section 6 (not copied from
the code), so a code dropped from ``NEVER_SEND`` or added to ``ALLOWLIST`` by mistake
shows up here. Both link machines re-run the gate, so even a forged request never
becomes a byte on either transport.
"""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kktmon.drivers.atol import reads
from kktmon.drivers.wire import Read
from kktmon.protocol.atol import legacy as atol_legacy
from kktmon.protocol.atol.commands import (
    ALLOWLIST,
    FN_NEVER_SEND,
    NEVER_SEND,
    Request,
    encode_request,
    is_allowed,
    request,
    request_firmware,
    request_fn,
    request_register,
)
from kktmon.protocol.atol.frame import decode_packet
from kktmon.protocol.atol.legacy import LegacyLink
from kktmon.protocol.atol.link import FeLink
from kktmon.protocol.errors import CommandNotAllowedError
from kktmon.protocol.link import Send


def _codes(text: str) -> set[int]:
    return {int(token, 16) for token in text.split()}


REFERENCE_NEVER_SEND = _codes(
    "56 48 92 52 E6 EA EB 57 43 B8 99 9B 4A 59 49 4F 9A 5A 67 77 6B 71 50 E8 64 4B ED"
    " 6D A6 A7 A8 AB 95 EE 97 CE 80 85 47 88 4C 87 6C 73 7C 8D 8E C1 75 82"
)
REFERENCE_READS_REFUSED = _codes("46 B3")
REFERENCE_FN_REFUSED = _codes("45 46 40 41")
REFERENCE_ALLOWED: dict[int, set[int] | None] = {
    0x3F: None,
    0x45: None,
    0xA5: None,
    0x9D: _codes("01 02 03"),
    0x91: _codes("11 12 16 2C 36 37"),
    0xA4: _codes("10 20 30 31 32 33 42 43 3A 3B 3D"),
}
PARAMS = {0x91: 2}  # 91h reg p1 p2


def reference_allows(code: int, data: bytes) -> bool:
    if code not in REFERENCE_ALLOWED:
        return False
    subs = REFERENCE_ALLOWED[code]
    if subs is None:
        return data == b""
    return len(data) == 1 + PARAMS.get(code, 0) and data[0] in subs


def test_never_send_covers_the_reference_list() -> None:
    assert REFERENCE_NEVER_SEND | REFERENCE_READS_REFUSED <= NEVER_SEND
    assert REFERENCE_FN_REFUSED <= FN_NEVER_SEND


def test_no_code_is_both_allowed_and_denied() -> None:
    assert not set(ALLOWLIST) & NEVER_SEND
    assert not ALLOWLIST[0xA4].sub_codes & FN_NEVER_SEND


def test_allowlist_is_the_reference_allowlist() -> None:
    assert set(ALLOWLIST) == set(REFERENCE_ALLOWED)
    for code, subs in REFERENCE_ALLOWED.items():
        assert ALLOWLIST[code].sub_codes == (subs or set())


def _accepts(code: int, data: bytes) -> bool:
    try:
        request = encode_request(code, data)
    except CommandNotAllowedError:
        return False
    assert request.body == b"\x00\x00" + bytes([code]) + data
    return True


@pytest.mark.parametrize("code", range(0x100), ids=lambda c: f"{c:02X}h")
def test_walk_every_code_and_sub_code(code: int) -> None:
    """Every command byte, bare, with every sub-code, and with every sub-code + params."""
    candidates = [b"", *(bytes([sub]) for sub in range(0x100))]
    candidates += [bytes([sub, 0, 0]) for sub in range(0x100)]
    candidates += [bytes([sub, 0]) for sub in range(0x100)]
    for data in candidates:
        assert _accepts(code, data) == reference_allows(code, data), (code, data.hex())


@pytest.mark.parametrize("code", sorted(REFERENCE_NEVER_SEND | REFERENCE_READS_REFUSED))
def test_never_send_refused_with_typical_data(code: int) -> None:
    for data in (b"", b"\x00", b"\x01", b"\x00\x00", b"\x04\x00\x00\x00\x30", bytes(20)):
        with pytest.raises(CommandNotAllowedError) as caught:
            encode_request(code, data)
        assert caught.value.vendor == "atol"


@settings(max_examples=300, deadline=None)
@given(
    code=st.sampled_from(sorted(REFERENCE_NEVER_SEND | REFERENCE_READS_REFUSED)),
    data=st.binary(max_size=40),
    password=st.integers(0, 9999),
)
def test_never_send_refused_with_random_data(code: int, data: bytes, password: int) -> None:
    with pytest.raises(CommandNotAllowedError):
        encode_request(code, data, password)


@pytest.mark.parametrize("sub", sorted(REFERENCE_FN_REFUSED), ids=lambda s: f"A4h {s:02X}h")
def test_fn_archive_reads_refused(sub: int) -> None:
    for tail in (b"", b"\x01\x00\x00\x00"):
        with pytest.raises(CommandNotAllowedError) as caught:
            encode_request(0xA4, bytes([sub]) + tail)
        assert caught.value.command == f"A4h {sub:02X}h"


@settings(max_examples=300, deadline=None)
@given(code=st.integers(-(2**16), 2**32), data=st.binary(max_size=6))
def test_any_number_is_refused_unless_allowed(code: int, data: bytes) -> None:
    if reference_allows(code, data):
        assert is_allowed(code, data)
    else:
        with pytest.raises(CommandNotAllowedError):
            encode_request(code, data)


@pytest.mark.parametrize("sub", [0x130, 0x111, -0xD0])
def test_builders_never_wrap_a_sub_code_into_an_allowed_one(sub: int) -> None:
    for build in (request_fn, request_register, request_firmware):
        with pytest.raises(CommandNotAllowedError):
            build(sub)


def test_refusal_names_the_command() -> None:
    with pytest.raises(CommandNotAllowedError) as caught:
        encode_request(0x5A)
    assert caught.value.command == "5Ah"


def _forged(code: int, data: bytes = b"") -> Request:
    """A Request mutated after construction: what a bug elsewhere could produce."""
    request = encode_request(0x3F)
    object.__setattr__(request, "code", code)
    object.__setattr__(request, "data", data)
    return request


@pytest.mark.parametrize(("code", "data"), [(0x5A, b""), (0x56, b"\x04"), (0xA4, b"\x45")])
def test_link_machines_regate_a_forged_request(code: int, data: bytes) -> None:
    with pytest.raises(CommandNotAllowedError):
        FeLink(_forged(code, data))
    with pytest.raises(CommandNotAllowedError):
        LegacyLink(_forged(code, data))


def test_only_allowed_bytes_leave_either_link() -> None:
    """What the links send for an allowed request is that request, and only it."""
    request = encode_request(0x91, b"\x12\x00\x00")
    fe_sent = [a.data for a in FeLink(request).start() if isinstance(a, Send)]
    assert decode_packet(fe_sent[0]).data[3:] == request.body
    legacy = LegacyLink(request)
    assert atol_legacy.decode_frame(legacy.frame) == request.body


# ------------------------------------------------------------------ the driver's reads


def _driver_reads() -> list[Read[bytes, object]]:
    """Every read the driver can make: its table has constants only."""
    functions = [
        name
        for name, value in vars(reads).items()
        if inspect.isfunction(value) and value.__module__ == reads.__name__ and name[0] != "_"
    ]
    assert not functions, "a read built at run time needs sample arguments here"
    return [value for value in vars(reads).values() if isinstance(value, Read)]


@pytest.mark.parametrize("read", _driver_reads(), ids=lambda r: f"{r.command:02X}h {r.sub}")
def test_every_read_of_the_driver_is_on_the_allowlist(read: Read[bytes, object]) -> None:
    built = request(read.command, read.sub, read.params, password=1234)
    assert built.code == read.command and built.sub == read.sub
    assert reference_allows(built.code, built.data)
    assert built.body[:2] == b"\x12\x34"


def test_register_reads_are_slow_and_no_other() -> None:
    assert {read.command for read in _driver_reads() if read.slow} == {0x91}
    assert all(read.slow for read in _driver_reads() if read.command == 0x91)


@pytest.mark.parametrize(
    ("code", "sub", "params"),
    [(0x91, 0x12, (0x100, 0)), (0x91, 0x12, (-1, 0)), (0x91, 0x12, (0,)), (0x3F, None, (0,))],
)
def test_parameters_that_do_not_fit_the_command_are_refused(
    code: int, sub: int | None, params: tuple[int, ...]
) -> None:
    with pytest.raises(CommandNotAllowedError):
        request(code, sub, params)
