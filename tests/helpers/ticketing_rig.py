"""What the ticketing service tests share: a fake agent, config files, worker processes.

:class:`Agent` publishes contract messages exactly as ``kktmon agent`` does;
:func:`config_text` writes a ticketing config with short hold-downs; :class:`Worker` runs
``kktmon ticketing`` as a real process (for SIGKILL, exit codes and its log).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kktmon.protocol.contract import AgentState, AgentStatus, Event, EventKind
from kktmon.protocol.health import Owner, Problem, Severity
from kktmon.ticketing.lifecycle import TicketState
from kktmon.ticketing.store import TicketStore

PREFIX = "kktmon/v1"


def config_text(
    broker: Any,
    store_url: str,
    hook: str | None = None,
    mqtt: str = "",
    lock_dir: Path | None = None,
    **ticketing: str,
) -> str:
    """A ticketing config for ``broker`` and ``store_url``: hold-down and grace 0.3 s."""
    settings = {
        "open_after_s": "0.3",
        "resolve_after_s": "0.3",
        "agent_lost_after_s": "0.3",
        "tick_interval_s": "0.1",
        **ticketing,
    }
    lines = "\n".join(f"{key} = {value}" for key, value in settings.items())
    sink = f'[[sinks]]\ntype = "webhook"\nurl = "{hook}"\nsecret = "s3cret"\n' if hook else ""
    url = mqtt if mqtt.startswith("url") else f'url = "mqtt://{broker.host}:{broker.port}"\n'
    rest = "" if mqtt.startswith("url") else mqtt
    locks = f'lock_dir = "{lock_dir}"\n' if lock_dir is not None else ""
    return (
        f"[mqtt]\n{url}{rest}{locks}"
        f'[ticketing]\nstore = "{store_url}"\n{lines}\n'
        f'[ticketing.closed_hours]\ndefault = ""\n{sink}'
    )


def problem(
    code: str, at: datetime, severity: Severity = Severity.WARNING, **facts: Any
) -> Problem:
    return Problem(
        code=code,
        severity=severity,
        owner=Owner.SERVICE,
        message=f"{code} here",
        since=at,
        facts=facts,
    )


class Agent:
    """Publishes what a store's agent would."""

    def __init__(self, broker: Any, site: str = "store-1", kkt: str = "shtrih-0001") -> None:
        self.site, self.kkt, self.seq = site, kkt, 0
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def event(self, kind: str, code: str, at: datetime, **facts: Any) -> Event:
        self.seq += 1
        event = Event(seq=self.seq, kind=EventKind(kind), problem=problem(code, at, **facts), at=at)
        self.send_event(event)
        return event

    def send_event(self, event: Event) -> None:
        topic = f"{PREFIX}/{self.site}/kkt/{self.kkt}/event"
        self.client.publish(topic, event.to_bytes(), qos=1).wait_for_publish(5)

    def alert(self, raised: Problem) -> None:
        topic = f"{PREFIX}/{self.site}/kkt/{self.kkt}/alert/{raised.code}"
        payload = raised.model_dump_json().encode()
        self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)

    def clear_alert(self, code: str) -> None:
        topic = f"{PREFIX}/{self.site}/kkt/{self.kkt}/alert/{code}"
        self.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)

    def raised(self, code: str, at: datetime, **facts: Any) -> Event:
        """Raise as the agent does: the retained alert and the event."""
        event = Event(
            seq=self.seq + 1, kind=EventKind.RAISED, problem=problem(code, at, **facts), at=at
        )
        self.seq += 1
        self.alert(event.problem)
        self.send_event(event)
        return event

    def cleared(self, code: str, at: datetime, **facts: Any) -> Event:
        """Clear as the agent does: the retained alert emptied and the event."""
        event = Event(
            seq=self.seq + 1, kind=EventKind.CLEARED, problem=problem(code, at, **facts), at=at
        )
        self.seq += 1
        self.clear_alert(code)
        self.send_event(event)
        return event

    def status(self, state: str, session: int) -> None:
        status = AgentStatus(
            state=AgentState(state), session=session, version="t", started_at=datetime.now(UTC)
        )
        topic = f"{PREFIX}/{self.site}/agent/status"
        self.client.publish(topic, status.to_bytes(), qos=1, retain=True).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out: {what}")
        time.sleep(0.05)


def live(store: TicketStore, code: str | None = None) -> list[Any]:
    """Tickets not resolved, of ``code`` when given."""
    return [
        t
        for t in store.tickets()
        if t.state is not TicketState.RESOLVED and (code is None or t.problem == code)
    ]


class Worker:
    """``kktmon -v ticketing --config F [args]`` as a process, its log in a file."""

    def __init__(self, config: Path, *args: str, name: str = "worker") -> None:
        self.log_path = config.parent / f"{name}.log"
        command = [sys.executable, "-m", "kktmon.cli", "-v", "ticketing", "--config", str(config)]
        with self.log_path.open("ab") as log:
            self._offset = log.tell()
            self.process = subprocess.Popen([*command, *args], stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        """What this process logged (not earlier processes with the same log file)."""
        return self.log_path.read_bytes()[self._offset :].decode("utf-8", errors="replace")

    def wait_log(self, pattern: str, what: str, timeout: float = 20.0) -> re.Match[str]:
        """The first match of ``pattern`` in what this process logged."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.log())
            if found:
                return found
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"{what}: no {pattern!r} in the worker's log:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then the exit status (SIGKILL and a failure when it does not exit)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            pytest.fail(f"the worker ignored SIGTERM:\n{self.log()[-3000:]}")

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not exit:\n{self.log()[-3000:]}")
