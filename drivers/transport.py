"""The byte pipe to a register, addressed by URL.

:func:`open_transport` turns a URL into an open :class:`Transport`:

``serial:///dev/ttyUSB0?baudrate=115200``
    A local serial port, 8N1, no flow control; ``baud`` is accepted as an alias of
    ``baudrate`` (default 115200, the first speed to probe). Windows ports are written
    ``serial://COM3``. A bare path (``/dev/ttyUSB0``, ``COM3``) means the same.
``usb://VID:PID?serial=S``
    A USB register's serial port, found again at every open: the tty (ttyACM*, ttyUSB*)
    that the device with this VID:PID and USB serial number has *now*, through pyserial's
    port list (:mod:`kktmon.drivers.usb`), so a replug that renumbers the tty does not
    stop monitoring; the change is logged. ``?index=N`` instead of ``serial`` picks the
    N-th such device by USB port path (for devices without a serial number; default 0);
    ``&baudrate=`` as ``serial://``. A register not plugged in is :class:`UnreachableError`.
``tcp://host:port``
    A plain TCP socket (connect timeout, ``TCP_NODELAY``): Ethernet, Wi-Fi and RNDIS
    registers, usually on port 7778. The port is mandatory.
any other pyserial URL
    Passed to :func:`serial.serial_for_url`: ``socket://host:port?logging=debug``
    (pyserial's raw socket; a plain ``socket://host:port`` without options is served by
    the TCP transport above, which skips the 0.3 s sleep pyserial's close() makes on
    every poll), ``rfc2217://host:port`` (a serial server such as ser2net), ``loop://``
    (echoes what is written; for tests), ``spy://PORT`` (hex-dumps the traffic of
    ``PORT`` to stderr; its ``?file=`` option leaks the file handle in pyserial 3.5).

Serial ports are opened with ``exclusive=True`` (an advisory ``flock``), so a port held
by another program that also locks it, or that set ``TIOCEXCL`` (EBUSY), is reported as
:class:`PortBusyError`: a state to report and retry, not a crash.

Errors are translated here (``raise ... from exc``): a busy port -> :class:`PortBusyError`,
a missing device or an unreachable host -> :class:`UnreachableError`, the peer going away
-> :class:`TransportClosedError`, too little data by a deadline -> :class:`LinkTimeoutError`,
other pyserial or OS failures -> :class:`TransportError`, a malformed URL ->
:class:`ConfigError`.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType
from typing import Self
from urllib.parse import SplitResult, parse_qs, urlsplit

import serial
import serial.rfc2217

from kktmon.drivers.usb import RESOLVER, UsbResolver
from kktmon.protocol.errors import (
    ConfigError,
    LinkTimeoutError,
    PortBusyError,
    TransportClosedError,
    TransportError,
    UnreachableError,
)

DEFAULT_TIMEOUT = 3.0
DEFAULT_BAUDRATE = 115200
_PURGE_LIMIT = 1 << 20  # a peer that floods us must not keep reset_input() busy forever

_BUSY_ERRNOS = {errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK}
_UNREACHABLE_ERRNOS = {
    errno.ENOENT,
    errno.ENXIO,
    errno.ENODEV,
    errno.ECONNREFUSED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
}
_CLOSED_ERRNOS = {
    errno.EIO,
    errno.ENXIO,
    errno.ENODEV,
    errno.EPIPE,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.ETIMEDOUT,  # on an established connection: the peer stopped acknowledging
}
# pyserial raises these without an errno when the device or socket goes away
_CLOSED_HINTS = ("disconnected", "returned no data")


class Transport(ABC):
    """An open byte pipe with deadline-bounded reads and link counters.

    ``bytes_tx`` counts bytes written; ``bytes_rx`` counts bytes read from the link,
    including those of a :meth:`read_exact` that then timed out, but not bytes dropped
    by :meth:`reset_input`. Both stay readable after :meth:`close`.
    """

    def __init__(self, url: str, kind: str) -> None:
        self.url = url
        self.kind = kind
        self.bytes_tx = 0
        self.bytes_rx = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def describe(self) -> str:
        """The short transport label of the health model (``serial``, ``tcp``, ``loop``...)."""
        return self.kind

    def write(self, data: bytes) -> None:
        """Send one frame in a single write: the register's inter-byte timeout is ~50 ms."""
        self._check_open()
        self._write(data)
        self.bytes_tx += len(data)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Return what arrived (1 to ``max_bytes`` bytes), or ``b""`` once ``timeout`` passed."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
        self._check_open()
        data = self._read(max_bytes, max(timeout, 0.0))
        self.bytes_rx += len(data)
        return data

    def read_exact(self, n: int, timeout: float) -> bytes:
        """Return exactly ``n`` bytes or raise :class:`LinkTimeoutError` at the deadline."""
        deadline = time.monotonic() + timeout
        got = bytearray()
        while len(got) < n:
            got += self.read(n - len(got), max(deadline - time.monotonic(), 0.0))
            if len(got) < n and time.monotonic() >= deadline:
                raise LinkTimeoutError(
                    f"{self.url}: got {len(got)} of {n} bytes within {timeout:g} s"
                    f" (received: {got[:32].hex(' ') or 'nothing'}); check that the register"
                    " is powered, the cable and the speed"
                )
        return bytes(got)

    def reset_input(self) -> None:
        """Drop whatever already arrived (stale answers, the 0xFF some TCP registers send)."""
        self._check_open()
        self._purge()

    def close(self) -> None:
        """Release the port or socket; closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.url} {state} tx={self.bytes_tx} rx={self.bytes_rx}>"

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosedError(f"{self.url}: the transport was already closed")

    @abstractmethod
    def _write(self, data: bytes) -> None: ...

    @abstractmethod
    def _read(self, max_bytes: int, timeout: float) -> bytes: ...

    @abstractmethod
    def _purge(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...


class SerialTransport(Transport):
    """A pyserial port: a local serial device or any ``serial_for_url`` URL."""

    def __init__(self, url: str, kind: str, port: serial.Serial) -> None:
        super().__init__(url, kind)
        self._port = port

    def _write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except serial.SerialTimeoutException as exc:
            raise LinkTimeoutError(
                f"{self.url}: the port did not take {len(data)} bytes in time; check the"
                " cable and flow control"
            ) from exc
        except (serial.SerialException, OSError) as exc:
            raise _io_error(self.url, "write", exc) from exc

    def _read(self, max_bytes: int, timeout: float) -> bytes:
        # pyserial's read(n) waits for all n bytes; wait for one, then take the rest
        # that is already there without waiting.
        try:
            self._set_timeout(timeout)
            first = self._port.read(1)
            if not first or max_bytes == 1:
                return first
            self._set_timeout(0)
            return first + self._port.read(max_bytes - 1)
        except (serial.SerialException, OSError) as exc:
            raise _io_error(self.url, "read", exc) from exc

    def _set_timeout(self, timeout: float) -> None:
        if self._port.timeout == timeout:
            return
        if isinstance(self._port, serial.rfc2217.Serial):
            # The public setter renegotiates every port setting with the RFC 2217
            # server (50 ms sleeps); its read() only looks at _timeout.
            self._port._timeout = timeout  # type: ignore[attr-defined]
        else:
            self._port.timeout = timeout

    def _purge(self) -> None:
        try:
            self._port.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise _io_error(self.url, "purge", exc) from exc

    def _close(self) -> None:
        # an unplugged device may fail to close; the handle is gone either way
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()


class TcpTransport(Transport):
    """A plain TCP connection to a networked register."""

    def __init__(
        self, url: str, sock: socket.socket, write_timeout: float, kind: str = "tcp"
    ) -> None:
        super().__init__(url, kind)
        self._sock = sock
        self._write_timeout = write_timeout

    def _write(self, data: bytes) -> None:
        try:
            self._sock.settimeout(self._write_timeout)
            self._sock.sendall(data)
        except TimeoutError as exc:
            raise LinkTimeoutError(f"{self.url}: the peer did not take {len(data)} bytes") from exc
        except OSError as exc:
            raise _io_error(self.url, "write", exc) from exc

    def _read(self, max_bytes: int, timeout: float) -> bytes:
        try:
            self._sock.settimeout(timeout)
            data = self._sock.recv(max_bytes)
        except (TimeoutError, BlockingIOError):
            return b""
        except OSError as exc:
            raise _io_error(self.url, "read", exc) from exc
        if not data:
            raise _peer_closed(self.url)
        return data

    def _purge(self) -> None:
        dropped = 0
        try:
            self._sock.setblocking(False)
            while dropped < _PURGE_LIMIT:
                chunk = self._sock.recv(4096)
                if not chunk:
                    raise _peer_closed(self.url)
                dropped += len(chunk)
        except BlockingIOError:
            return
        except OSError as exc:
            raise _io_error(self.url, "purge", exc) from exc

    def _close(self) -> None:
        self._sock.close()


def open_transport(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    baudrate: int | None = None,
    usb_resolver: UsbResolver | None = None,
) -> Transport:
    """Open the pipe that ``url`` names (forms in the module docstring).

    ``timeout`` bounds connecting and each write. ``baudrate``, when given, wins over
    the URL's, so a scanner can probe speeds on a configured port. ``usb_resolver``
    finds a ``usb://`` register's tty (default: the process's :data:`RESOLVER`).
    """
    if timeout <= 0:
        raise ConfigError(f"{url}: timeout must be positive, not {timeout}")
    if baudrate is not None:
        _check_baudrate(url, baudrate)
    if "://" not in url:
        return _open_serial(url, url, "serial", baudrate or DEFAULT_BAUDRATE, timeout)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "serial":
        device, url_baudrate = _parse_serial_url(url, parts)
        return _open_serial(url, device, "serial", baudrate or url_baudrate, timeout)
    if scheme == "usb":
        device, url_baudrate = (usb_resolver or RESOLVER).resolve(url)
        return _open_serial(url, device, "usb", baudrate or url_baudrate, timeout)
    if scheme == "tcp":
        if parts.query:
            raise ConfigError(f"{url}: tcp:// URLs take no options, got ?{parts.query}")
        return _open_tcp(url, *_host_port(url, parts), timeout)
    if scheme == "socket" and not parts.query:
        # Same bytes as pyserial's socket://, minus the 0.3 s sleep its close() makes
        # on every poll; with options (?logging=...) pyserial's handler is used.
        return _open_tcp(url, *_host_port(url, parts), timeout, "socket")
    if scheme in ("socket", "rfc2217"):
        _host_port(url, parts)  # pyserial's own message for a missing port is cryptic
    return _open_serial(url, url, scheme, baudrate or DEFAULT_BAUDRATE, timeout)


def _parse_serial_url(url: str, parts: SplitResult) -> tuple[str, int]:
    device = parts.netloc + parts.path  # serial:///dev/ttyUSB0 or serial://COM3
    if not device:
        raise ConfigError(f"{url}: no device, expected serial:///dev/ttyUSB0 or serial://COM3")
    baudrate = DEFAULT_BAUDRATE
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        if key not in ("baudrate", "baud"):
            raise ConfigError(f"{url}: unknown option {key!r}; serial URLs take only baudrate")
        try:
            baudrate = int(values[-1])
        except ValueError:
            raise ConfigError(f"{url}: baudrate must be a number, not {values[-1]!r}") from None
        _check_baudrate(url, baudrate)
    return device, baudrate


def _check_baudrate(url: str, baudrate: int) -> None:
    if baudrate <= 0:
        raise ConfigError(f"{url}: baudrate must be positive, not {baudrate}")


def _host_port(url: str, parts: SplitResult) -> tuple[str, int]:
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{url}: bad port number ({exc})") from exc
    if not parts.hostname or port is None:
        raise ConfigError(f"{url}: expected {parts.scheme}://host:port, e.g. port 7778")
    return parts.hostname, port


def _open_serial(url: str, address: str, kind: str, baudrate: int, timeout: float) -> Transport:
    try:
        port = serial.serial_for_url(
            address,
            baudrate=baudrate,
            bytesize=serial.EIGHTBITS,
            parity=serial.PARITY_NONE,
            stopbits=serial.STOPBITS_ONE,
            timeout=timeout,
            # pyserial's RFC 2217 client refuses any write timeout
            write_timeout=None if kind == "rfc2217" else timeout,
            exclusive=True,
            do_not_open=True,
        )
        port.open()
    except ValueError as exc:  # unknown URL scheme, impossible setting
        raise ConfigError(f"{url}: {exc}") from exc
    except KeyError as exc:  # pyserial 3.5 fails to format its own "unknown option" message
        raise ConfigError(f"{url}: pyserial does not know an option of this URL") from exc
    except (serial.SerialException, OSError) as exc:
        raise _open_error(url, exc) from exc
    return SerialTransport(url, kind, port)


def _open_tcp(url: str, host: str, port: int, timeout: float, kind: str = "tcp") -> Transport:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise _open_error(url, exc) from exc
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        sock.close()
        raise TransportError(f"{url}: cannot set TCP_NODELAY ({exc})") from exc
    return TcpTransport(url, sock, timeout, kind)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those it was raised from (pyserial often drops the errno)."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _errnos(exc: BaseException) -> set[int]:
    codes = {e.errno for e in _chain(exc) if isinstance(e, OSError) and e.errno is not None}
    # termios.error (POSIX only, not an OSError) carries (errno, text)
    codes.update(e.args[0] for e in _chain(exc) if e.args and isinstance(e.args[0], int))
    return codes


def _open_error(url: str, exc: BaseException) -> TransportError | ConfigError:
    codes = _errnos(exc)
    text = " ".join(str(e) for e in _chain(exc))
    if "expected a string in the form" in text:
        return ConfigError(f"{url}: {exc}")
    # Windows reports a COM port another process holds as "Access is denied".
    if codes & _BUSY_ERRNOS or "exclusively lock" in text or "PermissionError" in text:
        return PortBusyError(
            f"port {url} is held by another program (the POS software?); the agent will retry"
        )
    if errno.EACCES in codes:
        return TransportError(
            f"{url}: permission denied; add the agent's user to the dialout group ({exc})"
        )
    unreachable = any(isinstance(e, socket.gaierror | TimeoutError) for e in _chain(exc))
    if unreachable or codes & _UNREACHABLE_ERRNOS or "FileNotFoundError" in text:
        return UnreachableError(
            f"{url}: cannot reach the register ({exc}); check the device path or the"
            " address, the cable and that the register is powered"
        )
    return TransportError(f"{url}: cannot open ({exc})")


def _io_error(url: str, action: str, exc: BaseException) -> TransportError:
    text = " ".join(str(e) for e in _chain(exc))
    if _errnos(exc) & _CLOSED_ERRNOS or any(hint in text for hint in _CLOSED_HINTS):
        return TransportClosedError(
            f"{url}: the link dropped during {action} ({exc}); check the cable and the power"
        )
    return TransportError(f"{url}: {action} failed ({exc})")


def _peer_closed(url: str) -> TransportClosedError:
    return TransportClosedError(
        f"{url}: the register closed the connection; it may accept one client only"
    )
