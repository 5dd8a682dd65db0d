"""Fixtures for the ATOL simulator tests: an emulator on each link layer, served on TCP,
with a raw wire to it.

The raw-byte tests read the task buffer's replies on the synchronous path, where the
worked examples are printed (``task_results="sync"``); ``test_task_results.py`` reads
the asynchronous and the mixed ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sim_wire import NOW, SocketWire

from kktmon.simulators.atol import AtolEmulator
from kktmon.simulators.atol.emulator import LinkLayer
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import TcpServer


def _served(state: DeviceState, layer: LinkLayer) -> Iterator[tuple[AtolEmulator, SocketWire]]:
    emulator = AtolEmulator(state, clock=lambda: NOW, seed=3, link_layer=layer, task_results="sync")
    with TcpServer(emulator) as server:
        wire = SocketWire(server.url)
        yield emulator, wire
        wire.close()


@pytest.fixture
def fe(state: DeviceState) -> Iterator[tuple[AtolEmulator, SocketWire]]:
    yield from _served(state, "fe")


@pytest.fixture
def legacy(state: DeviceState) -> Iterator[tuple[AtolEmulator, SocketWire]]:
    yield from _served(state, "legacy")
