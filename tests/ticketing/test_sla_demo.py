"""``kktmon report sla`` on the demo's store, while ``kktmon demo --keep-running`` runs.

The demo's config is the one its own hint names (``kktmon tickets --config <folder>/
ticketing.toml``); the report runs on it as a user would, without ``--month`` (this
month, in the config's zone: UTC, since the demo sets none). The demo's script is known,
so is its month: a ticket for each scripted problem, resolved, the OFD queue fixed long
before its 30-day deadline (met), the fiscal drive told it expired yesterday (missed, and
its register stopped until the drive was replaced), no call failed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from demo_run import DEMO_TIMEOUT, DemoRun, needs_mosquitto

KKTMON = [sys.executable, "-m", "kktmon.cli"]
SCRIPTED = {
    "FN_EXPIRING",
    "OFD_QUEUE_STALE",
    "PAPER_OUT",
    "DEVICE_UNREACHABLE",
    "DEVICE_BUSY",
    "AGENT_LOST",
}

pytestmark = [needs_mosquitto, DEMO_TIMEOUT]


def _month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


@pytest.fixture
def demo_config(demo_run: DemoRun) -> Path:
    """The running demo's ticketing config (the session's one demo, stopped with Ctrl-C at
    the session's end, where its exit status 0 is asserted)."""
    return demo_run.ticketing_config


def _report(config: Path, *args: str) -> str:
    done = subprocess.run(
        [*KKTMON, "report", "sla", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_report_sla_prints_the_month_of_the_demos_store(
    demo_run: DemoRun, demo_config: Path
) -> None:
    month = _month()
    report = json.loads(_report(demo_config, "--json"))
    table = _report(demo_config)
    if _month() != month or demo_run.started.strftime("%Y-%m") != month:
        pytest.skip("the month turned while the demo ran")
    assert report["month"] == month
    # The demo's one client owns the demo's one store: its figures are the total's.
    assert [c["client_id"] for c in report["clients"]] == ["demo-client"]
    total = report["total"]
    assert report["clients"][0]["opened"] == total["opened"]
    assert total["sites"] == ["demo-store"]
    # What the script does, whatever else a loaded machine may add to it.
    assert set(total["opened_by_problem"]) >= SCRIPTED
    assert total["first_seen_to_opened"]["count"] == total["opened"] >= 6
    assert total["opened_to_resolved"]["count"] >= 6
    assert total["sla_met"] >= 1 and total["sla_missed"] >= 1  # the OFD queue; the drive
    fn_stops = [r for r in total["stopped_registers"] if "FN_EXPIRING" in r["problems"]]
    assert len(fn_stops) == 1, total["stopped_registers"]
    assert fn_stops[0]["model"] and fn_stops[0]["serial"] and fn_stops[0]["stopped_s"] > 0
    assert fn_stops[0]["still_stopped"] is False  # the drive was replaced
    assert total["calls_failed"] == []
    assert table.startswith(f"SLA report for {month} ")
    total_line = next(line for line in table.splitlines() if line.startswith("total "))
    assert re.split(r"\s{2,}", total_line)[1] == str(total["opened"])
    met = total["sla_met"]
    assert f"{met} of {met + total['sla_missed']} (" in total_line
