"""Runners that put any device emulator on a TCP port or a pseudo-terminal.

An emulator (:class:`DeviceEmulator`) is sans-I/O: for every connection it opens a
:class:`Link`, which is fed the bytes that arrived and returns :data:`Output`
instructions (bytes to write after a delay, or "drop the connection"). The runners do
the I/O in one background thread each:

* :class:`TcpServer` listens on ``127.0.0.1`` (port 0 picks a free one) and serves one
  client at a time, like a register's single socket; a second client waits in the
  backlog until the first leaves. Every connection gets a fresh link, the device state
  is shared. ``url`` is ``socket://127.0.0.1:PORT``.
* :class:`PtyServer` opens a pseudo-terminal pair; a driver opens the slave with pyserial.
  ``url`` is ``serial:///dev/pts/N``; strip ``serial://`` for the device path. The link
  lives as long as the runner, as a serial line does when the host reopens the port.

Both are context managers; :meth:`close` stops the thread promptly and frees the port or
file descriptors. :func:`run` is the blocking entry the CLI uses.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import tty
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Generic, Literal, Protocol, Self

from typing_extensions import TypeVar

from kktmon.protocol.errors import ConfigError
from kktmon.simulators.scenario import DeviceState

Transport = Literal["tcp", "pty"]


@dataclass(frozen=True)
class Write:
    """Send ``data`` after waiting ``delay_s`` seconds."""

    data: bytes
    delay_s: float = 0.0


@dataclass(frozen=True)
class Close:
    """Drop the connection (TCP only; a serial line cannot be hung up)."""


Output = Write | Close


class Link(Protocol):
    """Device side of one connection."""

    byte_timeout_s: float

    @property
    def mid_frame(self) -> bool:
        """True while a frame has started: the runner then calls :meth:`timeout` if the
        line stays quiet for ``byte_timeout_s``."""
        ...

    def start(self) -> list[Output]:
        """The connection opened (TCP accept; once per pty runner)."""
        ...

    def feed(self, data: bytes) -> list[Output]:
        """Bytes arrived from the host."""
        ...

    def timeout(self) -> list[Output]:
        """Nothing arrived for ``byte_timeout_s`` while :attr:`mid_frame` was true."""
        ...


class DeviceEmulator(Protocol):
    """A vendor emulator: shared device state, one :class:`Link` per connection."""

    @property
    def state(self) -> DeviceState: ...

    def open_link(self, transport: Transport) -> Link: ...


_Reader = Callable[[], bytes]
_Writer = Callable[[bytes], None]
# Defaults to the Protocol, so a bare ``TcpServer`` annotation still type-checks.
E = TypeVar("E", bound=DeviceEmulator, default=DeviceEmulator)


class _Runner(Generic[E]):
    """One background thread pumping bytes between an endpoint and emulator links."""

    url: str
    _can_hang_up = True

    def __init__(self, device: E, name: str) -> None:
        self.device = device
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def _start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop the thread and release the endpoint; safe to call twice."""
        if not self._stop.is_set():
            self._stop.set()
            self._wake_w.send(b"x")
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._release()
        self._wake_r.close()
        self._wake_w.close()

    def _release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _wait_readable(self, fd: int, timeout: float | None) -> bool | None:
        """True: ``fd`` is readable; False: timed out; None: the runner is stopping."""
        wake = self._wake_r.fileno()
        ready, _, _ = select.select([fd, wake], [], [], timeout)
        if wake in ready or self._stop.is_set():
            return None
        return bool(ready)

    def _pump(self, link: Link, fd: int, read: _Reader, write: _Writer) -> None:
        """Serve one connection until EOF, a Close output or stop."""
        if not self._perform(link.start(), write):
            return
        while True:
            readable = self._wait_readable(fd, link.byte_timeout_s if link.mid_frame else None)
            if readable is None:
                return
            if readable:
                data = read()
                if not data:
                    return
                outputs = link.feed(data)
            else:
                outputs = link.timeout()
            if not self._perform(outputs, write):
                return

    def _perform(self, outputs: list[Output], write: _Writer) -> bool:
        """Carry out the link's instructions; False when the connection is over."""
        for output in outputs:
            if isinstance(output, Close):
                if self._can_hang_up:
                    return False
                continue
            if output.delay_s and self._stop.wait(output.delay_s):
                return False
            try:
                write(output.data)
            except OSError:
                return False  # the client went away mid-answer
        return True


class TcpServer(_Runner[E]):
    """Serve ``device`` on a TCP port (``port=0``: any free port)."""

    def __init__(self, device: E, host: str = "127.0.0.1", port: int = 0) -> None:
        try:
            self._listener = socket.create_server((host, port), backlog=1)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.host, self.port = self._listener.getsockname()[:2]
        self.url = f"socket://{self.host}:{self.port}"
        super().__init__(device, f"sim-tcp-{self.port}")
        self._start()

    def _serve(self) -> None:
        while self._wait_readable(self._listener.fileno(), None):
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                # ACK and answer must leave as separate writes, as on the real link.
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._pump(self.device.open_link("tcp"), conn.fileno(), _recv(conn), conn.sendall)

    def _release(self) -> None:
        self._listener.close()


def _recv(conn: socket.socket) -> _Reader:
    def read() -> bytes:
        try:
            return conn.recv(4096)
        except OSError:
            return b""

    return read


class PtyServer(_Runner[E]):
    """Serve ``device`` on a pseudo-terminal; open :attr:`path` with pyserial."""

    _can_hang_up = False

    def __init__(self, device: E) -> None:
        self._master, self._slave = os.openpty()
        # Raw mode on our side too: no echo or CR/LF mangling before the driver opens it.
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.url = f"serial://{self.path}"
        super().__init__(device, f"sim-pty-{self.path}")
        self._start()

    def _serve(self) -> None:
        # The slave stays open here, so reads never fail with EIO while no driver has it.
        self._pump(self.device.open_link("pty"), self._master, self._read, self._write)

    def _read(self) -> bytes:
        try:
            return os.read(self._master, 4096)
        except OSError:
            return b""

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._master, view) :]

    def _release(self) -> None:
        for fd in (self._master, self._slave):
            with suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1


def run(
    device: DeviceEmulator,
    tcp: tuple[str, int] | None = ("127.0.0.1", 7778),
    pty: bool = False,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM, announcing each URL (the CLI's ``simulate``)."""
    if tcp is None and not pty:
        raise ConfigError("nothing to serve: give a TCP address, a pty, or both")
    announce = announce or _print
    stop = threading.Event()
    restore = _on_sigterm(stop.set)
    try:
        with ExitStack() as stack:
            if tcp is not None:
                stack.enter_context(_announced(TcpServer(device, *tcp), announce))
            if pty:
                stack.enter_context(_announced(PtyServer(device), announce))
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    finally:
        restore()


def _print(text: str) -> None:
    print(text, flush=True)  # a supervising process reads the URL from a pipe


def _announced(runner: _Runner[E], announce: Callable[[str], None]) -> _Runner[E]:
    announce(f"listening on {runner.url}")
    return runner


def _on_sigterm(handler: Callable[[], None]) -> Callable[[], None]:
    """Route SIGTERM to ``handler``; returns the undo. Only the main thread may do it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        handler()

    previous = signal.signal(signal.SIGTERM, on_signal)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore
