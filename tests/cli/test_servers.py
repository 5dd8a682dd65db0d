"""``kktmon simulate`` and ``status`` for the driver-server adapters, as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from driver_servers import password_apart

from kktmon.cli.main import main
from kktmon.protocol.health import HealthSnapshot
from kktmon.simulators.registry import simulated_register
from kktmon.simulators.scenario import DeviceState, builtin_scenarios, load_builtin

KKTMON = [sys.executable, "-m", "kktmon.cli"]
SERVERS = ["atol-web", "kkmserver"]
Verdict = tuple[set[tuple[str, str]], str | None]


@contextmanager
def simulator(*args: str) -> Iterator[str]:
    """A ``kktmon simulate`` process; yields the URL it prints."""
    sim = subprocess.Popen([*KKTMON, "simulate", *args], stdout=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None
        yield sim.stdout.readline().split()[-1]
    finally:
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(timeout=10) == 0


def status(vendor: str, url: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KKTMON, "status", "--vendor", vendor, "--url", url, "--json", "--timeout", "10"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "KKTMON_CONNECTION_PASSWORD": password},
    )


@pytest.mark.parametrize("vendor", SERVERS)
def test_simulate_and_status_through_a_driver_server(vendor: str, tmp_path: Path) -> None:
    scenario = tmp_path / "expiring.toml"
    scenario.write_text(
        '[fn]\nvalid_until = "+5d"\n[ofd]\nunsent_count = 3\nfirst_unsent_at = "-2d"\n'
    )
    with simulator(vendor, "--tcp", "127.0.0.1:0", "--scenario", str(scenario)) as url:
        plain_url, password = password_apart(url)
        result = status(vendor, plain_url, password)
    assert result.returncode == 0, result.stderr
    snapshot = HealthSnapshot.model_validate_json(result.stdout)
    assert snapshot.fn.days_left == 5
    assert snapshot.ofd.unsent_count == 3
    assert snapshot.device.transport == f"{vendor}+http"
    assert password not in result.stdout + result.stderr


def test_simulate_an_older_atol_server_generation() -> None:
    with simulator("atol-web", "--tcp", "127.0.0.1:0", "--generation", "1") as url:
        assert "@" not in url  # the DTO10 web server runs without a login unless one is set
        result = status("atol-web", url, "")
    assert result.returncode == 0, result.stderr
    assert HealthSnapshot.model_validate_json(result.stdout).fn.serial


@pytest.mark.parametrize("vendor", SERVERS)
def test_a_stopped_server_is_named_without_its_password(
    vendor: str, refusing_address: tuple[str, int]
) -> None:
    host, port = refusing_address
    url = f"{vendor}://user:Secret-Pass9@{host}:{port}/?device=1"
    result = status(vendor, url, "")
    assert result.returncode == 1
    assert "SERVER_DOWN" in result.stderr and "driver server" in result.stderr
    assert "Secret-Pass9" not in result.stdout + result.stderr


def test_a_driver_server_fake_listens_on_tcp_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "kkmserver", "--pty"]) == 2
    assert "TCP only" in capsys.readouterr().err
    assert main(["simulate", "shtrih", "--tcp", "127.0.0.1:0", "--generation", "2"]) == 2


def _verdict(vendor: str, state: DeviceState, capsys: pytest.CaptureFixture[str]) -> Verdict:
    with simulated_register(vendor, state.model_copy(deep=True)) as server:
        code = main(["status", "--vendor", vendor, "--url", server.url, "--json"])
    snapshot = HealthSnapshot.model_validate_json(capsys.readouterr().out)
    assert code == 0 and not snapshot.stale, snapshot.link
    return {(p.code, p.severity.value) for p in snapshot.problems}, snapshot.block_reason


@pytest.mark.parametrize("scenario", builtin_scenarios())
def test_status_through_a_server_judges_like_the_wire(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state = load_builtin(scenario)  # once: relative times must not straddle a minute
    wire, web, kkm = (_verdict(v, state, capsys) for v in ("atol", "atol-web", "kkmserver"))
    assert web == wire  # ATOL's web server hands over every fact the rules use
    # kkmserver passes on fewer facts (no cover, one warning bit, no shift opening time):
    # it may miss a problem, never invent one. "Not fiscal" cannot tell setup from ready,
    # so FN_NOT_FISCAL is graded as setup, the worse of the two: the same code, not the
    # same severity.
    assert {code for code, _ in kkm[0]} <= {code for code, _ in wire[0]}
    assert {p for p in kkm[0] if p[0] != "FN_NOT_FISCAL"} <= wire[0]
