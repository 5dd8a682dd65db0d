"""``kktmon status`` and ``simulate`` as a user runs them (``demo``: test_demo.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from kktmon.cli.main import main
from kktmon.protocol.health import HealthSnapshot
from kktmon.simulators.scenario import default_state
from kktmon.simulators.server import TcpServer
from kktmon.simulators.shtrih.emulator import ShtrihEmulator

KKTMON = [sys.executable, "-m", "kktmon.cli"]


@pytest.fixture
def register() -> Iterator[TcpServer[ShtrihEmulator]]:
    with TcpServer(ShtrihEmulator(default_state())) as server:
        yield server


def test_status_json_prints_exactly_one_snapshot(
    register: TcpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--vendor", "shtrih", "--url", register.url, "--json"]) == 0
    out = capsys.readouterr().out
    snapshot = HealthSnapshot.model_validate_json(out)
    assert json.loads(out)["schema"] == 1
    assert snapshot.device.serial == "0392190008017798"
    assert snapshot.fn.serial == "9287440301120991"


def test_status_table_shows_every_section(
    register: TcpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--vendor", "shtrih", "--url", register.url]) == 0
    out = capsys.readouterr().out
    for section in ("Register", "Fiscal drive (FN)", "OFD queue", "Shift", "Printer", "Clock"):
        assert f"\n{section}\n" in f"\n{out}"
    assert "0392190008017798" in out and "blocks at" in out


def test_silent_register_exits_non_zero_naming_url_and_hint(
    register: TcpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    register.device.state.faults.silent = True
    code = main(["status", "--vendor", "shtrih", "--url", register.url, "--timeout", "1.5"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1
    assert register.url in err and "TIMEOUT" in err and "check" in err


def test_bad_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--vendor", "shtrih", "--url", "bogus://x"]) == 2
    assert "bogus://x" in capsys.readouterr().err


def test_simulate_needs_somewhere_to_listen(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "shtrih"]) == 2
    assert main(["simulate", "nosuchvendor", "--tcp", "127.0.0.1:0"]) == 2
    assert "nosuchvendor" in capsys.readouterr().err


def test_simulate_and_status_as_separate_processes(tmp_path: Path) -> None:
    scenario = tmp_path / "expiring.toml"
    scenario.write_text('[fn]\nvalid_until = "+5d"\nwarnings = 2\n', encoding="utf-8")
    sim = subprocess.Popen(
        [*KKTMON, "simulate", "shtrih", "--tcp", "127.0.0.1:0", "--pty", "--scenario", scenario],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.stdout is not None
        urls = [sim.stdout.readline().split()[-1] for _ in range(2)]
        assert urls[0].startswith("socket://") and urls[1].startswith("serial:///dev/")
        for url in urls:
            status = subprocess.run(
                [*KKTMON, "status", "--vendor", "shtrih", "--url", url, "--json"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert status.returncode == 0, status.stderr
            snapshot = HealthSnapshot.model_validate_json(status.stdout)
            assert snapshot.fn.days_left == 5 and snapshot.fn.warnings.resource_exhausting
    finally:
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(timeout=10) == 0


def test_status_judges_the_poll_with_the_default_rules(
    register: TcpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    state = register.device.state
    state.fn.valid_until = state.fn.last_document_at.date() + timedelta(days=5)
    state.ofd.unsent_count = 3
    state.ofd.first_unsent_at = state.fn.last_document_at - timedelta(days=3)
    assert main(["status", "--vendor", "shtrih", "--url", register.url, "--json"]) == 0
    snapshot = HealthSnapshot.model_validate_json(capsys.readouterr().out)
    codes = {problem.code: problem.severity.value for problem in snapshot.problems}
    assert codes["FN_EXPIRING"] == "critical" and codes["OFD_QUEUE_STALE"] == "warning"
    assert snapshot.block_at is not None
