"""``kktmon ticketing --workers N`` (issue 12): N worker processes on one host.

One worker is one Python process and uses about one core; a host with more runs a pool.
Real Mosquitto, a real supervisor with its workers, both stores: every worker takes its
own slot and session, the broker shares the messages out between them, a worker that
dies is restarted into its slot, and SIGTERM stops them all keeping their sessions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ticketing_rig import Agent, Worker, config_text, wait_for

from kktmon.ticketing.identity import holder_pid, lock_path
from kktmon.ticketing.store import TicketStore, open_store


@pytest.fixture
def reader(store_url: str) -> Iterator[TicketStore]:
    store = open_store(store_url)
    yield store
    store.close()


@pytest.fixture
def pool(mosquitto: Any, store_url: str, tmp_path: Path) -> Iterator[Worker]:
    config = tmp_path / "ticketing.toml"
    config.write_text(config_text(mosquitto, store_url, lock_dir=tmp_path / "locks"))
    supervisor = Worker(config, "--workers", "2", name="pool")
    yield supervisor
    if supervisor.process.poll() is None:
        supervisor.stop()


def _pids(log: str) -> dict[int, int]:
    """Worker number -> pid of its newest start, as the supervisor logged them."""
    return {int(n): int(pid) for n, pid in re.findall(r"worker (\d) started \(pid (\d+)\)", log)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")


def _seen(store: TicketStore, event_ids: list[str]) -> bool:
    rows = store._run(lambda tx: tx.all("SELECT event_id FROM seen_events"))
    return set(event_ids) <= {str(row[0]) for row in rows}


def test_a_pool_shares_the_work_restarts_a_dead_worker_and_stops_cleanly(
    pool: Worker, mosquitto: Any, reader: TicketStore, tmp_path: Path
) -> None:
    locks = tmp_path / "locks"
    ids = {
        pool.wait_log(rf"as (kktmon-ticketing-\S+-{n}): connected", f"worker {n}").group(1)
        for n in (1, 2)
    }
    assert len(ids) == 2
    pool.wait_log(r"(?s)reconciled.*reconciled", "both reconciled")
    agent = Agent(mosquitto)
    try:
        now = datetime.now(UTC)
        events = [str(agent.event("raised", f"PRINTER_FAULT_{n}", now).id) for n in range(20)]
        wait_for(lambda: _seen(reader, events), "every event applied")
        # Both sessions are in the group: the broker dealt the events out between them.
        sent = mosquitto.log_path.read_text(errors="replace")
        for client_id in ids:
            assert f"Sending PUBLISH to {client_id} (d0, q1" in sent, client_id

        # Kill the worker that holds slot 2 (its lock file names its pid).
        second = next(client_id for client_id in ids if client_id.endswith("-2"))
        victim = holder_pid(lock_path(locks, second))
        assert victim is not None and victim in _pids(pool.log()).values()
        os.kill(victim, 9)
        pool.wait_log(r"worker \d killed by signal 9; restarting it in 1 s", "the death noticed")
        wait_for(lambda: victim not in _pids(pool.log()).values(), "restarted", timeout=20)
        pool.wait_log(r"(?s)killed by signal.*-2: connected, resumed its session", "slot 2 back")
        wait_for(lambda: holder_pid(lock_path(locks, second)) != victim, "slot 2 locked anew")
        later = [str(agent.event("raised", f"COVER_OPEN_{n}", now).id) for n in range(10)]
        wait_for(lambda: _seen(reader, later), "events applied after the restart")
    finally:
        agent.close()
    workers = _pids(pool.log()).values()
    assert pool.stop() == 0
    assert not any(_alive(pid) for pid in workers), "SIGTERM stopped every worker"
    assert "Traceback" not in pool.log()


def test_a_pool_refuses_a_fixed_client_id(mosquitto: Any, store_url: str, tmp_path: Path) -> None:
    config = tmp_path / "ticketing.toml"
    mqtt_lines = 'client_id = "kktmon-ticketing-fixed"\n'
    config.write_text(config_text(mosquitto, store_url, mqtt=mqtt_lines, lock_dir=tmp_path))
    supervisor = Worker(config, "--workers", "3", name="pool")
    assert supervisor.wait() == 2
    assert "leave client_id unset so that each worker takes its own slot" in supervisor.log()


def test_a_pool_stops_when_a_worker_cannot_run(
    mosquitto: Any, store_url: str, tmp_path: Path
) -> None:
    # A worker's status 2 (here: no lock folder for its client id) stops the pool with 2.
    config = tmp_path / "ticketing.toml"
    not_a_folder = tmp_path / "locks"
    not_a_folder.write_text("")
    config.write_text(config_text(mosquitto, store_url, lock_dir=not_a_folder))
    supervisor = Worker(config, "--workers", "2", name="pool")
    assert supervisor.wait(60) == 2
    assert "exited 2; stopping the pool (a restart would fail the same way)" in supervisor.log()
    assert "cannot lock the MQTT client id" in supervisor.log()
