"""Vendor name -> simulated register, imported on first use (mirrors the driver registry)."""

from __future__ import annotations

import importlib
from pathlib import Path

from kktmon.protocol.errors import ConfigError
from kktmon.simulators.scenario import default_state, load_scenario
from kktmon.simulators.server import DeviceEmulator, run

#: Built-in emulators: vendor -> (module, class). Each takes a DeviceState.
BUILTIN_SIMULATORS: dict[str, tuple[str, str]] = {
    "shtrih": ("kktmon.simulators.shtrih", "ShtrihEmulator"),
    "pirit": ("kktmon.simulators.pirit", "PiritEmulator"),
    "atol": ("kktmon.simulators.atol", "AtolEmulator"),
}


def simulated_vendors() -> list[str]:
    return sorted(BUILTIN_SIMULATORS)


def make_emulator(vendor: str, scenario: str | Path | None = None) -> DeviceEmulator:
    """An emulator of ``vendor`` holding the scenario's state (default: a healthy one)."""
    if vendor not in BUILTIN_SIMULATORS:
        known = ", ".join(simulated_vendors())
        raise ConfigError(f"no simulator for vendor {vendor!r}; known: {known}")
    module_name, class_name = BUILTIN_SIMULATORS[vendor]
    emulator_class = getattr(importlib.import_module(module_name), class_name)
    state = load_scenario(scenario) if scenario is not None else default_state()
    emulator: DeviceEmulator = emulator_class(state)
    return emulator


def run_simulator(
    vendor: str, tcp: tuple[str, int] | None, pty: bool, scenario: str | None = None
) -> None:
    """Serve a simulated register until Ctrl-C or SIGTERM (``kktmon simulate``)."""
    run(make_emulator(vendor, scenario), tcp=tcp, pty=pty)
