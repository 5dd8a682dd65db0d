"""systemd's notify protocol (sd_notify): READY, WATCHDOG, STATUS, STOPPING.

Eight lines of socket code instead of a dependency: a datagram to ``$NOTIFY_SOCKET``
(an abstract socket when it starts with ``@``). Outside systemd it does nothing.
"""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send ``message`` to systemd; False when not running under a notify socket."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), address)
    except OSError:
        return False  # systemd gone (shutdown): nothing useful to do about it
    return True
