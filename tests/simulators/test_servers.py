"""The runners: URLs, one client at a time, prompt shutdown, freed ports and fds, ``run``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sim_wire import SerialWire, SocketWire, answer_of, quiet, request

from kktmon.protocol.errors import ConfigError
from kktmon.protocol.shtrih.frame import ACK, ENQ, NAK
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import PtyServer, TcpServer, run
from kktmon.simulators.shtrih.emulator import ShtrihEmulator


def _runner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sim-")]


def test_tcp_url_names_a_free_loopback_port_that_is_released_on_close(
    emulator: ShtrihEmulator,
) -> None:
    server = TcpServer(emulator)
    assert server.url == f"socket://127.0.0.1:{server.port}"
    assert server.device is emulator
    server.close()
    assert _runner_threads() == []
    with socket.create_server(("127.0.0.1", server.port)):
        pass  # the port is free again
    server.close()  # a second close is harmless


def test_a_busy_port_is_a_config_error(tcp: TcpServer, emulator: ShtrihEmulator) -> None:
    with pytest.raises(ConfigError, match=str(tcp.port)):
        TcpServer(emulator, port=tcp.port)


def test_close_interrupts_a_slow_answer(emulator: ShtrihEmulator, state: DeviceState) -> None:
    state.faults.slow_answer_s = 60
    with TcpServer(emulator) as server:
        client = SocketWire(server.url)
        client.send(bytes([ENQ]))
        assert client.read(1) == bytes([NAK])
        client.send(request(0xFC, password=None))
        assert client.read(1) == bytes([ACK])
    client.close()
    assert _runner_threads() == []


def test_close_with_a_client_still_connected(tcp: TcpServer) -> None:
    client = SocketWire(tcp.url)
    answer_of(client, request(0xFC, password=None))
    tcp.close()
    assert client.read(1) == b""  # the connection went down with the server
    client.close()
    assert _runner_threads() == []


def test_one_client_at_a_time_the_next_waits_for_the_first(tcp: TcpServer) -> None:
    first = SocketWire(tcp.url)
    second = SocketWire(tcp.url)  # queued by the kernel, not served yet
    try:
        answer_of(first, request(0xFC, password=None))
        second.send(bytes([ENQ]))
        assert quiet(second) == b""
        first.close()
        assert second.read(1) == bytes([NAK])  # served once the first left
    finally:
        first.close()
        second.close()


def test_pty_url_is_a_pyserial_path_and_fds_are_freed_on_close(
    emulator: ShtrihEmulator,
) -> None:
    server = PtyServer(emulator)
    path = server.url.removeprefix("serial://")
    assert path == server.path and path.startswith("/dev/")
    assert Path(path).exists()
    fds = (server._master, server._slave)
    server.close()
    assert _runner_threads() == []
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_a_pty_survives_the_driver_closing_and_reopening_the_port(pty: PtyServer) -> None:
    for _ in range(2):
        client = SerialWire(pty.url)
        try:
            assert answer_of(client, request(0xFC, password=None), stray=False).code == 0xFC
        finally:
            client.close()


def test_tcp_and_pty_share_one_device(emulator: ShtrihEmulator) -> None:
    with TcpServer(emulator) as tcp, PtyServer(emulator) as pty:
        net, line = SocketWire(tcp.url), SerialWire(pty.url)
        try:
            answer_of(net, request(0xFF01))
            answer_of(line, request(0xFF02), stray=False)
        finally:
            net.close()
            line.close()
    assert emulator.received == [0xFF01, 0xFF02]


def test_run_needs_something_to_serve(emulator: ShtrihEmulator) -> None:
    with pytest.raises(ConfigError, match="nothing to serve"):
        run(emulator, tcp=None, pty=False)


_RUN = """
from kktmon.simulators import ShtrihEmulator, run
run(ShtrihEmulator(), tcp=("127.0.0.1", 0), pty=True)
"""


def test_run_announces_its_urls_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _RUN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        tcp_line, pty_line = process.stdout.readline(), process.stdout.readline()
        assert tcp_line.startswith("listening on socket://127.0.0.1:")
        assert pty_line.startswith("listening on serial:///dev/")
        client = SocketWire(tcp_line.split()[-1])
        try:
            assert answer_of(client, request(0xFC, password=None)).code == 0xFC
        finally:
            client.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
