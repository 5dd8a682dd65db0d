"""Fixtures for the simulator tests: a state at a fixed moment, an emulator, runners, wires.

Registers the sibling helper module ``sim_wire`` by path (``tests/`` is deliberately not a
package, see ``tests/protocol/conftest.py``).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kktmon.simulators.scenario import DeviceState, default_state
from kktmon.simulators.server import PtyServer, TcpServer
from kktmon.simulators.shtrih import ShtrihEmulator


def _register(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {name} next to {__file__}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_register("sim_wire")

from sim_wire import NOW, SerialWire, SocketWire  # noqa: E402


@pytest.fixture
def state() -> DeviceState:
    return default_state(now=NOW)


@pytest.fixture
def emulator(state: DeviceState) -> ShtrihEmulator:
    return ShtrihEmulator(state, clock=lambda: NOW, seed=7)


@pytest.fixture
def tcp(emulator: ShtrihEmulator) -> Iterator[TcpServer]:
    with TcpServer(emulator) as server:
        yield server


@pytest.fixture
def pty(emulator: ShtrihEmulator) -> Iterator[PtyServer]:
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
