"""The systemd unit and the Mosquitto configuration carry the settings the design relies on.

The Mosquitto checks here read ``kktmon.conf`` only, so they run where no broker is
installed; ``tests/deploy/test_mosquitto.py`` runs the same file in a real Mosquitto.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kktmon.ticketing.service import EXIT_TAKEN_OVER, EXIT_THREAD_DIED

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "systemd" / "kktmon-agent.service"
TICKETING_UNIT = DEPLOY / "systemd" / "kktmon-ticketing@.service"
MOSQUITTO = DEPLOY / "mosquitto"


def _settings(unit: Path = UNIT) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_is_a_notify_service_with_watchdog_and_restart() -> None:
    unit = _settings()
    assert unit["Type"] == ["notify"]
    assert unit["Restart"] == ["always"]
    assert int(unit["WatchdogSec"][0]) > 0
    assert "dialout" in unit["SupplementaryGroups"][0]
    assert unit["ExecReload"][0].endswith("-HUP $MAINPID")
    assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["strict"]


def test_ticketing_unit_restarts_a_failed_worker_but_not_a_session_fight() -> None:
    unit = _settings(TICKETING_UNIT)
    assert unit["ExecStart"][0].split()[1:3] == ["ticketing", "--config"]
    assert unit["Restart"] == ["on-failure"]
    # Exit 3 is a session taken over by the same client id elsewhere: restarting would
    # resume the fight, so systemd must not (the worker's own constant, not a copy).
    assert unit["RestartPreventExitStatus"] == [str(EXIT_TAKEN_OVER)]
    assert EXIT_THREAD_DIED != EXIT_TAKEN_OVER
    assert unit["StateDirectory"] == ["kktmon"], "the slot lock files live there"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
@pytest.mark.parametrize("unit", [UNIT, TICKETING_UNIT], ids=lambda path: path.name)
def test_systemd_accepts_the_unit(unit: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    complaints = [line for line in result.stderr.splitlines() if "is not executable" not in line]
    assert not complaints, result.stderr


def _mosquitto_sections() -> list[dict[str, str]]:
    """``kktmon.conf`` as its global settings, then one dict per ``listener`` (its
    ``listener`` key holding the port and address)."""
    sections: list[dict[str, str]] = [{}]
    for line in (MOSQUITTO / "kktmon.conf").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key == "listener":
            sections.append({})
        assert key == "log_type" or key not in sections[-1], f"{key} twice"
        sections[-1][key] = value
    return sections


def test_mosquitto_ties_store_client_ids_to_users_and_keeps_ticketing_apart() -> None:
    settings, *listeners = _mosquitto_sections()
    assert settings["per_listener_settings"] == "true"
    assert settings["persistence"] == "true"
    ticketing, stores = (
        next(x for x in listeners if x["listener"] == port) for port in ("1883 127.0.0.1", "8883")
    )
    assert stores["use_username_as_clientid"] == "true"
    assert "certfile" in stores and "keyfile" in stores
    for listener in (stores, ticketing):
        assert listener["allow_anonymous"] == "false"
    # Different users and ACLs: store credentials do not open the ticketing listener.
    assert stores["password_file"] != ticketing["password_file"]
    assert stores["acl_file"] != ticketing["acl_file"]
    for listener in (stores, ticketing):
        acl = MOSQUITTO / Path(listener["acl_file"]).name
        assert acl.exists(), f"{acl.name} is not shipped"


def test_mosquitto_bounds_payloads() -> None:
    settings = _mosquitto_sections()[0]
    # A state is about 1.5 kB (see the comment in kktmon.conf); issue 12 sent 1 MB ones.
    assert 16 * 1024 <= int(settings["message_size_limit"]) <= 256 * 1024
    assert int(settings["max_packet_size"]) >= int(settings["message_size_limit"])


def test_stores_acl_confines_each_store_to_its_subtree() -> None:
    lines = (MOSQUITTO / "kktmon-stores.acl").read_text(encoding="utf-8").splitlines()
    rules = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    # Patterns only: no user is special on the stores' listener.
    assert rules and all(rule[0] == "pattern" for rule in rules)
    assert all(rule[-1].startswith("kktmon/v1/%u/") for rule in rules)
