"""Fixtures for the Pirit simulator tests: the emulator on the shared state, its runners
and raw wires to them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sim_wire import NOW, SerialWire, SocketWire

from kktmon.simulators.pirit import PiritEmulator
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import PtyServer, TcpServer


@pytest.fixture
def pirit(state: DeviceState) -> PiritEmulator:
    return PiritEmulator(state, clock=lambda: NOW, seed=7)


@pytest.fixture
def pirit_tcp(pirit: PiritEmulator) -> Iterator[TcpServer[PiritEmulator]]:
    with TcpServer(pirit) as server:
        yield server


@pytest.fixture
def pwire(pirit_tcp: TcpServer[PiritEmulator]) -> Iterator[SocketWire]:
    client = SocketWire(pirit_tcp.url)
    yield client
    client.close()


@pytest.fixture
def pserial(pirit: PiritEmulator) -> Iterator[SerialWire]:
    with PtyServer(pirit) as server:
        client = SerialWire(server.url)
        yield client
        client.close()
