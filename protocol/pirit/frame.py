"""Pirit / Viki Print / Dreamkas-F host protocol: frames, packet ids and the host link.

Sans-I/O, the same shape as :mod:`kktmon.protocol.shtrih`; reference pirit.md section 2.

Frames (every number on the wire is ASCII: hex for codes and checksum, decimal in fields)::

    request  STX PASS(4) ID CMD(2 hex) {FIELD FS}* ETX CS(2 hex)
    reply    STX ID CMD(2 hex) ERR(2 hex) {FIELD FS}* ETX CS(2 hex)

``CS`` is the XOR of every byte after STX up to and including ETX. Fields are CP866
text in 0x20..0xF0, so STX/ETX/FS never occur inside one. A request without fields has
no data bytes at all (the no-data form of pirit.md 2.1).

:class:`HostLink` runs one exchange: it sends the frame, hunts for STX, drops replies
with another packet id (stale, or the register's 0x20 "recovery" reply, quirks 4-5),
and on silence asks ``ENQ`` whether the register is alive (section 2.7). It never
re-sends a command. :class:`LinkCheck` is the bare ``ENQ`` -> ``ACK`` probe (link check
and baud probing). Both speak the vendor-neutral actions of :mod:`kktmon.protocol.link`.
Build requests with :mod:`kktmon.protocol.pirit.commands` (the allowlist gate), take a
fresh id from :class:`PacketIds` for each, parse replies with
:mod:`kktmon.protocol.pirit.records`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import reduce
from operator import xor

from kktmon.protocol.errors import (
    ChecksumError,
    FrameError,
)

STX, ETX, ENQ, ACK, LF, NAK, FS = 0x02, 0x03, 0x05, 0x06, 0x0A, 0x15, 0x1C
DEFAULT_PASSWORD = "PIRI"
RECOVERY_PACKET_ID = 0x20  # the register's own id for replies it failed to deliver
PACKET_ID_MIN, PACKET_ID_MAX = 0x20, 0xF0
TEXT_MIN, TEXT_MAX = 0x20, 0xF0
ENCODING = "cp866"
MIN_REQUEST, MIN_REPLY = 11, 9
MAX_FRAME = 4096  # no documented limit; the monitor's replies are a few hundred bytes

_HEX = frozenset(b"0123456789abcdefABCDEF")

Field = bytes | str | int


def checksum(body: bytes) -> int:
    """XOR of the bytes after STX up to and including ETX."""
    return reduce(xor, body, 0)


def hex2(value: int) -> bytes:
    """``0x78`` -> ``b"78"``: command, error and checksum are sent as two uppercase digits."""
    return f"{value:02X}".encode("ascii")


def parse_hex2(raw: bytes, what: str) -> int:
    """Two hex characters, any case (quirk 14); anything else is a :class:`FrameError`."""
    if len(raw) != 2 or not set(raw) <= _HEX:
        raise FrameError(f"{what}: {raw!r} is not two hex digits")
    return int(raw, 16)


def encode_field(value: Field) -> bytes:
    """One field as wire bytes: ints in decimal, text in CP866; checked for 0x20..0xF0."""
    if isinstance(value, int):
        raw = f"{value:d}".encode("ascii")
    elif isinstance(value, str):
        try:
            raw = value.encode(ENCODING)
        except UnicodeEncodeError as exc:
            raise FrameError(f"field {value!r} is not CP866 text") from exc
    else:
        raw = value
    if any(not TEXT_MIN <= byte <= TEXT_MAX for byte in raw):
        raise FrameError(f"field {raw!r} has bytes outside 20h..F0h")
    return raw


def _data(fields: Iterable[Field]) -> bytes:
    if isinstance(fields, str | bytes):  # one string is not a list of fields
        raise FrameError(f"fields must be a sequence of fields, got {fields!r}")
    return b"".join(encode_field(field) + bytes([FS]) for field in fields)


def split_fields(data: bytes) -> tuple[bytes, ...]:
    """Split on FS and drop exactly one trailing empty element (quirk 1).

    Inner empty fields are kept (an empty integer is 0). Data whose last field lacks
    its FS is accepted: the unterminated tail is the last field.
    """
    if not data:
        return ()
    parts = data.split(bytes([FS]))
    if parts[-1] == b"":
        parts.pop()
    return tuple(parts)


def _check_packet_id(packet_id: int) -> None:
    if not PACKET_ID_MIN <= packet_id <= PACKET_ID_MAX:
        raise FrameError(f"packet id {packet_id:#x} outside 20h..F0h")


def _check_password(password: str) -> bytes:
    raw = password.encode("latin-1", errors="replace")
    if len(raw) != 4 or any(not 0x20 <= byte <= 0x7E for byte in raw):
        raise FrameError(f"password {password!r} is not 4 printable ASCII characters")
    return raw


@dataclass(frozen=True)
class Request:
    """A decoded host -> register frame (the simulator's view of a request)."""

    packet_id: int
    command: int
    fields: tuple[bytes, ...] = ()
    password: str = DEFAULT_PASSWORD


@dataclass(frozen=True)
class Reply:
    """A decoded register -> host frame; ``error`` 0 means success."""

    packet_id: int
    command: int
    error: int = 0
    fields: tuple[bytes, ...] = ()

    def text(self) -> tuple[str, ...]:
        """The fields as CP866 text (every byte decodes)."""
        return tuple(field.decode(ENCODING) for field in self.fields)


def encode_request_frame(
    command: int,
    fields: Sequence[Field] = (),
    *,
    packet_id: int,
    password: str = DEFAULT_PASSWORD,
) -> bytes:
    """Low-level request encoder with no allowlist: the agent goes through
    :func:`kktmon.protocol.pirit.commands.encode_request` instead."""
    if not 0 <= command <= 0xFF:
        raise FrameError(f"command {command:#x} is not one byte")
    _check_packet_id(packet_id)
    body = _check_password(password) + bytes([packet_id]) + hex2(command)
    body += _data(fields) + bytes([ETX])
    return bytes([STX]) + body + hex2(checksum(body))


def encode_reply_frame(reply: Reply) -> bytes:
    """Encode a register's reply (used by the simulator and the tests)."""
    if not (0 <= reply.command <= 0xFF and 0 <= reply.error <= 0xFF):
        raise FrameError(f"command {reply.command:#x} / error {reply.error:#x} not one byte")
    _check_packet_id(reply.packet_id)
    body = bytes([reply.packet_id]) + hex2(reply.command) + hex2(reply.error)
    body += _data(reply.fields) + bytes([ETX])
    return bytes([STX]) + body + hex2(checksum(body))


def _unwrap(raw: bytes, minimum: int) -> bytes:
    """Check STX, ETX and checksum; return the bytes between STX and ETX."""
    if len(raw) < minimum or raw[0] != STX:
        raise FrameError(f"not a frame: {raw[:12].hex(' ')}")
    if len(raw) > MAX_FRAME:
        raise FrameError(f"frame of {len(raw)} bytes exceeds {MAX_FRAME}")
    if raw[-3] != ETX or STX in raw[1:-3] or ETX in raw[1:-3]:
        raise FrameError(f"ETX is not the third byte from the end: {raw[-12:].hex(' ')}")
    expected = checksum(raw[1:-2])
    received = parse_hex2(raw[-2:], "checksum")
    if received != expected:
        raise ChecksumError(f"checksum {received:02X}h, expected {expected:02X}h")
    return raw[1:-3]


def decode_request_frame(raw: bytes) -> Request:
    """Decode one complete request frame (the simulator's side)."""
    inner = _unwrap(raw, MIN_REQUEST)
    packet_id = inner[4]
    _check_packet_id(packet_id)
    return Request(
        packet_id=packet_id,
        command=parse_hex2(inner[5:7], "command"),
        fields=split_fields(inner[7:]),
        password=inner[:4].decode("latin-1"),
    )


def decode_reply_frame(raw: bytes) -> Reply:
    """Decode one complete reply frame; :class:`FrameError` or :class:`ChecksumError`."""
    inner = _unwrap(raw, MIN_REPLY)
    packet_id = inner[0]
    _check_packet_id(packet_id)
    return Reply(
        packet_id=packet_id,
        command=parse_hex2(inner[1:3], "command"),
        error=parse_hex2(inner[3:5], "error"),
        fields=split_fields(inner[5:]),
    )


class FrameReader:
    """Cuts frames out of a byte stream: STX .. ETX + two checksum characters.

    Bytes before STX are skipped as line noise (stray ACKs, garbage; quirk 2). An STX
    inside a frame means the frame in progress was cut: it is skipped and reading
    restarts at the new STX (STX never occurs inside a frame).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._etx_at: int | None = None
        self.skipped = 0

    @property
    def started(self) -> bool:
        return bool(self._buf)

    def feed(self, data: bytes) -> tuple[bytes | None, bytes]:
        """Take bytes; return (complete raw frame or None, bytes left over after it)."""
        for index, byte in enumerate(data):
            if byte == STX:  # never inside a frame: whatever was buffered got cut
                self.skipped += len(self._buf)
                self.reset()
            elif not self._buf:
                self.skipped += 1
                continue
            self._buf.append(byte)
            if byte == ETX and self._etx_at is None:
                self._etx_at = len(self._buf) - 1
            elif self._etx_at is not None and len(self._buf) == self._etx_at + 3:
                raw = bytes(self._buf)
                self.reset()
                return raw, data[index + 1 :]
            if len(self._buf) > MAX_FRAME:
                self.reset()
                raise FrameError(f"no frame end within {MAX_FRAME} bytes")
        return None, b""

    def reset(self) -> None:
        self._buf = bytearray()
        self._etx_at = None


class PacketIds:
    """Hands out request ids 0x21..0x3F in a cycle (pirit.md 2.6); never 0x20."""

    def __init__(self, first: int = 0x21, last: int = 0x3F) -> None:
        if not RECOVERY_PACKET_ID < first <= last <= PACKET_ID_MAX:
            raise FrameError(f"packet id range {first:#x}..{last:#x} must lie in 21h..F0h")
        self.first, self.last = first, last
        self._next = first

    def next(self) -> int:
        packet_id = self._next
        self._next = self.first if packet_id == self.last else packet_id + 1
        return packet_id
