"""Real endpoints for transport and driver tests: a pty pair, TCP peers, an fd leak guard."""

from __future__ import annotations

import io
import os
import socket
import threading
from collections.abc import Iterator

import pytest


@pytest.fixture
def pty_pair() -> Iterator[tuple[io.FileIO, str]]:
    """A pty: the master (the test plays the register) and the slave's path for the port."""
    master_fd, slave_fd = os.openpty()
    path = os.ttyname(slave_fd)
    os.close(slave_fd)  # the transport opens the slave by path, like a real /dev/ttyUSB0
    with open(master_fd, "r+b", buffering=0) as master:
        assert isinstance(master, io.FileIO)
        yield master, path


@pytest.fixture
def pty_master(pty_pair: tuple[io.FileIO, str]) -> io.FileIO:
    """The register's end of the pty; closing it (idempotent) looks like an unplugged cable."""
    return pty_pair[0]


@pytest.fixture
def pty_path(pty_pair: tuple[io.FileIO, str]) -> str:
    """The ``/dev/pts/N`` path to open as a serial port."""
    return pty_pair[1]


@pytest.fixture
def tcp_listener() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1; the test accepts and plays the peer itself."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)
        yield listener


def _echo_serve(listener: socket.socket, stop: threading.Event) -> None:
    listener.settimeout(0.05)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(0.05)
            while not stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    break
                conn.sendall(data)


@pytest.fixture
def tcp_echo_server() -> Iterator[tuple[str, int]]:
    """A thread echoing every connection's bytes back, one connection at a time."""
    stop = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(target=_echo_serve, args=(listener, stop), name="echo-server")
        thread.start()
        try:
            yield listener.getsockname()[:2]
        finally:
            stop.set()
            thread.join(timeout=5)
    assert not thread.is_alive()


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def transport_leak_guard() -> Iterator[None]:
    """Fail a test that leaves a file descriptor (port, socket, pipe) open.

    Threads are already guarded suite-wide by ``tests/conftest.py``.
    """
    fds = _open_fds()
    yield
    leaked = sorted(_open_fds() - fds, key=int)
    assert not leaked, f"file descriptors left open: {leaked}"
