"""``kktmon agent``: the long-running service on the store PC.

One thread per register polls on its own schedule (interval with jitter), so a slow or
silent register never delays the others; a poll never raises (the driver's contract),
so no register can stop the process. Every poll goes: driver -> rule engine ->
outbox -> MQTT publisher, which drains the outbox in order and deletes a row only on
PUBACK (DESIGN.md section 5). A poll's outcome (state, events, alert changes, the
device's event ``seq`` and the rule engine's counters) is one outbox transaction: a
kill at any moment leaves the poll wholly done or wholly undone, so no transition is
emitted twice with the same ``seq`` and two ids. The ``seq.json`` and ``rules.json`` an
older agent kept in ``state_dir`` are imported once on start and renamed ``.imported``.

Signals: SIGTERM/SIGINT publish ``offline`` and exit 0; SIGHUP re-reads the config and
keeps the running one when the new file is invalid. systemd: READY=1 after start-up,
WATCHDOG=1 from the poll loop, STATUS= lines (see :mod:`kktmon.agent.systemd`).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import JsonValue, TypeAdapter

from kktmon.agent import systemd
from kktmon.agent.config import AgentConfig, DeviceConfig, load_config
from kktmon.agent.figures import AgentFigures
from kktmon.agent.mqtt import MqttPublisher
from kktmon.agent.outbox import Message, Outbox
from kktmon.agent.rules import RuleEngine, Transition, TransitionKind
from kktmon.drivers.base import Driver, local_now
from kktmon.drivers.registry import driver_class
from kktmon.protocol.contract import CommandRequest, CommandResponse, Event, refusal
from kktmon.protocol.errors import KktmonError
from kktmon.protocol.health import DeviceInfo, HealthSnapshot
from kktmon.protocol.topics import Topics

log = logging.getLogger(__name__)

_OLD_SEQ = TypeAdapter(dict[str, int])  # seq.json of agents before the seq table


class DevicePoller(threading.Thread):
    """Polls one register until told to stop."""

    def __init__(self, service: AgentService, device: DeviceConfig, driver: Driver[Any]) -> None:
        super().__init__(name=f"poll {device.label}", daemon=True)
        self.service, self.device, self.driver = service, device, driver
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()
        # One conversation with the register at a time: a command's identify must not
        # open the port while this thread polls it.
        self.port_lock = threading.Lock()
        self.last_beat = time.monotonic()

    def matches(self, device: str | None, kkt_by_label: dict[str, str]) -> bool:
        """Whether a command's ``device`` (name, label or ``vendor-serial``) means us."""
        label = self.device.label
        return device is None or device in (label, self.device.name, kkt_by_label.get(label))

    def is_progressing(self) -> bool:
        """False when one cycle (poll deadline + interval) has taken far too long."""
        options = self.driver.options
        interval = self.device.poll_interval_s or self.service.config.agent.poll_interval_s
        allowed = 2 * (options.poll_deadline_s + interval * 1.5) + 30
        return time.monotonic() - self.last_beat < allowed

    def identify(self) -> DeviceInfo:
        with self.port_lock:
            return self.driver.identify()

    def poll(self) -> HealthSnapshot:
        with self.port_lock:
            snapshot = self.driver.read_health()
        # Fields read as null (one odd field never loses a poll) are counted, not hidden.
        self.service.figures.record_invalid_fields(self.device.label, self.driver.invalid_fields)
        return snapshot

    def run(self) -> None:
        interval = self.device.poll_interval_s or self.service.config.agent.poll_interval_s
        jitter = self.service.config.agent.poll_jitter
        # Spread the first polls so eight registers on one PC do not all start at once.
        self.stop_event.wait(random.uniform(0, interval * jitter))
        while not self.stop_event.is_set():
            self.last_beat = time.monotonic()
            self.service.poll_once(self.device, self.poll)
            delay = interval * (1 + random.uniform(-jitter, jitter))
            self.wake_event.wait(delay)
            self.wake_event.clear()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake_event.set()


class AgentService:
    """Wires drivers, rules, outbox and MQTT together; owns their lifetimes."""

    def __init__(self, config: AgentConfig, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.started_at = local_now()
        self.stop_event = threading.Event()
        self.reload_requested = threading.Event()
        self._wake = threading.Event()  # signals wake the main loop at once
        self._lock = threading.Lock()  # rule engine, seq counters, latest snapshots
        config.agent.state_dir.mkdir(parents=True, exist_ok=True)
        self.session = _next_session(config.agent.state_dir / "session")
        self.outbox = Outbox(config.outbox_path, config.outbox.limits())
        _import_old_state(config, self.outbox)
        self.engine = _load_engine(config, self.outbox)
        self.seq: dict[str, int] = self.outbox.load_seq()  # kkt id -> last committed
        self.latest: dict[str, HealthSnapshot] = {}  # kkt id -> newest snapshot
        self.kkt_by_label: dict[str, str] = {}
        self.figures = AgentFigures()
        self.topics = Topics(config.mqtt.topic_prefix, config.site)
        self.pollers: list[DevicePoller] = []
        self.publisher = self._publisher()

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> int:
        """Serve until SIGTERM; returns the process exit status."""
        self._install_signals()
        self.publisher.start()
        self._start_pollers()
        systemd.notify(f"READY=1\nSTATUS=polling {len(self.pollers)} register(s)")
        next_health = 0.0
        while True:
            self._wake.wait(min(self.config.agent.health_interval_s, _watchdog_period()))
            self._wake.clear()
            if self.stop_event.is_set():
                break
            if all(poller.is_progressing() for poller in self.pollers):
                # Only a service whose poll threads all make progress pets the watchdog:
                # a thread stuck in a driver gets the process restarted by systemd.
                systemd.notify("WATCHDOG=1")
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            if time.monotonic() >= next_health:
                self._put_health()
                next_health = time.monotonic() + self.config.agent.health_interval_s
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        systemd.notify("STOPPING=1")
        self._stop_pollers()
        self.publisher.stop(clean=True)
        self.outbox.close()

    def reload(self) -> None:
        """SIGHUP: apply a new config, or keep the old one when the new is invalid."""
        if self.config_path is None:
            return
        try:
            new = load_config(self.config_path)
        except KktmonError as exc:
            log.error("config reload refused, keeping the running config: %s", exc)
            systemd.notify(f"STATUS=config reload refused: {exc}")
            return
        if (new.site, new.mqtt, new.agent.state_dir) != (
            self.config.site,
            self.config.mqtt,
            self.config.agent.state_dir,
        ):
            log.warning("site, mqtt or state_dir changed: restart the service to apply them")
        self._stop_pollers()
        self.config = new.model_copy(
            update={"site": self.config.site, "mqtt": self.config.mqtt, "agent": new.agent}
        )
        self.engine.rules = new.rules
        self._start_pollers()
        log.info("config reloaded: %d register(s)", len(self.pollers))

    # ------------------------------------------------------------------ one poll

    def poll_once(
        self, device: DeviceConfig, read_health: Callable[[], HealthSnapshot]
    ) -> HealthSnapshot:
        snapshot = read_health()
        now = local_now()
        with self._lock:
            evaluation = self.engine.observe(device.label, snapshot, now)
            snapshot = evaluation.snapshot
            kkt = snapshot.kkt_id
            messages: list[Message] = []
            seq: dict[str, int] = {}
            if snapshot.device.serial:  # a register never seen answering has no topic yet
                self.latest[kkt] = snapshot
                self.kkt_by_label[device.label] = kkt
                messages, seq = self._poll_messages(kkt, snapshot, evaluation.transitions)
            # The only write of a poll: nothing is on disk before it, nothing after it.
            self.outbox.commit_poll(messages, seq=seq, rules_state=self.engine.to_json())
            self.seq.update(seq)
        self.figures.record_poll(device.label, snapshot.link.duration_ms, snapshot.stale)
        self.publisher.wake()
        return snapshot

    def _poll_messages(
        self, kkt: str, snapshot: HealthSnapshot, transitions: list[Transition]
    ) -> tuple[list[Message], dict[str, int]]:
        """What one poll queues (each event, then its alert; the state last), and the
        device's ``seq`` after those events (empty when there are none)."""
        messages: list[Message] = []
        seq = self.seq.get(kkt, 0)
        for transition in transitions:
            seq += 1
            event = Event(
                id=uuid.uuid4(),
                seq=seq,
                kind=transition.kind.value,
                problem=transition.problem,
                at=transition.at,
                replayed=False,
            )
            messages.append(Message.event(self.topics.event(kkt), event.model_dump_json().encode()))
            alert = self.topics.alert(kkt, transition.problem.code)
            cleared = transition.kind is TransitionKind.CLEARED
            payload = b"" if cleared else transition.problem.model_dump_json().encode()
            messages.append(Message.retained(alert, payload))
        state = snapshot.to_json().encode()
        messages.append(Message.state(self.topics.state(kkt), state, snapshot.taken_at))
        return messages, ({kkt: seq} if transitions else {})

    def _republish(self) -> None:
        """On every (re)connect: the newest state and every active alert, retained."""
        with self._lock:
            for kkt, snapshot in self.latest.items():
                payload = snapshot.to_json().encode()
                self.outbox.put_state(self.topics.state(kkt), payload, snapshot.taken_at)
            for label, kkt in self.kkt_by_label.items():
                for problem in self.engine.active(label):
                    alert = self.topics.alert(kkt, problem.code)
                    self.outbox.put_retained(alert, problem.model_dump_json().encode())
        self._put_health()

    # ------------------------------------------------------------------ commands

    def handle_command(self, name: str, request: CommandRequest) -> CommandResponse:
        """``poll`` and ``identify``: read-only; ``device`` narrows them to one register."""
        targets = [p for p in self.pollers if p.matches(request.device, self.kkt_by_label)]
        if request.device and not targets:
            return refusal(request.transaction, f"no register {request.device!r} here")
        if name == "poll":
            for poller in targets:
                poller.wake_event.set()
            detail = f"polling {len(targets)} register(s) now"
            return CommandResponse(transaction=request.transaction, ok=True, detail=detail)
        if name == "identify":
            found: dict[str, JsonValue] = {}
            for poller in targets:
                try:
                    found[poller.device.label] = poller.identify().model_dump(mode="json")
                except KktmonError as exc:
                    found[poller.device.label] = {"error": str(exc)}
            detail = f"identified {len(found)} register(s)"
            return CommandResponse(
                transaction=request.transaction, ok=True, detail=detail, result=found
            )
        return refusal(request.transaction, f"unknown command {name!r}: only poll and identify")

    # ------------------------------------------------------------------ internals

    def _publisher(self) -> MqttPublisher:
        return MqttPublisher(
            self.config,
            self.outbox,
            session=self.session,
            version=version("kktmon"),
            started_at=self.started_at,
            on_command=self.handle_command,
            on_connect=self._republish,
        )

    def _start_pollers(self) -> None:
        self.pollers = [
            DevicePoller(
                self, device, driver_class(device.vendor)(device.url, device.driver_options())
            )
            for device in self.config.devices
            if device.enabled
        ]
        for poller in self.pollers:
            poller.start()

    def _stop_pollers(self) -> None:
        for poller in self.pollers:
            poller.stop()
        for poller in self.pollers:
            poller.join()

    def _put_health(self) -> None:
        stats = self.outbox.stats()
        health = self.figures.snapshot(self.started_at, self.session, stats, self.publisher.stats())
        self.outbox.put_retained(self.topics.health(), health.to_bytes())
        self.publisher.wake()
        systemd.notify(f"STATUS={self.figures.status_line(stats)}")

    def _install_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            self.stop_event.set()
            self._wake.set()

        def reload(signum: int, frame: FrameType | None) -> None:
            self.reload_requested.set()
            self._wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)


def _watchdog_period() -> float:
    """Half of systemd's WatchdogSec, or a few seconds when not under a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    return int(usec) / 2_000_000 if usec and usec.isdigit() else 5.0


def _next_session(path: Path) -> int:
    """A counter bumped on every start, so a stale will cannot undo a newer birth."""
    try:
        session = int(path.read_text().strip()) + 1
    except (FileNotFoundError, ValueError):
        session = 1
    _write_atomic(path, str(session))
    return session


def _load_engine(config: AgentConfig, outbox: Outbox) -> RuleEngine:
    state = outbox.load_rules_state()
    if state is None:
        return RuleEngine(config.rules)
    try:
        return RuleEngine.from_json(state, config.rules)
    except ValueError as exc:
        log.error("rule state in %s unreadable, starting fresh: %s", outbox.path, exc)
        return RuleEngine(config.rules)


def _import_old_state(config: AgentConfig, outbox: Outbox) -> None:
    """Move an older agent's ``seq.json`` and ``rules.json`` into the outbox, once.

    The files are renamed after the import (``.imported``, or ``.unreadable`` for one that
    did not parse, which counts as absent, as it always did). A kill between the import
    and the renames only imports again, and the import never lowers a ``seq`` nor
    replaces a rule state the database already has.
    """
    seq_path, rules_path = config.agent.state_dir / "seq.json", config.rules_state_path
    if not (seq_path.exists() or rules_path.exists()):
        return
    seq, rules_state = _read_old_seq(seq_path), _read_old_rules(rules_path, config)
    outbox.import_state(seq or {}, rules_state)
    for path, found in ((seq_path, seq is not None), (rules_path, rules_state is not None)):
        if path.exists():
            suffix = ".imported" if found else ".unreadable"
            os.replace(path, path.with_name(path.name + suffix))
            log.info("%s renamed %s%s", path, path.name, suffix)


def _read_old_seq(path: Path) -> dict[str, int] | None:
    try:
        return _OLD_SEQ.validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.error("%s unreadable, not imported: %s", path, exc)
        return None


def _read_old_rules(path: Path, config: AgentConfig) -> str | None:
    try:
        return RuleEngine.from_json(path.read_bytes(), config.rules).to_json()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.error("%s unreadable, not imported: %s", path, exc)
        return None


def _write_atomic(path: Path, text: str) -> None:
    """Write-rename with fsync: a power cut leaves the old file or the new, never half."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
