"""Raw-byte clients for the simulator tests: a TCP socket and a serial port on a pty.

No driver is involved: tests write the bytes of shtrih-m.md section 3 themselves and
look at every byte that comes back (``pirit_sim_wire`` and ``atol_sim_wire`` add their
vendors' frames). :func:`run_host` is the one exception: it runs any vendor's host link
machine over a real transport, as a driver's loop does, with short timeouts.
pytest puts ``tests/helpers`` on ``sys.path``, so this is the module ``sim_wire``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol, TypeVar

import serial

from kktmon.drivers.transport import open_transport
from kktmon.protocol.link import LinkMachine, Purge, Send, Wait, WaitKind
from kktmon.protocol.shtrih.frame import ACK, ENQ, NAK, STRAY, Frame, command_bytes, decode_frame
from kktmon.protocol.shtrih.frame import encode_frame as encode

#: The moment of the real E2 trace; every relative time of a test state resolves against it.
NOW = datetime(2026, 1, 15, 16, 7, 40)
READ_TIMEOUT_S = 1.0  # generous: only reached when a test is about to fail
QUIET_S = 0.15  # how long "nothing arrives" is watched for
#: Host-side waits of :func:`run_host`; short, a test only waits on a failure.
HOST_WAITS = {WaitKind.CONTROL: 0.3, WaitKind.ANSWER: 0.3, WaitKind.BYTE: 0.3}

A = TypeVar("A")


def h(text: str) -> bytes:
    """Bytes from the reference's spaced hex notation."""
    return bytes.fromhex(text)


def request(code: int, data: bytes = b"", password: int | None = 30) -> bytes:
    """A command frame, built raw: tests also send what the allowlist forbids."""
    pwd = b"" if password is None else password.to_bytes(4, "little")
    return encode(command_bytes(code) + pwd + data)


class Wire(Protocol):
    def send(self, data: bytes) -> None: ...

    def read(self, size: int, timeout: float = READ_TIMEOUT_S) -> bytes: ...

    def close(self) -> None: ...


class SocketWire:
    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("socket://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=READ_TIMEOUT_S)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, size: int, timeout: float = READ_TIMEOUT_S) -> bytes:
        """Up to ``size`` bytes, whatever arrived before ``timeout``; b"" on EOF."""
        deadline = time.monotonic() + timeout
        data = b""
        while len(data) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(size - len(data))
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


class SerialWire:
    def __init__(self, url: str) -> None:
        self.port = serial.Serial(url.removeprefix("serial://"), 115200, timeout=READ_TIMEOUT_S)

    def send(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read(self, size: int, timeout: float = READ_TIMEOUT_S) -> bytes:
        self.port.timeout = timeout
        return bytes(self.port.read(size))

    def close(self) -> None:
        self.port.close()


def quiet(wire: Wire, timeout: float = QUIET_S) -> bytes:
    """Whatever arrives within ``timeout`` (tests expect b"")."""
    return wire.read(4096, timeout)


def read_frame(wire: Wire) -> bytes:
    """One answer frame as raw bytes (STX, LEN, body, LRC), noise before STX skipped."""
    start = wire.read(1)
    while start and start != b"\x02":
        start = wire.read(1)
    assert start == b"\x02", "no STX arrived"
    length = wire.read(1)
    rest = wire.read(length[0] + 1)
    return start + length + rest


def transact(wire: Wire, frame: bytes, stray: bool) -> bytes:
    """The canonical exchange (section 3.3), asserting every control byte on the way."""
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([NAK])
    wire.send(frame)
    assert wire.read(1) == bytes([ACK])
    answer = read_frame(wire)
    wire.send(bytes([ACK]))
    if stray:
        assert wire.read(1) == bytes([STRAY])
    return answer


def answer_of(wire: Wire, frame: bytes, stray: bool = True) -> Frame:
    return decode_frame(transact(wire, frame, stray))


def run_host(url: str, link: LinkMachine[A], waits: Mapping[WaitKind, float] = HOST_WAITS) -> A:
    """Drive a host link machine over a real transport to its answer (a driver's loop)."""
    transport = open_transport(url, timeout=1.0)
    try:
        actions = link.start()
        while True:
            wait = WaitKind.CONTROL
            for action in actions:
                if isinstance(action, Purge):
                    transport.reset_input()
                elif isinstance(action, Send):
                    transport.write(action.data)
                elif isinstance(action, Wait):
                    wait = action.kind
            if link.done and link.answer is not None:
                return link.answer
            data = transport.read(512, waits[wait])
            actions = link.receive(data) if data else link.timeout()
    finally:
        transport.close()
