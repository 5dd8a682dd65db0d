"""The URL-addressed transport against real things: a pty pair, loopback TCP, ``loop://``."""

from __future__ import annotations

import io
import socket
import termios
import threading
import time
from collections.abc import Iterator

import pytest

from kktmon.drivers.transport import Transport, open_transport
from kktmon.protocol.errors import (
    ConfigError,
    LinkTimeoutError,
    PortBusyError,
    TransportClosedError,
    UnreachableError,
)

pytestmark = pytest.mark.usefixtures("transport_leak_guard")

EVERY_BYTE = bytes(range(256))  # Shtrih frames carry any byte value, 0x03 and 0x11 included


@pytest.fixture
def pty_transport(pty_path: str) -> Iterator[Transport]:
    with open_transport(f"serial://{pty_path}?baudrate=115200", timeout=0.5) as transport:
        yield transport


def _read_master(master: io.FileIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        data += master.read(n - len(data)) or b""
    return data


# --- serial over a pty ---------------------------------------------------------------


def test_pty_exchanges_every_byte_value_both_ways(
    pty_master: io.FileIO, pty_transport: Transport
) -> None:
    pty_transport.write(EVERY_BYTE)
    assert _read_master(pty_master, 256) == EVERY_BYTE
    pty_master.write(EVERY_BYTE)
    assert pty_transport.read_exact(256, 2.0) == EVERY_BYTE
    assert (pty_transport.bytes_tx, pty_transport.bytes_rx) == (256, 256)
    assert pty_transport.describe() == "serial"


def test_serial_url_sets_speed_and_8n1(pty_master: io.FileIO, pty_path: str) -> None:
    # a pty keeps one termios for both ends: the master shows what the port set
    with open_transport(f"serial://{pty_path}?baud=9600"):
        _, _, cflag, _, ispeed, ospeed, _ = termios.tcgetattr(pty_master)
    assert (ispeed, ospeed) == (termios.B9600, termios.B9600)
    assert cflag & termios.CSIZE == termios.CS8
    assert not cflag & (termios.PARENB | termios.CSTOPB)


def test_bare_path_and_baudrate_argument(pty_master: io.FileIO, pty_path: str) -> None:
    with open_transport(f"serial://{pty_path}?baudrate=9600", baudrate=4800) as transport:
        assert transport.describe() == "serial"
        assert termios.tcgetattr(pty_master)[4] == termios.B4800
    with open_transport(pty_path) as transport:
        assert transport.describe() == "serial"
        assert termios.tcgetattr(pty_master)[4] == termios.B115200


def test_read_returns_what_arrived_or_nothing(
    pty_master: io.FileIO, pty_transport: Transport
) -> None:
    pty_master.write(b"\x06\x02\x05")
    assert pty_transport.read(100, 1.0) == b"\x06\x02\x05"
    assert pty_transport.read(100, 0.05) == b""
    assert pty_transport.read(100, 0) == b""


def test_read_exact_collects_pieces_until_the_deadline(
    pty_master: io.FileIO, pty_transport: Transport
) -> None:
    pty_master.write(b"\x02\x03")
    late = threading.Timer(0.05, pty_master.write, [b"\x00\x10\x13"])
    late.start()
    try:
        assert pty_transport.read_exact(5, 3.0) == b"\x02\x03\x00\x10\x13"
    finally:
        late.join()


def test_read_exact_short_data_raises_link_timeout(
    pty_master: io.FileIO, pty_transport: Transport
) -> None:
    pty_master.write(b"\x02\x05")
    with pytest.raises(LinkTimeoutError, match="got 2 of 6 bytes") as caught:
        pty_transport.read_exact(6, 0.2)
    assert isinstance(caught.value, TimeoutError)
    assert pty_transport.bytes_rx == 2


def test_reset_input_drops_stale_bytes(pty_master: io.FileIO, pty_transport: Transport) -> None:
    # the first byte proves the stale write reached the port before the purge
    pty_master.write(b"\xffstale answer")
    assert pty_transport.read(1, 1.0) == b"\xff"
    pty_transport.reset_input()
    pty_master.write(b"fresh")
    assert pty_transport.read_exact(5, 1.0) == b"fresh"


def test_second_open_of_a_held_port_is_busy(pty_path: str, pty_transport: Transport) -> None:
    with pytest.raises(PortBusyError, match=f"{pty_path}.*another program"):
        open_transport(pty_path)
    pty_transport.close()
    with open_transport(pty_path) as again:
        assert not again.closed


def test_write_that_nobody_drains_times_out(pty_path: str) -> None:
    with open_transport(pty_path, timeout=0.1) as transport:
        with pytest.raises(LinkTimeoutError, match="did not take"):
            transport.write(bytes(1 << 20))
        assert transport.bytes_tx == 0


def test_pty_master_closing_is_transport_closed(
    pty_master: io.FileIO, pty_path: str, pty_transport: Transport
) -> None:
    pty_master.close()
    with pytest.raises(TransportClosedError, match=pty_path):
        pty_transport.read(10, 1.0)


@pytest.mark.parametrize("url", ["/dev/kktmon-no-such-port", "serial:///dev/kktmon-no-such-port"])
def test_missing_device_is_unreachable(url: str) -> None:
    with pytest.raises(UnreachableError, match="kktmon-no-such-port"):
        open_transport(url)


def test_spy_url_dumps_the_traffic(
    pty_master: io.FileIO, pty_path: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with open_transport(f"spy://{pty_path}") as transport:
        transport.write(b"\x05")
        assert _read_master(pty_master, 1) == b"\x05"
        assert transport.describe() == "spy"
    assert "05" in capfd.readouterr().err


# --- TCP ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["tcp", "socket"])
def test_tcp_echo_both_schemes(scheme: str, tcp_echo_server: tuple[str, int]) -> None:
    host, port = tcp_echo_server
    with open_transport(f"{scheme}://{host}:{port}", timeout=1.0) as transport:
        transport.write(EVERY_BYTE)
        assert transport.read_exact(256, 2.0) == EVERY_BYTE
        assert transport.read(10, 0.05) == b""
        assert (transport.bytes_tx, transport.bytes_rx) == (256, 256)
        assert transport.describe() == scheme


@pytest.mark.parametrize("scheme", ["tcp", "socket"])
def test_tcp_reset_input_drains_stale_bytes(scheme: str, tcp_listener: socket.socket) -> None:
    host, port = tcp_listener.getsockname()[:2]
    with open_transport(f"{scheme}://{host}:{port}") as transport:
        conn, _ = tcp_listener.accept()
        with conn:
            conn.sendall(b"\xffstale")
            assert transport.read(1, 1.0) == b"\xff"
            transport.reset_input()
            conn.sendall(b"\x06")
            assert transport.read_exact(1, 1.0) == b"\x06"


@pytest.mark.parametrize("scheme", ["tcp", "socket"])
def test_tcp_peer_closing_is_transport_closed(scheme: str, tcp_listener: socket.socket) -> None:
    host, port = tcp_listener.getsockname()[:2]
    with open_transport(f"{scheme}://{host}:{port}") as transport:
        conn, _ = tcp_listener.accept()
        conn.close()
        with pytest.raises(TransportClosedError):
            transport.read(10, 1.0)


def test_tcp_purge_notices_the_peer_closing(tcp_listener: socket.socket) -> None:
    host, port = tcp_listener.getsockname()[:2]
    with open_transport(f"tcp://{host}:{port}") as transport:
        conn, _ = tcp_listener.accept()
        conn.close()
        deadline = time.monotonic() + 2.0  # until the FIN has arrived
        with pytest.raises(TransportClosedError):
            while time.monotonic() < deadline:
                transport.reset_input()
                time.sleep(0.01)


@pytest.mark.parametrize("scheme", ["tcp", "socket"])
def test_connection_refused_is_unreachable(scheme: str, refusing_address: tuple[str, int]) -> None:
    host, port = refusing_address
    with pytest.raises(UnreachableError, match=f"{scheme}://{host}:{port}"):
        open_transport(f"{scheme}://{host}:{port}", timeout=1.0)


def test_unresolvable_host_is_unreachable() -> None:
    with pytest.raises(UnreachableError, match=r"no-such-register\.invalid"):
        open_transport("tcp://no-such-register.invalid:7778", timeout=1.0)


# --- loop://, URLs, lifecycle -----------------------------------------------------------


def test_loop_url_echoes_writes() -> None:
    with open_transport("loop://") as transport:
        transport.write(b"\x02\x01\xfc\xfd")
        assert transport.read(10, 1.0) == b"\x02\x01\xfc\xfd"
        transport.write(b"stale")
        transport.reset_input()
        assert transport.read(10, 0.05) == b""
        assert transport.describe() == "loop"
        assert (transport.bytes_tx, transport.bytes_rx) == (9, 4)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/",
        "tcp://192.0.2.1",
        "tcp://:7778",
        "tcp://192.0.2.1:99999",
        "tcp://192.0.2.1:port",
        "tcp://192.0.2.1:7778?nodelay=0",
        "socket://192.0.2.1",
        "rfc2217://192.0.2.1",
        "serial://",
        "serial:///dev/ttyS0?baudrate=fast",
        "serial:///dev/ttyS0?baudrate=0",
        "serial:///dev/ttyS0?parity=E",
        "loop://?speed=fast",
    ],
)
def test_malformed_url_is_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        open_transport(url)


@pytest.mark.parametrize("kwargs", [{"baudrate": 0}, {"timeout": 0}])
def test_bad_arguments_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        open_transport("loop://", **kwargs)  # type: ignore[arg-type]


def test_close_is_idempotent_and_final() -> None:
    transport = open_transport("loop://")
    transport.write(b"\x05")
    transport.close()
    transport.close()
    assert transport.closed
    assert transport.bytes_tx == 1  # counters survive close, the driver sums them
    with pytest.raises(TransportClosedError):
        transport.write(b"\x05")
    with pytest.raises(TransportClosedError):
        transport.read(1, 0)
