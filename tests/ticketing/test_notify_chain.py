"""The whole chain (issue 15): simulator -> ``kktmon agent`` -> Mosquitto -> ``kktmon
ticketing`` -> a real SMTP server: one e-mail per threshold, and none again after the
ticketing is killed with SIGKILL and started again (the broker redelivers what it had not
acknowledged, the reconciler runs again, the scan runs again: the outbox holds the line).

Everything is a real process or server on loopback: the Shtrih-M simulator over TCP, the
agent and the ticketing worker started by their console commands, Mosquitto, aiosmtpd.
Both stores (SQLite, PostgreSQL).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from smtp_inbox import SmtpInbox
from ticketing_rig import Worker, config_text, wait_for

from kktmon.simulators.scenario import default_state
from kktmon.simulators.server import TcpServer
from kktmon.simulators.shtrih.emulator import ShtrihEmulator
from kktmon.ticketing import notify_store
from kktmon.ticketing.notify_store import Notice
from kktmon.ticketing.store import TicketStore, open_store

SITE = "store-7"
EMAIL = "it@acme.example"
NOTIFY = f"""
[[clients]]
id = "acme"
name = "ООО «Акме»"
sites = ["{SITE}"]
email = ["{EMAIL}"]
[notify]
scan_interval_s = 0.3
retry_min_s = 0.5
retry_max_s = 2
[notify.smtp]
url = "smtp://127.0.0.1:{{port}}"
from = "kktmon <svc@centre.example>"
"""


@pytest.fixture
def register() -> Iterator[TcpServer[ShtrihEmulator]]:
    """A till whose fiscal drive ends in 10 days (the 14-day threshold has passed)."""
    state = default_state()
    state.fn.valid_until = date.today() + timedelta(days=10)
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


def _rows(store: TicketStore) -> list[Notice]:
    return store.transact(notify_store.records)


def _sent(store: TicketStore) -> list[int]:
    return sorted(n.threshold for n in _rows(store) if n.state == "sent")


def test_one_email_per_threshold_and_none_again_after_a_sigkill(
    tmp_path: Path, mosquitto: Any, store_url: str, register: TcpServer[ShtrihEmulator]
) -> None:
    with SmtpInbox() as inbox, open_store(store_url) as reader:
        config = tmp_path / "ticketing.toml"
        text = config_text(mosquitto, store_url, mqtt='client_id = "tk-n"\n', lock_dir=tmp_path)
        config.write_text(text + NOTIFY.format(port=inbox.port), encoding="utf-8")
        worker = Worker(config, name="ticketing")
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kktmon.cli",
                "agent",
                "--config",
                str(_agent_config(tmp_path, mosquitto, register.url)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: _sent(reader) == [14], "the 14-day e-mail sent", timeout=60)
            (first,) = inbox.received()
            assert first.rcpt_tos == [EMAIL]
            ends = register.device.state.fn.valid_until.strftime("%d.%m.%Y")
            assert first.message["Subject"].startswith(f"Касса перестанет пробивать чеки {ends}")
            assert "заводской № 0392190008017798" in first.part("plain")

            # The drive's date as the register now reports it: 5 days, past 7.
            register.device.state.fn.valid_until = date.today() + timedelta(days=5)
            wait_for(lambda: _sent(reader) == [7, 14], "the 7-day e-mail sent", timeout=60)
            assert len(inbox.received()) == 2

            worker.kill()
            restarted = Worker(config, name="ticketing")
            worker = restarted
            # Its first scan (logged at INFO) finds the deadline and queues nothing.
            restarted.wait_log(
                r"notify scan: 1 deadline\(s\) within a threshold, 0 message\(s\) queued",
                "the restarted worker's first scan that sees the register",
                timeout=60,
            )
            assert len(inbox.received()) == 2
            assert [(n.threshold, n.state, n.attempts) for n in _rows(reader)] == [
                (14, "sent", 1),
                (7, "sent", 1),
            ]
        finally:
            agent.terminate()
            agent.wait(15)
            worker.stop()
