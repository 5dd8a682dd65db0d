"""A paho client that reads its socket 64 KiB at a time: the worker's receiving end.

paho reads every packet with three or four ``recv`` calls (the command byte, each byte of
the length, the rest) and goes back to ``select`` after each packet. A worker receiving
thousands of QoS 1 messages a second spent a third of paho's time in those system calls
(issue 12's profile: about 20 µs of each message). :class:`BufferedClient` gives paho
a socket that reads what the kernel has in one call and hands paho its small reads from
there (:class:`BufferedSocket`), and reads on while whole packets wait in that buffer.
paho's own loop already skips ``select``'s wait while a socket reports ``pending()``
bytes (for TLS), which the buffer does too.

It overrides two of paho's methods, ``_create_socket`` (private) and ``loop_read``; a
paho without the former gets the plain client (:func:`client_class`). Everything else
(reconnects, TLS, keepalive, acks) is paho's own.
"""

from __future__ import annotations

import logging
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

log = logging.getLogger(__name__)

#: What one ``recv`` asks the kernel for.
READ_SIZE = 64 * 1024
#: Packets one turn of paho's loop reads from the buffer before it writes (acks) again.
PACKETS_PER_TURN = 100


class BufferedSocket:
    """A connected socket (or TLS socket) whose ``recv`` reads ahead."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self._data = b""
        self._at = 0

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes: from the buffer, or one read of the socket (which raises
        what the socket raises: would block, TLS wants, reset; ``b""`` at its end)."""
        if self._at >= len(self._data):
            data = self.sock.recv(READ_SIZE)
            if not data:
                return b""
            self._data, self._at = data, 0
        start = self._at
        self._at = min(start + size, len(self._data))
        return self._data[start : self._at]

    def buffered(self) -> int:
        """Bytes read from the socket that paho has not taken yet."""
        return len(self._data) - self._at

    def pending(self) -> int:
        """What paho may read without waiting: the buffer and, for TLS, decrypted bytes."""
        inner = getattr(self.sock, "pending", None)
        return self.buffered() + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:  # send, fileno, setblocking, close, ...
        return getattr(self.sock, name)


class BufferedClient(mqtt.Client):
    """paho's client, reading through a :class:`BufferedSocket`."""

    def _create_socket(self) -> Any:
        return BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """paho reads one packet per turn; go on while whole ones wait in the buffer."""
        rc = super().loop_read(max_packets)
        sock = self._sock
        for _ in range(PACKETS_PER_TURN):
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or sock is not self._sock:
                break
            if not isinstance(sock, BufferedSocket) or not sock.buffered():
                break
            rc = super().loop_read(max_packets)
        return rc


def client_class() -> type[mqtt.Client]:
    """:class:`BufferedClient`, or paho's own client if this paho builds sockets otherwise."""
    if callable(getattr(mqtt.Client, "_create_socket", None)):
        return BufferedClient
    log.warning("this paho-mqtt builds its sockets otherwise: the worker reads unbuffered")
    return mqtt.Client
