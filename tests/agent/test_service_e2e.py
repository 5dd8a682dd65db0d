"""``kktmon agent`` as a process: simulator -> driver -> rules -> outbox -> Mosquitto.

Everything is real: the Shtrih-M simulator over TCP, the agent started with its console
entry point and a TOML file, a Mosquitto process from the fixture. The clock is real,
so polls run every 0.2 s and hysteresis is 2 polls.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kktmon.protocol.contract import AgentStatus, Event
from kktmon.protocol.health import HealthSnapshot
from kktmon.simulators.scenario import default_state
from kktmon.simulators.server import TcpServer
from kktmon.simulators.shtrih.emulator import ShtrihEmulator

SITE = "store-7"
ROOT = f"kktmon/v1/{SITE}"
KKT = f"{ROOT}/kkt/shtrih-0392190008017798"


def _config(tmp_path: Path, broker: Any, urls: list[str], **extra: str) -> Path:
    devices = "".join(
        f'[[devices]]\nvendor = "shtrih"\nname = "till-{n}"\nurl = "{url}"\n'
        f"control_timeout_s = 0.2\nanswer_timeout_s = 0.5\npoll_deadline_s = 3\n"
        for n, url in enumerate(urls, 1)
    )
    rules = extra.get("rules", "")
    text = (
        f'site = "{SITE}"\n[agent]\npoll_interval_s = {extra.get("interval", "0.2")}\n'
        f'poll_jitter = 0\nhealth_interval_s = 1\nstate_dir = "{tmp_path / "state"}"\n'
        f'[mqtt]\nurl = "mqtt://{broker.host}:{broker.port}"\nreconnect_min_s = 0.1\n'
        f"reconnect_max_s = 0.5\n[rules]\nraise_after = {extra.get('raise_after', '2')}\n"
        f"clear_after = {extra.get('clear_after', '2')}\n{rules}\n{devices}"
    )
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


class AgentProcess:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kktmon.cli", "agent", "--config", str(config)],
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=15)
        return code

    def alive(self) -> bool:
        return self.process.poll() is None


@pytest.fixture
def agents() -> Iterator[Callable[[Path], AgentProcess]]:
    started: list[AgentProcess] = []

    def start(config: Path) -> AgentProcess:
        agent = AgentProcess(config)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        if agent.alive():
            agent.process.kill()
            agent.process.wait()
        if agent.process.stderr:
            agent.process.stderr.close()


@pytest.fixture
def register() -> Iterator[TcpServer[ShtrihEmulator]]:
    """A till with an FN 5 days from expiry and three documents stuck for 3 days."""
    state = default_state()
    state.fn.valid_until = (state.fn.last_document_at + timedelta(days=5)).date()
    state.fn.warnings = 0x0A  # resource running out, OFD timeout
    state.ofd.unsent_count = 3
    state.ofd.first_unsent_at = state.fn.last_document_at - timedelta(days=3)
    with TcpServer(ShtrihEmulator(state)) as server:
        yield server


def _events(watcher: Any) -> list[Event]:
    return [Event.model_validate_json(s.payload) for s in watcher.on(f"{KKT}/event")]


def _raised(watcher: Any, code: str) -> Callable[[list[Any]], bool]:
    return lambda _: any(e.kind == "raised" and e.problem.code == code for e in _events(watcher))


def test_agent_publishes_state_alerts_events_and_goes_offline(
    tmp_path: Path,
    mosquitto: Any,
    watch: Callable[..., Any],
    agents: Callable[[Path], AgentProcess],
    register: TcpServer,
) -> None:
    watcher = watch(mosquitto, "kktmon/#")
    agent = agents(_config(tmp_path, mosquitto, [register.url]))
    birth = watcher.wait_topic(f"{ROOT}/agent/status", timeout=10)
    status = AgentStatus.model_validate_json(birth.payload)
    assert status.state == "online" and status.session == 1
    state = watcher.wait_topic(f"{KKT}/state", timeout=10)
    snapshot = HealthSnapshot.model_validate_json(state.payload)
    assert snapshot.fn.serial == register.device.state.fn.serial
    assert snapshot.ofd.unsent_count == 3 and snapshot.block_at is not None
    for code in ("FN_EXPIRING", "OFD_QUEUE_STALE", "OFD_TIMEOUT"):
        watcher.wait_for(_raised(watcher, code), timeout=10, what=f"{code} raised")
        alert = watcher.wait_topic(f"{KKT}/alert/{code}", lambda s: bool(s.payload))
        assert json.loads(alert.payload)["code"] == code
    seqs = [e.seq for e in _events(watcher)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    register.device.state.ofd.unsent_count = 0  # the backlog reaches the OFD
    register.device.state.fn.warnings = 0x02
    watcher.wait_for(
        lambda _: any(
            e.kind == "cleared" and e.problem.code == "OFD_QUEUE_STALE" for e in _events(watcher)
        ),
        timeout=10,
        what="OFD_QUEUE_STALE cleared",
    )
    watcher.wait_topic(f"{KKT}/alert/OFD_QUEUE_STALE", lambda s: s.payload == b"")
    health = watcher.wait_topic(
        f"{ROOT}/agent/health", lambda s: json.loads(s.payload)["polls"] >= 1
    )
    assert json.loads(health.payload)["rss_bytes"] > 0

    assert agent.stop() == 0
    offline = watcher.wait_topic(
        f"{ROOT}/agent/status", lambda s: json.loads(s.payload)["state"] == "offline"
    )
    assert json.loads(offline.payload)["session"] == 1


def test_killed_agent_leaves_lost_and_loses_no_event_across_a_broker_outage(
    tmp_path: Path,
    mosquitto: Any,
    watch: Callable[..., Any],
    agents: Callable[[Path], AgentProcess],
    register: TcpServer,
) -> None:
    config = _config(tmp_path, mosquitto, [register.url])
    watcher = watch(mosquitto, "kktmon/#", persistent=True)
    first = agents(config)
    watcher.wait_for(_raised(watcher, "OFD_QUEUE_STALE"), timeout=10, what="raised")
    first.stop(signal.SIGKILL)
    watcher.wait_topic(
        f"{ROOT}/agent/status", lambda s: json.loads(s.payload)["state"] == "lost", timeout=15
    )

    mosquitto.stop()  # the store's internet goes down...
    register.device.state.ofd.unsent_count = 0  # ...while the backlog clears (events queue up)
    register.device.state.fn.warnings = 0x02
    second = agents(config)
    state_db = tmp_path / "state" / "outbox.sqlite3"
    _wait(lambda: _queued_clears(state_db) >= 2, 15, "clears spooled while offline")
    second.stop(signal.SIGKILL)  # and the agent dies before it could send them
    mosquitto.start()
    third = agents(config)
    cleared = watcher.wait_for(
        lambda _: (
            {"OFD_QUEUE_STALE", "OFD_TIMEOUT"}
            <= {e.problem.code for e in _events(watcher) if e.kind == "cleared"}
        ),
        timeout=20,
        what="queued clears delivered",
    )
    assert cleared
    events = _events(watcher)
    assert all(e.replayed for e in events if e.kind == "cleared"), "queued before delivery"
    # At least once: an event whose PUBACK the kill swallowed comes again (same id);
    # consumers deduplicate by id, and then the order must be the order of the rules.
    unique: dict[object, Event] = {}
    for event in events:
        assert unique.setdefault(event.id, event).problem == event.problem
    seqs = [e.seq for e in unique.values()]
    assert seqs == sorted(seqs) == list(range(1, len(seqs) + 1)), "no gap, no reordering"
    online = watcher.wait_topic(
        f"{ROOT}/agent/status", lambda s: json.loads(s.payload)["session"] == 3
    )
    assert json.loads(online.payload)["state"] == "online"
    states = [HealthSnapshot.model_validate_json(s.payload) for s in watcher.on(f"{KKT}/state")]
    retained = [s.taken_at for s in states]
    assert retained[-1] == max(retained), "the retained state never goes back in time"
    assert third.stop() == 0


def test_commands_and_a_silent_register_that_does_not_stall_the_other(
    tmp_path: Path,
    mosquitto: Any,
    watch: Callable[..., Any],
    agents: Callable[[Path], AgentProcess],
    register: TcpServer,
) -> None:
    with TcpServer(ShtrihEmulator(default_state())) as silent:
        silent.device.state.faults.silent = True
        config = _config(tmp_path, mosquitto, [register.url, silent.url])
        watcher = watch(mosquitto, "kktmon/#")
        agent = agents(config)
        watcher.wait_topic(f"{KKT}/state", timeout=10)
        _wait(lambda: len(watcher.on(f"{KKT}/state")) >= 4, 15, "the healthy till keeps going")
        _publish(mosquitto, f"{ROOT}/cmd/identify", {"transaction": "t-1"})
        answer = watcher.wait_topic(f"{ROOT}/cmd/identify/response", timeout=10).json()
        assert answer["ok"] and answer["transaction"] == "t-1"
        assert answer["result"]["till-1"]["serial"] == "0392190008017798"
        assert "error" in answer["result"]["till-2"]
        _publish(mosquitto, f"{ROOT}/cmd/close_shift", {"transaction": "t-2"})
        refused = watcher.wait_topic(f"{ROOT}/cmd/close_shift/response").json()
        assert refused["ok"] is False and "close_shift" in refused["detail"]
        assert agent.stop() == 0


def test_sighup_with_a_broken_config_keeps_running(
    tmp_path: Path,
    mosquitto: Any,
    watch: Callable[..., Any],
    agents: Callable[[Path], AgentProcess],
    register: TcpServer,
) -> None:
    config = _config(tmp_path, mosquitto, [register.url])
    watcher = watch(mosquitto, "kktmon/#")
    agent = agents(config)
    watcher.wait_topic(f"{KKT}/state", timeout=10)
    config.write_text(config.read_text() + "\nbogus_key = 1\n")
    agent.process.send_signal(signal.SIGHUP)
    count = len(watcher.on(f"{KKT}/state"))
    _wait(lambda: len(watcher.on(f"{KKT}/state")) > count + 2, 10, "polls go on after SIGHUP")
    assert agent.alive()
    assert agent.stop() == 0
    assert agent.process.stderr is not None
    assert "reload refused" in agent.process.stderr.read()


def test_agents_killed_mid_run_never_give_one_seq_two_ids(
    tmp_path: Path,
    mosquitto: Any,
    watch: Callable[..., Any],
    agents: Callable[[Path], AgentProcess],
    register: TcpServer,
) -> None:
    """SIGKILL lands the moment a poll's event is on disk, over and over (issue 12)."""
    config = _config(
        tmp_path, mosquitto, [register.url], interval="0.05", raise_after="1", clear_after="1"
    )
    watcher = watch(mosquitto, f"{KKT}/event", persistent=True)
    paper = register.device.state.printer
    flipping = threading.Event()

    def flip() -> None:  # the paper runs out and is refilled: a transition every few polls
        while not flipping.wait(0.08):
            paper.paper = "ok" if paper.paper == "out" else "out"

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    state_db = tmp_path / "state" / "outbox.sqlite3"
    try:
        first = agents(config)
        watcher.wait_for(lambda _: len(_events(watcher)) >= 2, timeout=10, what="events")
        first.stop(signal.SIGKILL)
        mosquitto.stop()  # events stay in the outbox, so the test sees each one land
        for _ in range(8):
            agent = agents(config)
            queued = _queued_events(state_db)
            _wait(partial(_more_events_than, state_db, queued), 15, "a new event on disk", 0)
            agent.stop(signal.SIGKILL)
    finally:
        flipping.set()
        flipper.join()
    mosquitto.start()
    last = agents(config)
    _wait(lambda: _queued_events(state_db) == 0, 20, "the backlog delivered")
    assert last.stop() == 0
    time.sleep(0.3)  # PUBACKed by the broker; let the watcher's copies arrive

    events = _events(watcher)
    unique: dict[object, Event] = {}
    ids_by_seq: dict[int, set[object]] = {}
    for event in events:
        original = unique.setdefault(event.id, event)  # a replay differs only in ``replayed``
        assert (original.seq, original.kind, original.problem) == (
            event.seq,
            event.kind,
            event.problem,
        )
        ids_by_seq.setdefault(event.seq, set()).add(event.id)
    assert {seq: ids for seq, ids in ids_by_seq.items() if len(ids) > 1} == {}
    seqs = [e.seq for e in unique.values()]
    assert len(seqs) > 10
    assert seqs == list(range(1, len(seqs) + 1)), "strictly increasing, no gap"


def _more_events_than(state_db: Path, before: int) -> bool:
    return _queued_events(state_db) > before


def _queued_events(path: Path) -> int:
    """Events in the outbox, read while the agent writes (0 before the file exists, -1
    while it cannot be read)."""
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(path, timeout=5)) as db:
            query = "SELECT count(*) FROM entries WHERE kind = 'event'"
            return int(db.execute(query).fetchone()[0])
    except sqlite3.Error:
        return -1


def _queued_clears(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        try:
            query = (
                "SELECT count(*) FROM entries"
                " WHERE kind = 'event' AND CAST(payload AS TEXT) LIKE '%cleared%'"
            )
            return int(db.execute(query).fetchone()[0])
        except sqlite3.Error:
            return 0


def _publish(broker: Any, topic: str, payload: dict[str, str]) -> None:
    from paho.mqtt import publish

    publish.single(topic, json.dumps(payload), qos=1, hostname=broker.host, port=broker.port)


def _wait(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out: {what}")
        time.sleep(every)
