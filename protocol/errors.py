"""The one exception tree of kktmon.

Every error the project raises derives from :class:`KktmonError`; foreign exceptions
(``OSError``, ``serial.SerialException``, ``sqlite3.Error`` ...) are translated at the
layer boundary with ``raise ... from exc``::

    KktmonError
    ├── ProtocolError                 bytes that do not make sense
    │   ├── FrameError                  bad framing: no STX, short frame, bad length
    │   ├── ChecksumError               LRC/CRC mismatch
    │   ├── UnexpectedAnswerError       a well-formed answer to another command
    │   ├── MalformedAnswerError        a well-framed answer whose fields make no sense
    │   ├── CommandNotAllowedError      a command outside the read-only allowlist
    │   └── DeviceError                 the register refused with a vendor error code
    │       └── UnsupportedCommandError   ... because the model lacks the command
    ├── TransportError                the byte pipe failed
    │   ├── PortBusyError               another program holds the port (DEVICE_BUSY)
    │   │   └── ServerBusyError           a driver server holds the register for the POS
    │   ├── LinkTimeoutError            nothing (or too little) arrived in time; also a TimeoutError
    │   │   └── NoAnswerError             the register answers its link check, not the read
    │   ├── UnreachableError            the port or host could not be opened at all
    │   │   └── ServerDownError           a driver server refuses connections
    │   ├── TransportClosedError        the peer closed the connection mid-exchange
    │   └── ServerRefusedError          a driver server answered but will not serve the read
    │       └── ServerAuthError           ... because it rejects our credentials
    ├── DriverError                   a register that is not what we expected
    │   ├── DeviceNotDetectedError      no known register answered at the URL
    │   ├── WrongRegisterError          a driver server answered for another register
    │   └── UnsupportedVendorError      no driver registered under that name
    ├── ConfigError                   bad configuration or command-line input
    ├── OutboxError                   the agent's local spool (SQLite) cannot be used
    └── TicketStoreError              the service centre's ticket store cannot be used

A device refusal is raised, never returned as a value for the caller to check.
"""

from __future__ import annotations


class KktmonError(Exception):
    """Root of every error kktmon raises."""


class ProtocolError(KktmonError):
    """Bytes from (or for) the register that do not make sense."""


class FrameError(ProtocolError):
    """A frame that cannot be delimited: no start byte, a short frame, a bad length."""


class ChecksumError(ProtocolError):
    """A frame whose checksum does not match its contents."""


class UnexpectedAnswerError(ProtocolError):
    """A well-formed answer that does not belong to the command that was sent."""


class MalformedAnswerError(ProtocolError):
    """A well-framed answer that is too short or carries impossible field values."""


class CommandNotAllowedError(ProtocolError):
    """A command that is not on the vendor's read-only allowlist.

    Raised before a single byte of the command exists, so it can never reach a port.
    """

    def __init__(self, vendor: str, command: str) -> None:
        super().__init__(f"{vendor} command {command} is not on the read-only allowlist")
        self.vendor = vendor
        self.command = command


class DeviceError(ProtocolError):
    """The register answered with a non-zero vendor error code."""

    def __init__(self, vendor: str, command: str, code: int, meaning: str) -> None:
        super().__init__(f"{vendor} {command}: error {code:02X}h: {meaning}")
        self.vendor = vendor
        self.command = command
        self.code = code
        self.meaning = meaning


class UnsupportedCommandError(DeviceError):
    """The register does not implement the command (its model or firmware lacks it)."""


class TransportError(KktmonError):
    """The byte pipe to the register failed."""


class PortBusyError(TransportError):
    """Another program (usually the POS software) holds the port: report, retry later."""


class ServerBusyError(PortBusyError):
    """A vendor driver server (ATOL Web Requests, kkmserver) cannot run our read now.

    ``reason`` is a short stable token with the server's own words where it gave some
    (``queue_blocked:connectionError``, ``job_waiting``, ``http_408``, ``status_4``); it
    becomes ``link.last_error`` as ``SERVER_BUSY:<reason>``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class LinkTimeoutError(TransportError, TimeoutError):
    """Nothing, or not enough, arrived before the deadline."""


class NoAnswerError(LinkTimeoutError):
    """The register answers its link check (ENQ, a status poll) but the read's answer
    never comes: it is alive and on the line, so neither a dead cable nor a port another
    program holds. A wire driver asks a read that meets it once more; met again, it
    fails the poll (``busy``, ``busy_reason`` ``no_answer``).
    """


class UnreachableError(TransportError):
    """The port or host could not be opened: wrong path, no device, connection refused."""


class ServerDownError(UnreachableError):
    """The driver server at the URL refuses connections or cannot be resolved."""


class TransportClosedError(TransportError):
    """The peer closed the connection in the middle of an exchange."""


class ServerRefusedError(TransportError):
    """A driver server answered but will not serve this read.

    ``reason`` is a short stable token (``device_not_activated``, ``device_not_found``,
    ``http_500``) that becomes ``link.last_error`` upper-cased.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ServerAuthError(ServerRefusedError):
    """The driver server rejected our credentials (HTTP 401)."""

    def __init__(self, message: str) -> None:
        super().__init__("auth_failed", message)


class DriverError(KktmonError):
    """The register at the URL is not what the driver expected."""


class DeviceNotDetectedError(DriverError):
    """No known register answered at the URL."""


class WrongRegisterError(DriverError):
    """A driver server's device is not the register the configuration names (an operator
    re-pointed it): nothing it says may be published under this register's name."""


class UnsupportedVendorError(DriverError):
    """No driver is registered under the requested vendor name."""


class ConfigError(KktmonError):
    """Bad configuration file, URL or command-line input."""


class OutboxError(KktmonError):
    """The agent's durable spool failed: unreadable file, disk full, foreign schema."""


class TicketStoreError(KktmonError):
    """The central ticket store (SQLite or PostgreSQL) failed: unreachable, foreign schema."""
