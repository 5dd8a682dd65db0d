"""Fixtures for the simulator tests: a state at a fixed moment, and the Shtrih-M emulator
(the template vendor, which the runner tests use too) with its runners and raw wires.

Each vendor folder adds its own emulator's fixtures in a ``conftest.py`` of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sim_wire import NOW, SerialWire, SocketWire

from kktmon.simulators.scenario import DeviceState, default_state
from kktmon.simulators.server import PtyServer, TcpServer
from kktmon.simulators.shtrih.emulator import ShtrihEmulator


@pytest.fixture
def state() -> DeviceState:
    return default_state(now=NOW)


@pytest.fixture
def emulator(state: DeviceState) -> ShtrihEmulator:
    return ShtrihEmulator(state, clock=lambda: NOW, seed=7)


@pytest.fixture
def tcp(emulator: ShtrihEmulator) -> Iterator[TcpServer[ShtrihEmulator]]:
    with TcpServer(emulator) as server:
        yield server


@pytest.fixture
def pty(emulator: ShtrihEmulator) -> Iterator[PtyServer[ShtrihEmulator]]:
    with PtyServer(emulator) as server:
        yield server


@pytest.fixture
def wire(tcp: TcpServer) -> Iterator[SocketWire]:
    client = SocketWire(tcp.url)
    yield client
    client.close()


@pytest.fixture
def serial_wire(pty: PtyServer) -> Iterator[SerialWire]:
    client = SerialWire(pty.url)
    yield client
    client.close()
