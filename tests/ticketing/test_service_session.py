"""A worker's MQTT session (issue 12): stable ids, no ghosts, no fights, retiring.

Real Mosquitto, real ``kktmon ticketing`` processes, both stores. The broker hands a
shared subscription's messages round-robin to every session in the group, connected or
not: a worker that came back under a new id left its old session in the group, and the
next event went there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from ticketing_rig import Agent, Worker, config_text, live, wait_for

from kktmon.ticketing.store import TicketStore, open_store

FN = {"fn_serial": "9999078900012345"}


@pytest.fixture
def agent(mosquitto: Any) -> Iterator[Agent]:
    publisher = Agent(mosquitto)
    yield publisher
    publisher.close()


@pytest.fixture
def reader(store_url: str) -> Iterator[TicketStore]:
    store = open_store(store_url)
    yield store
    store.close()


@pytest.fixture
def config_file(mosquitto: Any, store_url: str, tmp_path: Path) -> Path:
    """A ticketing config for the broker and the store, locks in ``tmp_path/locks``."""
    path = tmp_path / "ticketing.toml"
    path.write_text(config_text(mosquitto, store_url, lock_dir=tmp_path / "locks"))
    return path


@pytest.fixture
def workers() -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(config: Path, *args: str, name: str = "worker") -> Worker:
        worker = Worker(config, *args, name=name)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.kill()


def _seen(store: TicketStore, event_id: str) -> bool:
    row = store._run(  # the test looks where the store records events it applied
        lambda tx: tx.one("SELECT event_id FROM seen_events WHERE event_id = ?", event_id)
    )
    return row is not None


def _session_present(broker: Any, client_id: str) -> bool:
    """Connect as ``client_id`` resuming its session; whether the broker still had one."""
    present: list[bool] = []
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_connect = lambda _c, _u, flags, _r, _p: present.append(flags.session_present)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0  # this look ends the session it finds
    client.connect(broker.host, broker.port, clean_start=False, properties=props)
    client.loop_start()
    try:
        wait_for(lambda: bool(present), "CONNACK")
    finally:
        client.disconnect()
        client.loop_stop()
    return present[0]


def test_restarted_worker_gets_the_next_event_after_a_sigkill(
    config_file: Path, agent: Agent, reader: TicketStore, workers: Callable[..., Worker]
) -> None:
    worker = workers(config_file)
    worker.wait_log(r"reconciled", "start-up reconcile")
    now = datetime.now(UTC)
    agent.raised("FN_EXPIRING", now, **FN)
    wait_for(lambda: bool(live(reader, "FN_EXPIRING")), "FN_EXPIRING opened")
    agent.cleared("FN_EXPIRING", now + timedelta(seconds=1), **FN)
    wait_for(lambda: not live(reader, "FN_EXPIRING"), "FN_EXPIRING resolved")

    worker.kill()
    worker = workers(config_file)  # the same config: what systemd restarts
    worker.wait_log(r"reconciled", "start-up reconcile after the restart")
    time.sleep(1.0)
    again = agent.raised("FN_EXPIRING", datetime.now(UTC), **FN)
    wait_for(lambda: _seen(reader, str(again.id)), "the new raise event reached a live worker")
    wait_for(lambda: bool(live(reader, "FN_EXPIRING")), "FN_EXPIRING open again")
    assert worker.stop() == 0


def test_two_workers_with_one_config_on_one_host_get_their_own_ids(
    config_file: Path, agent: Agent, reader: TicketStore, workers: Callable[..., Worker]
) -> None:
    first = workers(config_file, name="first")
    first_id = first.wait_log(r"MQTT \S+ as (\S+): connected", "first connected").group(1)
    second = workers(config_file, name="second")
    second_id = second.wait_log(r"MQTT \S+ as (\S+): connected", "second connected").group(1)
    assert first_id.startswith("kktmon-ticketing-") and first_id.endswith("-1")
    assert second_id == first_id.removesuffix("-1") + "-2"
    first.wait_log(r"reconciled", "first reconciled")
    second.wait_log(r"reconciled", "second reconciled")
    now = datetime.now(UTC)
    codes = [f"PRINTER_FAULT_{n}" for n in range(10)]
    events = [agent.event("raised", code, now) for code in codes]
    wait_for(lambda: all(_seen(reader, str(e.id)) for e in events), "every event applied")
    assert "taken over" not in first.log() + second.log()
    assert first.stop() == 0 and second.stop() == 0


def test_a_second_process_with_a_held_client_id_is_refused_naming_the_holder(
    mosquitto: Any, store_url: str, tmp_path: Path, workers: Callable[..., Worker]
) -> None:
    config = tmp_path / "ticketing.toml"
    mqtt_lines = 'client_id = "kktmon-ticketing-dup"\n'
    config.write_text(config_text(mosquitto, store_url, mqtt=mqtt_lines, lock_dir=tmp_path))
    first = workers(config, name="first")
    first.wait_log(r"connected", "first connected")
    second = workers(config, name="second")
    assert second.wait() == 2
    assert f"'kktmon-ticketing-dup' is in use on this host by pid {first.pid}" in second.log()
    assert "Traceback" not in second.log()
    assert first.process.poll() is None, "the first worker keeps its session"
    assert first.stop() == 0


def test_a_session_taken_over_from_another_host_ends_the_worker_instead_of_a_fight(
    mosquitto: Any, store_url: str, tmp_path: Path, workers: Callable[..., Worker]
) -> None:
    mqtt_lines = 'client_id = "kktmon-ticketing-twin"\n'
    configs = []
    for host in ("host-a", "host-b"):  # one id, two lock folders: as on two hosts
        folder = tmp_path / host
        folder.mkdir()
        configs.append(folder / "ticketing.toml")
        configs[-1].write_text(
            config_text(mosquitto, store_url, mqtt=mqtt_lines, lock_dir=folder / "locks")
        )
    first = workers(configs[0], name="a")
    first.wait_log(r"connected", "the first worker connected")
    second = workers(configs[1], name="b")
    second.wait_log(r"connected", "the second worker connected")
    assert first.wait() == 3, "taken over: a non-zero exit, no reconnect"
    first.wait_log(r"ERROR .*kktmon-ticketing-twin.*took this session over", "the ERROR")
    time.sleep(2.0)  # nobody takes it back
    assert second.process.poll() is None
    assert "taken over" not in second.log()
    assert second.stop() == 0


def test_sigterm_keeps_the_session_and_retire_ends_it_after_applying_its_queue(
    mosquitto: Any,
    config_file: Path,
    agent: Agent,
    reader: TicketStore,
    workers: Callable[..., Worker],
) -> None:
    worker = workers(config_file)
    client_id = worker.wait_log(r"MQTT \S+ as (\S+): connected", "connected").group(1)
    worker.wait_log(r"reconciled", "start-up reconcile")
    assert worker.stop() == 0
    queued = agent.event("raised", "PAPER_OUT", datetime.now(UTC))  # for the stopped worker

    retire = workers(config_file, "--retire", name="retire")
    assert retire.wait(60) == 0
    assert f"retired {client_id}" in retire.log()
    assert _seen(reader, str(queued.id)), "what was queued for it was applied first"
    agent.event("raised", "COVER_OPEN", datetime.now(UTC))  # nobody may queue this for it
    assert not _session_present(mosquitto, client_id)


def test_a_stopped_worker_keeps_its_session(
    mosquitto: Any, config_file: Path, workers: Callable[..., Worker]
) -> None:
    worker = workers(config_file)
    client_id = worker.wait_log(r"MQTT \S+ as (\S+): connected", "connected").group(1)
    assert worker.stop() == 0
    assert _session_present(mosquitto, client_id), "SIGTERM keeps the session to resume"


def test_retire_with_a_client_id_ends_another_slots_session(
    mosquitto: Any, config_file: Path, workers: Callable[..., Worker]
) -> None:
    first, second = workers(config_file, name="first"), workers(config_file, name="second")
    first.wait_log(r"connected", "first connected")
    second_id = second.wait_log(r"MQTT \S+ as (\S+): connected", "connected").group(1)
    refused = workers(config_file, "--retire", "--client-id", second_id, name="refused")
    assert refused.wait() == 2, "a live worker's session is not retired under it"
    assert f"in use on this host by pid {second.pid}" in refused.log()
    assert second.stop() == 0
    retire = workers(config_file, "--retire", "--client-id", second_id, name="retire")
    assert retire.wait(60) == 0
    assert not _session_present(mosquitto, second_id)
    assert first.stop() == 0
