"""``kktmon agent`` imports only what its configured vendors need (issue 13 item 11).

Memory on a store PC is the reason: every module an agent imports stays resident for
as long as it runs, so a shop with three serial registers must not carry the HTTP
client, the simulators or the service centre's ticketing. Each test runs the agent the
way systemd does (the ``kktmon`` command-line tree, a TOML file, real registers
simulated by this process and a real Mosquitto), waits until every register has
published its state, stops it with SIGTERM and reads what the agent process had
imported by then. The figures themselves (RSS, CPU) are in
``benchmarks/agent_footprint.py``, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from driver_servers import password_apart

from kktmon.simulators.http_server import HttpFakeServer
from kktmon.simulators.kkmserver.app import KkmserverApp
from kktmon.simulators.registry import make_emulator
from kktmon.simulators.scenario import default_state
from kktmon.simulators.server import PtyServer, TcpServer

SITE = "store-3"

#: The ``kktmon`` console entry, run until SIGTERM, then what it had imported on stdout.
_AGENT_THEN_MODULES = """
import json, sys
from kktmon.cli.main import main
code = main(["agent", "--config", sys.argv[1]])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

#: Never in an agent whose registers are all on the wire.
NOT_FOR_WIRE = ("httpx", "httpcore", "h11", "kktmon.simulators", "kktmon.ticketing", "kktmon.demo")


def _config(tmp_path: Path, broker: Any, devices: str) -> Path:
    text = (
        f'site = "{SITE}"\n[agent]\npoll_interval_s = 0.3\npoll_jitter = 0\n'
        f'health_interval_s = 1\nstate_dir = "{tmp_path / "state"}"\n'
        f'[mqtt]\nurl = "mqtt://{broker.host}:{broker.port}"\nreconnect_min_s = 0.1\n'
        f"reconnect_max_s = 0.5\n{devices}"
    )
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _device(vendor: str, name: str, url: str, extra: str = "") -> str:
    return f'[[devices]]\nvendor = "{vendor}"\nname = "{name}"\nurl = "{url}"\n{extra}'


@pytest.fixture
def wire_shop() -> Iterator[str]:
    """Shtrih and ATOL over TCP, Pirit on a pty: the devices of a wire-only config."""
    with ExitStack() as stack:
        tills = [
            ("shtrih", stack.enter_context(TcpServer(make_emulator("shtrih"))).url),
            ("atol", stack.enter_context(TcpServer(make_emulator("atol"))).url),
            ("pirit", stack.enter_context(PtyServer(make_emulator("pirit"))).url),
        ]
        yield "".join(_device(vendor, f"till-{n}", url) for n, (vendor, url) in enumerate(tills))


@pytest.fixture
def server_shop(tmp_path: Path) -> Iterator[str]:
    """One Shtrih behind a fake kkmserver: the device of an HTTP-vendor config."""
    with HttpFakeServer(KkmserverApp(default_state())) as server:
        url, password = password_apart(server.url)
        secret = tmp_path / "till.pass"
        secret.write_text(password + "\n", encoding="utf-8")
        yield _device("kkmserver", "till-0", url, f'connection_password_file = "{secret}"\n')


def _agent_modules(config: Path, watcher: Any, registers: int) -> set[str]:
    """What a ``kktmon agent`` process had imported once all its registers published."""
    log = config.with_suffix(".log")
    with log.open("w") as stderr:
        agent = subprocess.Popen(
            [sys.executable, "-c", _AGENT_THEN_MODULES, str(config)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            watcher.wait_for(
                lambda seen: (
                    len({s.topic for s in seen if s.topic.endswith("/state")}) >= registers
                ),
                timeout=20,
                what=f"state from {registers} register(s)",
            )
        finally:
            agent.terminate()
            out, _ = agent.communicate(timeout=20)
    assert out, f"the agent reported nothing; its log:\n{log.read_text(encoding='utf-8')}"
    report = json.loads(out)
    assert report["code"] == 0
    return set(report["modules"])


def _loaded(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


def test_a_wire_only_agent_imports_no_http_client_simulators_or_ticketing(
    tmp_path: Path, mosquitto: Any, watch: Callable[..., Any], wire_shop: str
) -> None:
    watcher = watch(mosquitto, "kktmon/#")
    modules = _agent_modules(_config(tmp_path, mosquitto, wire_shop), watcher, registers=3)
    for vendor in ("shtrih", "atol", "pirit"):
        assert f"kktmon.drivers.{vendor}.driver" in modules
    for package in NOT_FOR_WIRE:
        assert _loaded(modules, package) == [], f"a wire-only agent imported {package}"
    for vendor in ("atol_web", "kkmserver"):
        assert _loaded(modules, f"kktmon.drivers.{vendor}") == []
        assert _loaded(modules, f"kktmon.protocol.{vendor}") == []


def test_an_http_vendor_brings_the_http_client_and_nothing_else_of_the_tree(
    tmp_path: Path, mosquitto: Any, watch: Callable[..., Any], server_shop: str
) -> None:
    watcher = watch(mosquitto, "kktmon/#")
    modules = _agent_modules(_config(tmp_path, mosquitto, server_shop), watcher, registers=1)
    assert "httpx" in modules and "kktmon.drivers.kkmserver.driver" in modules
    for package in ("kktmon.simulators", "kktmon.ticketing", "kktmon.demo"):
        assert _loaded(modules, package) == [], f"the agent imported {package}"
    for vendor in ("shtrih", "atol", "pirit", "atol_web"):
        assert _loaded(modules, f"kktmon.drivers.{vendor}") == []
