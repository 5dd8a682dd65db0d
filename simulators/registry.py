"""Vendor name -> simulated register, imported on first use (mirrors the driver registry).

Two kinds of simulator share one scriptable :class:`DeviceState`:

* wire emulators (``shtrih``, ``pirit``, ``atol``) speak the register's own protocol
  over TCP or a pty (:mod:`kktmon.simulators.server`);
* fake driver servers (``atol-web``, ``kkmserver``) answer HTTP the way the vendor's
  server software in front of a register does (:mod:`kktmon.simulators.http_server`).

:func:`simulated_register` starts either kind on a free TCP port and hands back the
running server, whose ``url`` the matching driver reads.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kktmon.protocol.errors import ConfigError
from kktmon.simulators.http_server import HttpApp, HttpFakeServer, run_http
from kktmon.simulators.scenario import DeviceState, default_state, load_scenario
from kktmon.simulators.server import DeviceEmulator, TcpServer, run

#: Built-in emulators: vendor -> (its subpackage, the class it re-exports). Each takes a
#: DeviceState.
BUILTIN_SIMULATORS: dict[str, tuple[str, str]] = {
    "shtrih": ("kktmon.simulators.shtrih", "ShtrihEmulator"),
    "pirit": ("kktmon.simulators.pirit", "PiritEmulator"),
    "atol": ("kktmon.simulators.atol", "AtolEmulator"),
}

#: Built-in fake driver servers: vendor -> (its subpackage, the class it re-exports). Each
#: takes a DeviceState and keyword options of its own (``generation`` for atol-web).
BUILTIN_SERVER_FAKES: dict[str, tuple[str, str]] = {
    "atol-web": ("kktmon.simulators.atol_web", "AtolWebApp"),
    "kkmserver": ("kktmon.simulators.kkmserver", "KkmserverApp"),
}


def wire_vendors() -> list[str]:
    """Vendors simulated on the wire (TCP or a pty)."""
    return sorted(BUILTIN_SIMULATORS)


def server_vendors() -> list[str]:
    """Vendors simulated as an HTTP driver server."""
    return sorted(BUILTIN_SERVER_FAKES)


def simulated_vendors() -> list[str]:
    return sorted(BUILTIN_SIMULATORS | BUILTIN_SERVER_FAKES)


def _state(scenario: str | Path | None) -> DeviceState:
    return load_scenario(scenario) if scenario is not None else default_state()


def _load(table: dict[str, tuple[str, str]], vendor: str) -> Any:
    if vendor not in table:
        raise ConfigError(
            f"no simulator for vendor {vendor!r}; known: {', '.join(simulated_vendors())}"
        )
    module_name, class_name = table[vendor]
    return getattr(importlib.import_module(module_name), class_name)


def make_emulator(vendor: str, scenario: str | Path | None = None) -> DeviceEmulator:
    """A wire emulator of ``vendor`` holding the scenario's state (default: a healthy one)."""
    emulator: DeviceEmulator = _load(BUILTIN_SIMULATORS, vendor)(_state(scenario))
    return emulator


def make_server_app(vendor: str, state: DeviceState | None = None, **options: Any) -> HttpApp:
    """A fake driver server of ``vendor`` serving ``state`` (default: a healthy register)."""
    app_class = _load(BUILTIN_SERVER_FAKES, vendor)
    try:
        app: HttpApp = app_class(state or default_state(), **options)
    except TypeError as exc:
        raise ConfigError(f"simulate {vendor}: {exc}") from exc
    return app


@contextmanager
def simulated_register(
    vendor: str, state: DeviceState | None = None, *, port: int = 0, **options: Any
) -> Iterator[TcpServer[DeviceEmulator] | HttpFakeServer[HttpApp]]:
    """Any simulated vendor serving ``state`` on 127.0.0.1; ``.url`` is for its driver.

    ``options`` go to a fake driver server (``generation=1`` for atol-web).
    """
    state = state or default_state()
    if vendor in BUILTIN_SERVER_FAKES:
        with HttpFakeServer(make_server_app(vendor, state, **options), port=port) as server:
            yield server
        return
    if options:
        raise ConfigError(f"simulate {vendor}: no options {', '.join(sorted(options))}")
    emulator: DeviceEmulator = _load(BUILTIN_SIMULATORS, vendor)(state)
    with TcpServer(emulator, port=port) as tcp:
        yield tcp


def run_simulator(
    vendor: str,
    tcp: tuple[str, int] | None,
    pty: bool,
    scenario: str | None = None,
    **options: Any,
) -> None:
    """Serve a simulated register until Ctrl-C or SIGTERM (``kktmon simulate``)."""
    if vendor in BUILTIN_SERVER_FAKES:
        if pty or tcp is None:
            raise ConfigError(f"simulate {vendor}: a driver server listens on TCP only (--tcp)")
        run_http(make_server_app(vendor, _state(scenario), **options), *tcp)
        return
    if options:
        raise ConfigError(f"simulate {vendor}: no options {', '.join(sorted(options))}")
    run(make_emulator(vendor, scenario), tcp=tcp, pty=pty)
