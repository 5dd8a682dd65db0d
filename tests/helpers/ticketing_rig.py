"""What the ticketing service tests share: a fake agent, config files, worker processes.

:class:`Agent` publishes contract messages exactly as ``kktmon agent`` does;
:func:`config_text` writes a ticketing config with short hold-downs; :class:`Worker` runs
``kktmon ticketing`` as a real process (for SIGKILL, exit codes and its log).

For soaks: :class:`Fleet` is many agents publishing raise/clear pairs at a rate,
:func:`retained_alerts` reads what the broker retains with a plain subscription,
:func:`seen_event_ids` and :func:`live_keys` read the store's books, and
:class:`DuplicateWatch` samples the store for a problem with two live tickets.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kktmon.protocol.contract import AgentState, AgentStatus, Event, EventKind
from kktmon.protocol.health import DeviceInfo, HealthSnapshot, Owner, Problem, Severity
from kktmon.ticketing.lifecycle import TicketState
from kktmon.ticketing.store import TicketStore, open_store

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


#: ``python -c`` this, then the settle window in seconds, then ``kktmon``'s arguments: the
#: command line with :data:`kktmon.ticketing.reconcile.SETTLE_S` set first.
_SETTLE_PRELUDE = (
    "import sys\n"
    "from kktmon.ticketing import reconcile\n"
    "reconcile.SETTLE_S = float(sys.argv.pop(1))\n"
    "from kktmon.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


class Worker:
    """``kktmon -v ticketing --config F [args]`` as a process, its log in a file.

    ``settle_s`` runs it with the reconciler's settle window (``reconcile.SETTLE_S``, a
    minute) set to that many seconds, so that a test need not wait a minute for a clear.
    """

    def __init__(
        self, config: Path, *args: str, name: str = "worker", settle_s: float | None = None
    ) -> None:
        self.log_path = config.parent / f"{name}.log"
        kktmon = [sys.executable, "-m", "kktmon.cli"]
        if settle_s is not None:
            kktmon = [sys.executable, "-c", _SETTLE_PRELUDE, str(settle_s)]
        command = [*kktmon, "-v", "ticketing", "--config", str(config)]
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


# -- soaks: a fleet of agents, the broker's retained alerts, the store's books --------------


@dataclass(frozen=True)
class Published:
    """One event the fleet published and the broker acknowledged (PUBACK)."""

    id: str
    key: tuple[str, str, str]  #: site, register, problem code
    kind: str  #: "raised" or "cleared"
    at: datetime
    sent: float  #: time.monotonic() when it was published


class Fleet:
    """Many stores' agents on one connection, publishing as ``kktmon agent`` does.

    Each of ``sites`` x ``per_site`` registers has ``codes``; :meth:`step` toggles one
    (seeded) random problem: the event (a fresh ``id``, the register's next ``seq``), then
    the retained alert (set on a raise, emptied on a clear), then the register's retained
    state, all QoS 1, in the agent's order. :attr:`active` is what the broker retains:
    the problems raised and not cleared. :meth:`run` steps at ``rate`` per second until
    stopped; :meth:`drain` waits for every PUBACK.
    """

    def __init__(
        self,
        broker: Any,
        *,
        sites: int = 4,
        per_site: int = 10,
        codes: tuple[str, ...] = ("PAPER_OUT", "COVER_OPEN"),
        seed: int = 12,
    ) -> None:
        self.rng = random.Random(seed)
        self.keys = [
            (f"store-{s:02d}", f"shtrih-{s:02d}{r:06d}", code)
            for s in range(1, sites + 1)
            for r in range(1, per_site + 1)
            for code in codes
        ]
        self.active: set[tuple[str, str, str]] = set()
        self.published: list[Published] = []
        self._seq: dict[str, int] = {}
        self._last_at: dict[tuple[str, str, str], datetime] = {}
        self._pending: list[tuple[mqtt.MQTTMessageInfo, Published | None]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.max_queued_messages_set(0)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        for site in sorted({key[0] for key in self.keys}):
            status = AgentStatus(
                state=AgentState.ONLINE, session=1, version="soak", started_at=datetime.now(UTC)
            )
            topic = f"{PREFIX}/{site}/agent/status"
            self._send(topic, status.to_bytes(), retain=True)

    def _send(
        self, topic: str, payload: bytes, retain: bool = False, event: Published | None = None
    ) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._lock:
            self._pending.append((info, event))

    def step(self) -> Published:
        """Raise or clear one problem, as an agent's poll would."""
        key = self.rng.choice(self.keys)
        site, kkt, code = key
        kind = EventKind.CLEARED if key in self.active else EventKind.RAISED
        now = datetime.now(UTC)
        before = self._last_at.get(key)
        at = now if before is None or now > before else before + timedelta(microseconds=1)
        self._last_at[key] = at
        self._seq[kkt] = self._seq.get(kkt, 0) + 1
        event = Event(seq=self._seq[kkt], kind=kind, problem=problem(code, at), at=at)
        record = Published(str(event.id), key, kind.value, at, time.monotonic())
        base = f"{PREFIX}/{site}/kkt/{kkt}"
        self._send(f"{base}/event", event.to_bytes(), event=record)
        if kind is EventKind.RAISED:
            self.active.add(key)
            self._send(f"{base}/alert/{code}", event.problem.model_dump_json().encode(), True)
        else:
            self.active.discard(key)
            self._send(f"{base}/alert/{code}", b"", True)
        self._send(f"{base}/state", self._state(kkt, at), True)
        return record

    def _state(self, kkt: str, at: datetime) -> bytes:
        vendor, serial = kkt.split("-", 1)
        device = DeviceInfo(vendor=vendor, model="ШТРИХ-М-01Ф", serial=serial, rnm=f"00{serial}")
        return HealthSnapshot(taken_at=at, device=device).to_json().encode()

    def run(self, stop: threading.Event, rate: float) -> None:
        """Step ``rate`` times a second until ``stop`` is set (a thread's target)."""
        period = 1.0 / rate
        due = time.monotonic()
        while not stop.is_set():
            self.step()
            due += period
            stop.wait(max(0.0, due - time.monotonic()))

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for every PUBACK; only acknowledged events count as published."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pending, self._pending = self._pending, []
        for info, event in pending:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                pytest.fail(f"the broker did not acknowledge a publish within {timeout} s")
            if event is not None:
                self.published.append(event)

    def retained_topics(self) -> set[str]:
        """The alert topics the broker should retain: the fleet's active problems."""
        return {f"{PREFIX}/{s}/kkt/{k}/alert/{c}" for s, k, c in self.active}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained_alerts(broker: Any, timeout: float = 15.0) -> dict[str, bytes]:
    """Every retained alert on ``broker``, read with a plain subscription.

    The read ends at a marker published to a private topic subscribed after the alerts:
    Mosquitto queues a subscription's retained messages before anything published later.
    """
    found: dict[str, bytes] = {}
    marker = f"soak-marker/{uuid.uuid4().hex}"
    done = threading.Event()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)

    def received(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == marker:
            done.set()
        elif message.retain and message.payload:
            found[message.topic] = bytes(message.payload)

    client.on_message = received
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.subscribe(f"{PREFIX}/+/kkt/+/alert/+", qos=1)
        client.subscribe(marker, qos=1)
        client.publish(marker, b"end", qos=1)
        if not done.wait(timeout):
            pytest.fail("the retained read's marker never came")
    finally:
        client.disconnect()
        client.loop_stop()
    return found


def alert_topic(site: str, kkt: str, code: str) -> str:
    return f"{PREFIX}/{site}/kkt/{kkt}/alert/{code}"


def seen_event_ids(store: TicketStore) -> set[str]:
    """Every event id the store applied (its ``seen_events``)."""
    rows = store._run(lambda tx: tx.all("SELECT event_id FROM seen_events"))
    return {str(row[0]) for row in rows}


def live_keys(store: TicketStore) -> dict[tuple[str, str, str, str], int]:
    """Problem key (site, register, code, FN serial) -> how many unresolved tickets it has."""
    rows = store._run(
        lambda tx: tx.all(
            "SELECT site, kkt, problem, fn_serial, COUNT(*) FROM tickets"
            " WHERE state <> 'resolved' GROUP BY site, kkt, problem, fn_serial"
        )
    )
    return {(str(r[0]), str(r[1]), str(r[2]), str(r[3])): int(r[4]) for r in rows}


def opened_per_key(store: TicketStore) -> dict[tuple[str, str, str], int]:
    """Problem key -> how many tickets it ever had opened (sent to a help desk)."""
    rows = store._run(
        lambda tx: tx.all(
            "SELECT site, kkt, problem, COUNT(*) FROM tickets WHERE opened_at IS NOT NULL"
            " GROUP BY site, kkt, problem"
        )
    )
    return {(str(r[0]), str(r[1]), str(r[2])): int(r[3]) for r in rows}


class DuplicateWatch:
    """A thread that asks the store, every ``every_s``, for problems with two live tickets."""

    def __init__(self, store_url: str, every_s: float = 0.25) -> None:
        self.store = open_store(store_url)
        self.every_s = every_s
        self.samples = 0
        self.duplicates: list[tuple[tuple[str, str, str, str], int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="duplicate watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            counts = live_keys(self.store)
            self.samples += 1
            self.duplicates += [(key, n) for key, n in counts.items() if n > 1]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.store.close()


def lease_holder(store: TicketStore, name: str = "reconcile") -> str | None:
    """Who holds the store lease ``name`` (the reconciler's by default), expired or not."""
    row = store._run(lambda tx: tx.one("SELECT holder FROM leases WHERE name = ?", name))
    return None if row is None else str(row[0])


def log_time(line_start: str) -> datetime:
    """The instant a worker's log line (``2025-05-04 12:00:00,123 INFO ...``) was written."""
    stamp = datetime.strptime(line_start[:23], "%Y-%m-%d %H:%M:%S,%f")
    return stamp.astimezone(UTC)  # the log's times are local
