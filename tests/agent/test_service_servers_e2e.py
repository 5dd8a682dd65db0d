"""The agent reading registers through driver servers, publishing to a real Mosquitto.

Two tills: an ATOL behind a fake Web Requests server and a Shtrih behind a fake
kkmserver, each password in a file. The agent process publishes their state; a blocked
ATOL queue and a kkmserver command stuck behind the POS become DEVICE_BUSY alerts naming
the server's reason; no password reaches the broker or the agent's log.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from driver_servers import password_apart

from kktmon.protocol.health import HealthSnapshot
from kktmon.simulators.atol_web.app import AtolWebApp
from kktmon.simulators.http_server import HttpFakeServer
from kktmon.simulators.kkmserver.app import KkmserverApp
from kktmon.simulators.scenario import default_state

SITE = "store-9"
ROOT = f"kktmon/v1/{SITE}"


def _device(tmp_path: Path, vendor: str, name: str, server: HttpFakeServer[Any]) -> str:
    url, password = password_apart(server.url)
    secret = tmp_path / f"{name}.pass"
    secret.write_text(password + "\n", encoding="utf-8")
    return (
        f'[[devices]]\nvendor = "{vendor}"\nname = "{name}"\nurl = "{url}"\n'
        f'connection_password_file = "{secret}"\nanswer_timeout_s = 2\npoll_deadline_s = 4\n'
    )


def _config(tmp_path: Path, broker: Any, devices: str) -> Path:
    text = (
        f'site = "{SITE}"\n[agent]\npoll_interval_s = 0.3\npoll_jitter = 0\n'
        f'health_interval_s = 1\nstate_dir = "{tmp_path / "state"}"\n'
        f'[mqtt]\nurl = "mqtt://{broker.host}:{broker.port}"\nreconnect_min_s = 0.1\n'
        f"reconnect_max_s = 0.5\n[rules]\nraise_after = 2\nclear_after = 2\n{devices}"
    )
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def servers() -> Iterator[tuple[HttpFakeServer[AtolWebApp], HttpFakeServer[KkmserverApp]]]:
    atol_state, shtrih_state = default_state(), default_state()
    atol_state.serial = "0010610012345678"
    atol_state.fn.valid_until = (atol_state.fn.last_document_at + timedelta(days=5)).date()
    shtrih_state.ofd.unsent_count = 4
    shtrih_state.ofd.first_unsent_at = shtrih_state.fn.last_document_at - timedelta(days=3)
    with (
        HttpFakeServer(AtolWebApp(atol_state)) as atol,
        HttpFakeServer(KkmserverApp(shtrih_state)) as kkm,
    ):
        # One odd field, as a real server may send: read as null and counted, not a lost poll.
        kkm.app.info_overrides = {"NameOrganization": 42}
        yield atol, kkm


def test_agent_reads_through_both_servers_and_reports_a_busy_server(
    tmp_path: Path,
    mosquitto: Any,
    watch: Callable[..., Any],
    servers: tuple[HttpFakeServer[AtolWebApp], HttpFakeServer[KkmserverApp]],
) -> None:
    atol, kkm = servers
    devices = _device(tmp_path, "atol-web", "till-1", atol) + _device(
        tmp_path, "kkmserver", "till-2", kkm
    )
    watcher = watch(mosquitto, "kktmon/#")
    log, config = tmp_path / "agent.log", _config(tmp_path, mosquitto, devices)
    with log.open("w") as stderr:
        agent = subprocess.Popen(
            [sys.executable, "-m", "kktmon.cli", "-v", "agent", "--config", str(config)],
            stderr=stderr,
        )
        try:
            _check_publishing(watcher, atol, kkm)
        finally:
            agent.terminate()
            assert agent.wait(timeout=15) == 0
    published = b"".join(seen.payload for seen in watcher.on("kktmon/#"))
    for server in servers:
        password = password_apart(server.url)[1]
        assert password.encode() not in published
        assert password not in log.read_text(encoding="utf-8")
    assert "HTTP Request" in log.read_text(encoding="utf-8")  # debug logging was on
    assert atol.app.violations == [] and kkm.app.violations == []


def _check_publishing(
    watcher: Any, atol: HttpFakeServer[AtolWebApp], kkm: HttpFakeServer[KkmserverApp]
) -> None:
    atol_kkt = f"{ROOT}/kkt/atol-10610012345678"
    shtrih_kkt = f"{ROOT}/kkt/shtrih-{kkm.state.serial}"
    atol_state = HealthSnapshot.model_validate_json(
        watcher.wait_topic(f"{atol_kkt}/state", timeout=15).payload
    )
    assert atol_state.fn.days_left == 5 and atol_state.device.transport == "atol-web+http"
    shtrih_state = HealthSnapshot.model_validate_json(
        watcher.wait_topic(f"{shtrih_kkt}/state", timeout=15).payload
    )
    assert shtrih_state.ofd.unsent_count == 4
    assert shtrih_state.device.transport == "kkmserver+http"
    watcher.wait_topic(f"{atol_kkt}/alert/FN_EXPIRING", lambda s: bool(s.payload), timeout=15)
    watcher.wait_topic(f"{shtrih_kkt}/alert/OFD_QUEUE_STALE", lambda s: bool(s.payload))
    health = watcher.wait_topic(
        f"{ROOT}/agent/health",
        lambda s: json.loads(s.payload).get("invalid_fields", {}).get("till-2", 0) >= 1,
        timeout=15,
    )
    assert "till-1" not in json.loads(health.payload)["invalid_fields"]

    atol.app.blocked_reason = "connectionError"
    kkm.app.queued_polls = 1000
    busy = {
        kkt: json.loads(
            watcher.wait_topic(
                f"{kkt}/alert/DEVICE_BUSY", lambda s: bool(s.payload), timeout=20
            ).payload
        )
        for kkt in (atol_kkt, shtrih_kkt)
    }
    assert "connectionError" in busy[atol_kkt]["message"]
    assert busy[atol_kkt]["facts"]["busy_reason"] == "queue_blocked:connectionError"
    assert busy[shtrih_kkt]["facts"]["last_error"] == "SERVER_BUSY:status_4"
    assert busy[shtrih_kkt]["facts"]["busy_reason"] == "server_busy:status_4"

    atol.app.blocked_reason = ""
    watcher.wait_topic(f"{atol_kkt}/alert/DEVICE_BUSY", lambda s: s.payload == b"", timeout=20)
