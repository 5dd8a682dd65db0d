"""Shtrih-M standard protocol: frames and the host side of the ENQ/ACK/NAK link.

Sans-I/O. A frame is ``STX LEN CMD DATA LRC`` where LRC is the XOR of every byte after
STX (reference shtrih-m.md section 2). :class:`HostLink` is the host's half-duplex state
machine (section 3.2): the driver tells it what arrived (or that a wait timed out) and
it answers with actions: bytes to write, input to purge, how long to wait next, or the
finished answer. It never reads a clock; the driver maps :class:`Wait` kinds to seconds.

Exchange of one command, as the register expects it::

    host ENQ -> dev NAK (idle)  -> host frame -> dev ACK -> dev answer -> host ACK
             -> dev ACK (an old answer is pending: read it, ACK it, drop it, ENQ again)
             -> dev 0xFF (TCP/RNDIS quirk: ignore)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import xor

from kktmon.protocol.errors import ChecksumError, FrameError

STX = 0x02
ENQ = 0x05
ACK = 0x06
NAK = 0x15
STRAY = 0xFF  # sent after the host's ACK over TCP/RNDIS (quirk 11.1)

MAX_BODY = 255


def lrc(body: bytes) -> int:
    """Checksum of LEN + CMD + DATA."""
    return reduce(xor, body, 0)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: the command code bytes and the data after them."""

    command: bytes
    data: bytes

    @property
    def body(self) -> bytes:
        return self.command + self.data

    @property
    def code(self) -> int:
        """The command as one number: ``0xFC`` or ``0xFF01``."""
        return int.from_bytes(self.command, "big")


def command_bytes(code: int) -> bytes:
    """``0x10`` -> ``10``; ``0xFF01`` -> ``FF 01`` (two-byte commands start with FF)."""
    return code.to_bytes(2 if code > 0xFF else 1, "big")


def split_command(body: bytes) -> Frame:
    """Split CMD+DATA into the command code and its data."""
    if not body:
        raise FrameError("empty frame body")
    width = 2 if body[0] == 0xFF and len(body) >= 2 else 1
    return Frame(command=body[:width], data=body[width:])


def encode_frame(body: bytes) -> bytes:
    """Wrap CMD+DATA into ``STX LEN ... LRC``."""
    if not 0 < len(body) <= MAX_BODY:
        raise FrameError(f"frame body must be 1..{MAX_BODY} bytes, got {len(body)}")
    with_len = bytes([len(body)]) + body
    return bytes([STX]) + with_len + bytes([lrc(with_len)])


def decode_frame(frame: bytes) -> Frame:
    """Decode one complete frame; raises a :class:`FrameError` or :class:`ChecksumError`."""
    if len(frame) < 4 or frame[0] != STX:
        raise FrameError(f"not a frame: {frame[:8].hex(' ')}")
    length = frame[1]
    if length == 0 or len(frame) != length + 3:
        raise FrameError(f"length byte {length} does not match a {len(frame)}-byte frame")
    expected = lrc(frame[1:-1])
    if frame[-1] != expected:
        raise ChecksumError(f"LRC {frame[-1]:02X}h, expected {expected:02X}h")
    return split_command(frame[2:-1])


class FrameReader:
    """Accumulates bytes into one frame; bytes before STX are skipped as line noise."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.skipped = 0

    @property
    def started(self) -> bool:
        return bool(self._buf)

    def feed(self, data: bytes) -> tuple[bytes | None, bytes]:
        """Take bytes; return (complete raw frame or None, bytes left over after it)."""
        for index, byte in enumerate(data):
            if not self._buf and byte != STX:
                self.skipped += 1
                continue
            self._buf.append(byte)
            if len(self._buf) >= 2 and len(self._buf) == self._buf[1] + 3:
                raw = bytes(self._buf)
                self._buf.clear()
                return raw, data[index + 1 :]
        return None, b""

    def reset(self) -> None:
        self._buf.clear()
