"""Raw Pirit frames on a wire, for the Pirit simulator tests (no driver involved).

The wires themselves are :mod:`sim_wire`'s (a TCP socket, a serial port on a pty).
Requests are built with the codec's low-level encoder, which has no allowlist: the
tests also send what the gate forbids. :func:`host_exchange` runs the codec's
:class:`~kktmon.protocol.pirit.HostLink` with :func:`sim_wire.run_host`, with short
timeouts.
"""

from __future__ import annotations

from sim_wire import Wire, run_host

from kktmon.protocol.link import WaitKind
from kktmon.protocol.pirit.frame import ETX, STX, Field, Reply, decode_reply_frame
from kktmon.protocol.pirit.frame import encode_request_frame as encode
from kktmon.protocol.pirit.link import HostLink

#: Host-side waits of :func:`host_exchange`; short, a test only waits on a failure.
WAITS_S = {WaitKind.ANSWER: 0.4, WaitKind.CONTROL: 0.3, WaitKind.BYTE: 0.3}


def request(command: int, *fields: Field, packet_id: int = 0x21, password: str = "PIRI") -> bytes:
    return encode(command, fields, packet_id=packet_id, password=password)


def read_reply(wire: Wire) -> bytes:
    """One reply frame as raw bytes (STX .. ETX and two checksum characters).

    Bytes before STX (noise, an ACK) are skipped.
    """
    start = wire.read(1)
    while start and start != bytes([STX]):
        start = wire.read(1)
    assert start == bytes([STX]), "no STX arrived"
    frame = start
    while not frame.endswith(bytes([ETX])):
        byte = wire.read(1)
        assert byte, f"reply stops after {frame!r}"
        frame += byte
    return frame + wire.read(2)


def ask(wire: Wire, frame: bytes) -> Reply:
    """Send one request, decode the reply."""
    wire.send(frame)
    return decode_reply_frame(read_reply(wire))


def host_exchange(url: str, link: HostLink) -> Reply:
    """Run one exchange of the codec's host link against a simulator on ``url``."""
    return run_host(url, link, WAITS_S)
