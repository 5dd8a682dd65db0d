"""The console over a store filled by the whole chain: a Shtrih-M simulator on TCP ->
``kktmon agent`` -> Mosquitto -> ``kktmon ticketing`` -> the store (SQLite, PostgreSQL) ->
``kktmon console``, every piece a real process or server on loopback.

The register's fiscal drive ends in 10 days and it holds 40 documents the OFD has not
confirmed for 3 days: the fleet, the register's page (with its first hour of history),
the plan and the tickets show what the register itself reported, to the engineer and to
the client whose site it is, and the other client gets a 404.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_rig import PASSWORD, ConsoleProcess, console_config, session
from ticketing_rig import Worker, config_text, wait_for

from kktmon.simulators.scenario import default_state
from kktmon.simulators.server import TcpServer
from kktmon.simulators.shtrih.emulator import ShtrihEmulator

SITE = "acme-7"
ENGINEER = ("ivanov", PASSWORD["ivanov"])


@pytest.fixture
def register() -> Iterator[TcpServer[ShtrihEmulator]]:
    state = default_state()
    state.fn.valid_until = date.today() + timedelta(days=10)
    state.ofd.unsent_count = 40
    state.ofd.first_unsent_at = datetime.now().replace(microsecond=0) - timedelta(days=3)
    with TcpServer(ShtrihEmulator(state)) as server:
        yield server


def _agent_config(tmp_path: Path, broker: Any, url: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'site = "{SITE}"\n[agent]\npoll_interval_s = 0.2\npoll_jitter = 0\n'
        f'health_interval_s = 5\nstate_dir = "{tmp_path / "agent"}"\n'
        f'[mqtt]\nurl = "mqtt://{broker.host}:{broker.port}"\nreconnect_min_s = 0.1\n'
        f"reconnect_max_s = 0.5\n[rules]\nraise_after = 1\nclear_after = 1\n"
        f'[[devices]]\nvendor = "shtrih"\nname = "till-1"\nurl = "{url}"\n'
        "control_timeout_s = 0.2\nanswer_timeout_s = 0.5\npoll_deadline_s = 3\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def chain(
    tmp_path: Path, mosquitto: Any, store_url: str, register: TcpServer[ShtrihEmulator]
) -> Iterator[ConsoleProcess]:
    """The chain running and the console on its store, until the ticket is open."""
    base = config_text(mosquitto, store_url, mqtt='client_id = "tk-console"\n', lock_dir=tmp_path)
    config = console_config(tmp_path / "ticketing.toml", store_url, base, acme_sites=(SITE,))
    worker = Worker(config, name="ticketing")
    agent_config = _agent_config(tmp_path, mosquitto, register.url)
    agent = subprocess.Popen(
        [sys.executable, "-m", "kktmon.cli", "agent", "--config", str(agent_config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with ConsoleProcess(config) as console:

            def opened() -> bool:
                found = httpx.get(console.url + "/api/tickets", auth=ENGINEER).json()
                return any(t["problem"] == "FN_EXPIRING" for t in found["items"])

            wait_for(opened, "the FN_EXPIRING ticket, through the console's API", timeout=60)
            yield console
    finally:
        agent.terminate()
        agent.wait(15)
        worker.stop()


def test_the_console_shows_what_the_register_reported(
    chain: ConsoleProcess, register: TcpServer[ShtrihEmulator]
) -> None:
    state = register.device.state
    fleet = httpx.get(chain.url + "/api/registers", auth=ENGINEER).json()
    (row,) = fleet["items"]
    assert row["site"] == SITE and row["kkt"].startswith("shtrih-")
    assert row["serial"] == state.serial and row["fn_serial"] == state.fn.serial
    assert row["fn_valid_until"] == state.fn.valid_until.isoformat()
    assert row["fn_days_left"] == 10 and row["unsent_count"] == 40
    assert 71 <= row["oldest_unsent_age_h"] <= 74
    assert row["client"] == "acme" and row["stale"] is False
    # The default register has a shift open since this morning: it stops first.
    assert row["shift_state"] == "open" and row["block_reason"] == "shift_24_hours"
    assert "FN_EXPIRING" in {p["code"] for p in row["problems"]}

    detail = httpx.get(chain.url + f"/api/registers/{row['kkt']}", auth=ENGINEER).json()
    assert detail["history"] and detail["history"][-1]["unsent_count"] == 40
    assert detail["history"][-1]["fn_days_left"] == 10

    plan = httpx.get(chain.url + "/api/plan?days=30", auth=ENGINEER).json()
    (item,) = plan["items"]
    assert (item["kkt"], item["fn_serial"]) == (row["kkt"], state.fn.serial)
    assert item["suggested_fn_type"]
    assert plan["by_site"] == [
        {"site": SITE, "client": "acme", "fn_type": item["suggested_fn_type"], "count": 1}
    ]

    tickets = httpx.get(chain.url + "/api/tickets", auth=ENGINEER).json()["items"]
    fn = next(t for t in tickets if t["problem"] == "FN_EXPIRING")
    assert fn["sla_deadline"] == fn["block_at"] and fn["inside_margin"] is False

    with session(chain.url, "acme-it") as client:
        page = client.get(f"/registers/{SITE}/{row['kkt']}")
        assert page.status_code == 200 and state.fn.serial in page.text
        assert page.text.count("<polyline") + page.text.count("<circle") >= 4
    with session(chain.url, "beta-it") as other:
        assert other.get(f"/registers/{SITE}/{row['kkt']}").status_code == 404
        assert other.get(f"/api/registers/{SITE}/{row['kkt']}").status_code == 404
        assert other.get("/api/registers").json()["total"] == 0
