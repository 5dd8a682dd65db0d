"""The agent's durable state: one poll, one transaction (issue 12), and the upgrade path.

A poll's events, state, alerts, the device's new ``seq`` and the rule engine's counters
are committed together in the outbox database, so no crash can leave an event on disk
whose ``seq`` and rule state are not: a restart cannot emit the transition again with a
new id and the same ``seq``. The service is driven through ``poll_once`` with snapshots
handed over ready (no wire, no broker: the publisher is never started).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kktmon.agent import service as service_module
from kktmon.agent.config import AgentConfig, load_config
from kktmon.agent.outbox import EntryKind
from kktmon.agent.rules import RuleEngine
from kktmon.agent.service import AgentService
from kktmon.drivers.base import local_now
from kktmon.protocol.contract import Event
from kktmon.protocol.health import HealthSnapshot

KKT = "shtrih-0012345678"

CONFIG = """
site = "store-1"
[agent]
state_dir = "{state}"
[mqtt]
url = "mqtt://127.0.0.1:9"
[rules]
raise_after = 1
clear_after = 1
[[devices]]
vendor = "shtrih"
name = "till-1"
url = "socket://127.0.0.1:9"
"""


def snapshot(paper: str) -> HealthSnapshot:
    """A healthy register read just now, but for its paper (``out`` raises PAPER_OUT)."""
    return HealthSnapshot.model_validate(
        {
            "schema": 1,
            "taken_at": local_now().isoformat(),
            "device": {"vendor": "shtrih", "serial": "0012345678", "rnm": "0000000001012345"},
            "fn": {"serial": "9961440300112233", "phase": {"name": "fiscal", "raw": 3}},
            "shift": {"state": "closed", "number": 41},
            "printer": {"paper": paper, "cover_open": False, "fault": False},
            "link": {"state": "ok"},
        }
    )


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(CONFIG.format(state=tmp_path / "state"), encoding="utf-8")
    return path


@pytest.fixture
def config(config_path: Path) -> AgentConfig:
    return load_config(config_path, env={})


class Services:
    """Starts services on one state_dir; each is dropped like a killed process (no shutdown)."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.started: list[AgentService] = []

    def start(self) -> AgentService:
        service = AgentService(self.config)
        self.started.append(service)
        return service

    def poll(self, service: AgentService, *papers: str) -> None:
        for paper in papers:
            service.poll_once(self.config.devices[0], partial(snapshot, paper))


@pytest.fixture
def services(config: AgentConfig) -> Iterator[Services]:
    made = Services(config)
    yield made
    for service in made.started:
        service.outbox.close()


def events(service: AgentService) -> list[Event]:
    rows = service.outbox.pending(10_000)
    return [Event.model_validate_json(e.payload) for e in rows if e.kind is EntryKind.EVENT]


def described(found: list[Event]) -> list[tuple[int, str, str]]:
    return [(e.seq, e.kind, e.problem.code) for e in found]


def assert_one_id_per_seq(found: list[Event]) -> None:
    ids_by_seq: dict[int, set[object]] = {}
    for event in found:
        ids_by_seq.setdefault(event.seq, set()).add(event.id)
    assert {seq: ids for seq, ids in ids_by_seq.items() if len(ids) > 1} == {}
    assert len({e.id for e in found}) == len(found)


class CommitCounter:
    """Stands in for the outbox's SQLite connection and counts the COMMITs it passes on."""

    def __init__(self, db: Any) -> None:
        self.db, self.commits = db, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    def execute(self, sql: str, *args: Any) -> Any:
        cursor = self.db.execute(sql, *args)
        self.commits += sql == "COMMIT"
        return cursor


# A poll loop in its own process, SIGKILLed by its own hand right after the first COMMIT
# that made an event durable: the window of issue 12, placed exactly, with no hook in the
# agent's code.
DIES_AFTER_THE_EVENT_COMMIT = """
import os, signal, sys
from pathlib import Path
from kktmon.agent.config import load_config
from kktmon.agent.service import AgentService
from kktmon.drivers.base import local_now
from kktmon.protocol.health import HealthSnapshot

class DiesAfterEventCommit:
    def __init__(self, db):
        self.db = db
    def __getattr__(self, name):
        return getattr(self.db, name)
    def execute(self, sql, *args):
        cursor = self.db.execute(sql, *args)
        if sql == "COMMIT":
            query = "SELECT count(*) FROM entries WHERE kind = 'event'"
            if self.db.execute(query).fetchone()[0]:
                os.kill(os.getpid(), signal.SIGKILL)
        return cursor

config = load_config(sys.argv[1], env={})
service = AgentService(config)
service.outbox._db = DiesAfterEventCommit(service.outbox._db)
for path in sys.argv[2:]:
    snap = HealthSnapshot.model_validate_json(Path(path).read_text())
    service.poll_once(config.devices[0], lambda: snap.model_copy(update={"taken_at": local_now()}))
print("survived", flush=True)
"""


def test_sigkill_right_after_the_event_commit_never_emits_the_transition_twice(
    tmp_path: Path, config_path: Path, services: Services
) -> None:
    polls = []
    for n, paper in enumerate(["ok", "out"]):
        polls.append(tmp_path / f"poll-{n}.json")
        polls[-1].write_text(snapshot(paper).to_json(), encoding="utf-8")
    child = subprocess.run(
        [sys.executable, "-c", DIES_AFTER_THE_EVENT_COMMIT, str(config_path), *map(str, polls)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "survived" not in child.stdout

    restarted = services.start()
    [raised] = events(restarted)  # what the killed process committed
    assert (raised.seq, raised.kind, raised.problem.code) == (1, "raised", "PAPER_OUT")
    services.poll(restarted, "out", "out", "ok")  # the register still has no paper, then has
    found = events(restarted)
    assert described(found) == [(1, "raised", "PAPER_OUT"), (2, "cleared", "PAPER_OUT")]
    assert found[0].id == raised.id
    assert_one_id_per_seq(found)


def test_a_poll_is_one_transaction_and_writes_nothing_after_it(
    services: Services, config: AgentConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = services.start()
    written: list[Path] = []
    monkeypatch.setattr(service_module, "_write_atomic", lambda path, text: written.append(path))
    counter = CommitCounter(service.outbox._db)
    monkeypatch.setattr(service.outbox, "_db", counter)
    for paper, transitions in [("ok", 0), ("out", 1), ("out", 0), ("ok", 1)]:
        before, seen = counter.commits, len(events(service))
        services.poll(service, paper)
        assert len(events(service)) - seen == transitions
        assert counter.commits - before == 1, f"poll with paper {paper}: one transaction"
    assert written == [], "the seq and the rule state live in the outbox's transaction"
    state_dir = config.agent.state_dir
    assert not (state_dir / "seq.json").exists() and not (state_dir / "rules.json").exists()


def test_seq_and_rule_state_come_back_from_the_database_after_a_restart(
    services: Services,
) -> None:
    first = services.start()
    services.poll(first, "out")
    second = services.start()  # the first one is never shut down: as after SIGKILL
    services.poll(second, "out", "ok", "out")
    found = events(second)
    assert described(found) == [
        (1, "raised", "PAPER_OUT"),
        (2, "cleared", "PAPER_OUT"),
        (3, "raised", "PAPER_OUT"),
    ]
    assert second.seq == {KKT: 3}
    assert [p.code for p in second.engine.active("till-1")] == ["PAPER_OUT"]


def _old_state_dir(config: AgentConfig, seq: int) -> None:
    """What an agent before issue 12 left: PAPER_OUT raised on till-1, ``seq`` events sent."""
    engine = RuleEngine(config.rules)
    engine.observe("till-1", snapshot("out"), local_now())
    assert [p.code for p in engine.active("till-1")] == ["PAPER_OUT"]
    state_dir = config.agent.state_dir
    state_dir.mkdir(parents=True)
    (state_dir / "rules.json").write_text(engine.to_json(), encoding="utf-8")
    (state_dir / "seq.json").write_text(f'{{"{KKT}": {seq}}}', encoding="utf-8")


def test_an_upgraded_state_dir_is_imported_once_and_seq_never_goes_back(
    services: Services, config: AgentConfig
) -> None:
    _old_state_dir(config, seq=41)
    state_dir = config.agent.state_dir
    service = services.start()
    assert not (state_dir / "seq.json").exists() and not (state_dir / "rules.json").exists()
    assert (state_dir / "seq.json.imported").exists()
    assert (state_dir / "rules.json.imported").exists()
    services.poll(service, "out", "ok")  # still raised from before the upgrade: only a clear
    assert described(events(service)) == [(42, "cleared", "PAPER_OUT")]

    again = services.start()  # a second start reads the database, not the renamed files
    services.poll(again, "out")
    assert described(events(again)) == [(42, "cleared", "PAPER_OUT"), (43, "raised", "PAPER_OUT")]


def test_an_import_interrupted_before_the_rename_cannot_rewind_anything(
    services: Services, config: AgentConfig
) -> None:
    _old_state_dir(config, seq=41)
    state_dir = config.agent.state_dir
    first = services.start()
    services.poll(first, "ok", "out")  # cleared (42), raised (43) after the import
    # Killed between the import's commit and the rename: the old files are back in place.
    for name in ("seq.json", "rules.json"):
        shutil.copy(state_dir / f"{name}.imported", state_dir / name)
    again = services.start()
    assert again.seq == {KKT: 43}
    services.poll(again, "ok")
    assert described(events(again))[-1] == (44, "cleared", "PAPER_OUT")
    assert not (state_dir / "seq.json").exists()


def test_unreadable_old_files_start_fresh_and_are_set_aside(
    services: Services, config: AgentConfig
) -> None:
    state_dir = config.agent.state_dir
    state_dir.mkdir(parents=True)
    (state_dir / "rules.json").write_text("{not json", encoding="utf-8")
    (state_dir / "seq.json").write_text("[1, 2]", encoding="utf-8")
    service = services.start()
    services.poll(service, "out")
    assert described(events(service)) == [(1, "raised", "PAPER_OUT")]
    assert sorted(p.name for p in state_dir.glob("*.json*")) == [
        "rules.json.unreadable",
        "seq.json.unreadable",
    ]
