"""Raw-byte helpers for the ATOL emulator tests, on both link layers.

Tests write the bytes of atol.md sections 2-3 themselves over a real socket or pty (the
``SocketWire`` / ``SerialWire`` of ``sim_wire``) and look at every byte that comes back.
The codec's readers are used only to *delimit* packets and frames in the stream; the
expected bytes are the reference's literals (``atol_vectors``). :func:`run_host` drives
the codec's host link machines (``FeLink``, ``LegacyLink``) over a real transport, as a
driver would, with short timeouts.
"""

from __future__ import annotations

import sim_wire
from sim_wire import Wire

from kktmon.protocol.atol.frame import PacketReader, decode_packet, encode_packet
from kktmon.protocol.atol.legacy import ACK, ENQ, EOT, FrameReader, LegacyLink
from kktmon.protocol.atol.link import FeLink
from kktmon.protocol.link import WaitKind

# Short link timeouts: the emulator answers at once unless a fault says otherwise.
HOST_TIMEOUTS = {WaitKind.CONTROL: 0.3, WaitKind.ANSWER: 0.3, WaitKind.BYTE: 0.2}


def read_packet(wire: Wire, timeout: float = 1.0) -> bytes:
    """The next FE packet as raw bytes (noise before its FE skipped); b"" if none came."""
    reader = PacketReader()
    while True:
        byte = wire.read(1, timeout)
        if not byte:
            return b""
        raw, _ = reader.feed(byte)
        if raw is not None:
            return raw


def packet_data(wire: Wire) -> tuple[int, bytes]:
    """The next FE packet's ID and DATA (checked)."""
    packet = decode_packet(read_packet(wire))
    return packet.id, packet.data


def fe_send(wire: Wire, packet_id: int, data: bytes) -> None:
    wire.send(encode_packet(packet_id, data))


def fe_ask(wire: Wire, packet_id: int, data: bytes) -> bytes:
    """Send a packet, return the DATA of the reply with the same ID."""
    fe_send(wire, packet_id, data)
    reply_id, reply = packet_data(wire)
    assert reply_id == packet_id, f"reply to packet {reply_id:02X}h, expected {packet_id:02X}h"
    return reply


def read_frame(wire: Wire, timeout: float = 1.0) -> bytes:
    """The next LEGACY frame as raw bytes (noise before STX skipped); b"" if none came."""
    reader = FrameReader()
    while True:
        byte = wire.read(1, timeout)
        if not byte:
            return b""
        raw, _ = reader.feed(byte)
        if raw is not None:
            return raw


def legacy_send(wire: Wire, frame: bytes) -> None:
    """The host's turn: ENQ -> ACK, frame -> ACK, EOT (asserting each control byte)."""
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([ACK])
    wire.send(frame)
    assert wire.read(1) == bytes([ACK])
    wire.send(bytes([EOT]))


def legacy_receive(wire: Wire) -> bytes:
    """The register's turn: its ENQ -> ACK, its frame -> ACK, its EOT; the raw frame."""
    assert wire.read(1) == bytes([ENQ])
    wire.send(bytes([ACK]))
    frame = read_frame(wire)
    wire.send(bytes([ACK]))
    assert wire.read(1) == bytes([EOT])
    return frame


def legacy_transact(wire: Wire, frame: bytes) -> bytes:
    """One whole LEGACY exchange (section 2.2); the register's raw answer frame."""
    legacy_send(wire, frame)
    return legacy_receive(wire)


def run_host(url: str, link: FeLink | LegacyLink) -> bytes:
    """Drive a host link machine over a real transport to its answer (a driver's loop)."""
    return sim_wire.run_host(url, link, HOST_TIMEOUTS)
