"""Messages over the broker's size limit (issue 12 follow-up), against the shipped broker.

The central broker drops payloads over ``message_size_limit`` (64 KiB). Mosquitto 2.0
answers such a publish with PUBACK 0x95 under MQTT 5, which paho takes for a protocol
error and disconnects on, and with a plain PUBACK under 3.1.1 (the message is silently
lost). The agent checks every message against ``outbox.max_payload_bytes`` when it is
queued: a state or alert is trimmed where that is principled, an event is set aside in
the outbox's ``rejected`` table, counted and logged once; whatever still reaches the
broker and is refused there is set aside too, and nothing blocks the queue behind it.

The broker runs ``deploy/mosquitto/kktmon.conf`` as shipped, paths and ports rewritten
(``mqtt_broker.shipped_config``); the agent connects as store-1 over TLS, the watcher as
the ticketing worker on the loopback listener.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from mqtt_broker import Broker, shipped_config
from pki import make_pki

from kktmon.agent.cli import main as agent_cli
from kktmon.agent.config import AgentConfig, parse_config
from kktmon.agent.figures import AgentFigures
from kktmon.agent.outbox import Outbox
from kktmon.agent.trim import TEXT_CAPS
from kktmon.protocol.contract import Event, EventKind, PublisherStats
from kktmon.protocol.errors import ConfigError
from kktmon.protocol.health import DeviceInfo, HealthSnapshot, LinkInfo, PrinterInfo, Problem
from kktmon.protocol.problems import Owner, ProblemCode, Severity
from kktmon.protocol.topics import Topics, kkt_id

if TYPE_CHECKING:  # conftest is not importable at run time under importlib mode
    from tests.agent.conftest import Rig, Seen, Watcher

STORES = {"store-1": "pw-store-1", "store-2": "pw-store-2"}
WORKERS = {"kktmon-ticketing": "pw-central"}
CENTRAL = {"username": "kktmon-ticketing", "password": WORKERS["kktmon-ticketing"]}
A, B = Topics("kktmon/v1", "store-1"), Topics("kktmon/v1", "store-2")
KKT = kkt_id("atol", "00106100123456")
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
#: ``message_size_limit`` of the shipped kktmon.conf, and the agent's default.
LIMIT = 65536


# -- the shipped broker -----------------------------------------------------------------


@dataclass
class Shipped:
    """``kktmon.conf`` running: the stores' TLS listener on ``tls_port``."""

    rig: Rig
    tls_port: int
    ca: Path

    def config(self, **keys: Any) -> AgentConfig:
        """store-1's agent configuration over TLS, with quick reconnects."""
        return self.rig.config(
            url=f"mqtts://127.0.0.1:{self.tls_port}",
            tls_ca_file=self.ca,
            username="store-1",
            password=STORES["store-1"],
            **keys,
        )

    def watch(self, *topics: str) -> Watcher:
        """A ticketing-side subscriber on the loopback listener."""
        return self.rig.watch(*topics, **CENTRAL)


StartShipped = Callable[..., Shipped]


@pytest.fixture
def start_shipped(
    tmp_path: Path,
    mosquitto_factory: Callable[..., Broker],
    rig_for: Callable[[Broker], Rig],
    tcp_port: Callable[[], int],
) -> StartShipped:
    """``start_shipped(message_size_limit=None)``: the shipped broker, or one whose payload
    limit was lowered (a broker configured below what the agent assumes)."""

    def start(message_size_limit: int | None = None) -> Shipped:
        pki = make_pki(tmp_path / "certs")
        tls_port = tcp_port()
        text = shipped_config(
            tmp_path / "etc", pki.folder, tls_port, stores=STORES, workers=WORKERS
        )
        if message_size_limit is not None:
            shipped = f"\nmessage_size_limit {LIMIT}\n"
            assert shipped in text, "kktmon.conf no longer sets the limit the tests assume"
            text = text.replace(shipped, f"\nmessage_size_limit {message_size_limit}\n")
        broker = mosquitto_factory(raw=text, name="central")
        return Shipped(rig_for(broker), tls_port, pki.path("ca.crt"))

    return start


@pytest.fixture
def shipped(start_shipped: StartShipped) -> Shipped:
    return start_shipped()


# -- payloads ---------------------------------------------------------------------------


def problem(code: str = "FN_EXPIRING", message: str = "ФН истекает", **facts: Any) -> Problem:
    return Problem(
        code=code, severity=Severity.WARNING, owner=Owner.SERVICE, message=message, facts=facts
    )


def event(seq: int, message: str = "ФН истекает") -> bytes:
    at = T0 + timedelta(seconds=seq)
    return Event(seq=seq, kind=EventKind.RAISED, problem=problem(message=message), at=at).to_bytes()


#: An event of about 72 kB, like the one in the issue: over the shipped 64 KiB.
BIG_EVENT = event(1, message="Ф" * 36_000)


def snapshot(minute: int = 0, **fields: Any) -> HealthSnapshot:
    device = DeviceInfo(vendor="atol", serial="00106100123456", model="АТОЛ 30Ф")
    return HealthSnapshot(taken_at=T0 + timedelta(minutes=minute), device=device, **fields)


def worst_case_state() -> bytes:
    """Every problem code at once with 300-character messages: about 27 kB, a normal size."""
    problems = [
        problem(code.value, "Ф" * 300, **{f"fact_{n}": "значение" * 4 for n in range(6)})
        for code in ProblemCode
    ]
    link = LinkInfo(last_error="ошибка связи " * 60)
    return snapshot(problems=problems, link=link).to_json().encode()


def first_seqs(seen: list[Seen]) -> list[int]:
    """Event ``seq`` values in arrival order, each once (QoS 1 may repeat a message)."""
    seqs: list[int] = []
    for message in seen:
        seq = message.json()["seq"]
        if seq not in seqs:
            seqs.append(seq)
    return seqs


def put_events(outbox: Outbox, big: bytes, count: int = 5) -> None:
    """Events 0..count-1 on store-1's register; event 1 is ``big``."""
    for seq in range(count):
        outbox.put_event(A.event(KKT), big if seq == 1 else event(seq))


# -- an oversize event ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_an_oversize_event_is_set_aside_and_the_events_after_it_follow(
    shipped: Shipped, outbox: Outbox, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kktmon.agent")
    watcher = shipped.watch(A.event(KKT))
    assert len(BIG_EVENT) > LIMIT
    put_events(outbox, BIG_EVENT)
    agent = shipped.rig.agent(shipped.config(protocol=protocol), outbox=outbox)
    seen = watcher.wait_for(lambda m: len(m) >= 4, timeout=10, what="the events after it")
    assert first_seqs(seen) == [0, 2, 3, 4]
    shipped.rig.until(lambda: outbox.stats().depth == 0, what="the queue drained")
    assert agent.stats().connects == 1, "the link must not reconnect over it"
    stats = outbox.stats()
    assert stats.rejected == 1 and stats.set_aside["oversize"] == 1
    [kept] = outbox.rejected()
    assert (kept.kind, kept.topic, kept.payload, kept.reason) == (
        "event",
        A.event(KKT),
        BIG_EVENT,
        "oversize",
    )
    logged = [r.getMessage() for r in caplog.records if A.event(KKT) in r.getMessage()]
    assert len(logged) == 1 and str(len(BIG_EVENT)) in logged[0], logged


def test_an_oversize_row_queued_by_an_older_agent_no_longer_blocks_the_queue(
    shipped: Shipped, outbox: Outbox
) -> None:
    """The issue's outbox: the 72 kB event already at its head, queued without any check."""
    outbox.put_event(A.event(KKT), event(0))
    with sqlite3.connect(outbox.path) as db:  # what an agent without the check left there
        db.execute(
            "INSERT INTO entries (kind, topic, payload, created_at) VALUES ('event', ?, ?, ?)",
            (A.event(KKT), BIG_EVENT, time.time()),
        )
    db.close()
    for seq in (2, 3, 4):
        outbox.put_event(A.event(KKT), event(seq))
    watcher = shipped.watch(A.event(KKT))
    agent = shipped.rig.agent(shipped.config(protocol="5"), outbox=outbox)
    seen = watcher.wait_for(lambda m: len(m) >= 4, timeout=10, what="the events after it")
    assert first_seqs(seen) == [0, 2, 3, 4]
    shipped.rig.until(lambda: outbox.stats().depth == 0, what="the queue drained")
    assert agent.stats().connects == 1
    [kept] = outbox.rejected()
    assert (kept.payload, kept.reason) == (BIG_EVENT, "oversize")


def test_a_message_the_broker_breaks_the_link_on_is_set_aside_without_a_storm(
    start_shipped: StartShipped, outbox: Outbox
) -> None:
    """A broker limit below the agent's: the 24 kB event passes the agent's check, and
    Mosquitto's PUBACK 0x95 makes paho drop the connection. It is set aside after the
    second connection that breaks with it alone in flight, not retried forever."""
    shipped = start_shipped(message_size_limit=16384)
    big = event(1, message="Ф" * 12_000)
    assert 16384 < len(big) < LIMIT
    put_events(outbox, big)
    watcher = shipped.watch(A.event(KKT))
    agent = shipped.rig.agent(shipped.config(protocol="5"), outbox=outbox)
    shipped.rig.until(lambda: outbox.stats().depth == 0, timeout=10, what="the queue drained")
    seen = watcher.wait_for(lambda m: len(m) >= 4, what="the events after it")
    assert first_seqs(seen) == [0, 2, 3, 4]
    assert agent.stats().connects <= 3, agent.stats()
    time.sleep(0.5)  # a reconnect loop would show here
    assert agent.stats().connects <= 3 and agent.connected, agent.stats()
    [kept] = outbox.rejected()
    assert (kept.payload, kept.reason) == (big, "disconnect")
    assert "Protocol error" in kept.detail
    assert outbox.stats().set_aside["disconnect"] == 1


def test_a_failure_puback_sets_the_row_aside_and_keeps_the_link(
    shipped: Shipped, outbox: Outbox
) -> None:
    """MQTT 5 PUBACK 0x87 (the ACL refuses store-1 a topic of store-2): moved aside with
    the reason, never retried at each connection, and the link stays up."""
    outbox.put_event(B.event("shtrih-0002"), event(0))  # a bug: another store's subtree
    outbox.put_event(A.event(KKT), event(1))
    watcher = shipped.watch(A.event(KKT))
    agent = shipped.rig.agent(shipped.config(protocol="5"), outbox=outbox)
    watcher.wait_topic(A.event(KKT))
    shipped.rig.until(lambda: outbox.stats().depth == 0, what="the refused row moved aside")
    [kept] = outbox.rejected()
    assert (kept.topic, kept.reason) == (B.event("shtrih-0002"), "refused")
    assert "Not authorized" in kept.detail
    assert agent.stats().connects == 1 and agent.stats().publish_errors == 1
    assert outbox.stats().set_aside["refused"] == 1


# -- states and alerts ------------------------------------------------------------------


def test_a_normal_size_state_passes_unchanged(shipped: Shipped, outbox: Outbox) -> None:
    state = worst_case_state()
    assert 20_000 < len(state) < LIMIT // 2
    outbox.put_state(A.state(KKT), state, T0)
    watcher = shipped.watch(A.state(KKT))
    shipped.rig.agent(shipped.config(protocol="5"), outbox=outbox)
    assert watcher.wait_topic(A.state(KKT)).payload == state
    stats = outbox.stats()
    assert (stats.rejected, stats.trimmed, stats.set_aside["oversize"]) == (0, 0, 0)


def test_an_oversize_state_is_trimmed_to_a_valid_snapshot(shipped: Shipped, outbox: Outbox) -> None:
    """A broken register's huge fields: the raw block goes, long texts are cut with a
    marker, and the decoded truth (serial, problem codes, flags) arrives intact."""
    huge = snapshot(
        link=LinkInfo(last_error="ошибка связи " * 10_000),
        printer=PrinterInfo(raw={f"reg_{n}": n for n in range(5_000)}, cover_open=True),
        problems=[problem(message="Ф" * 50_000, detail="д" * 20_000), problem("PAPER_OUT")],
    )
    payload = huge.to_json().encode()
    assert len(payload) > 4 * LIMIT
    outbox.put_state(A.state(KKT), payload, huge.taken_at)
    watcher = shipped.watch(A.state(KKT))
    shipped.rig.agent(shipped.config(protocol="5"), outbox=outbox)
    got = watcher.wait_topic(A.state(KKT), timeout=10)
    assert len(got.payload) <= LIMIT
    trimmed = HealthSnapshot.model_validate_json(got.payload)
    assert trimmed.device == huge.device and trimmed.printer.cover_open is True
    assert trimmed.printer.raw == {}
    assert [p.code for p in trimmed.problems] == ["FN_EXPIRING", "PAPER_OUT"]
    last_error = trimmed.link.last_error
    assert last_error is not None and last_error.startswith("ошибка связи ошибка")
    assert "trimmed" in last_error and len(last_error) < TEXT_CAPS[0] + 100
    assert "trimmed" in trimmed.problems[0].message
    assert outbox.stats().trimmed == 1 and outbox.stats().rejected == 0


def test_an_oversize_alert_is_trimmed_to_a_valid_problem(outbox: Outbox) -> None:
    alert = problem(message="Ф" * 40_000, reply="о" * 40_000).model_dump_json().encode()
    outbox.put_retained(A.alert(KKT, "FN_EXPIRING"), alert)
    [entry] = outbox.pending()
    assert len(entry.payload) <= LIMIT
    got = Problem.model_validate_json(entry.payload)
    assert got.code == "FN_EXPIRING" and "trimmed" in got.message
    assert outbox.stats().trimmed == 1


def test_a_state_with_no_principled_trim_is_set_aside_once_per_topic(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Thousands of short problems: no text to cut, and dropping problems would lie."""
    caplog.set_level(logging.WARNING, logger="kktmon.agent")
    many = [problem(f"CODE_{n}", "коротко") for n in range(1_000)]
    for minute in (0, 1):
        huge = snapshot(minute, problems=many)
        outbox.put_state(A.state(KKT), huge.to_json().encode(), huge.taken_at)
    assert outbox.pending() == []
    [kept] = outbox.rejected()  # the newest only: states replace each other here too
    assert kept.reason == "oversize"
    assert HealthSnapshot.model_validate_json(kept.payload).taken_at == T0 + timedelta(minutes=1)
    assert outbox.stats().set_aside["oversize"] == 2
    logged = [r for r in caplog.records if A.state(KKT) in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in logged]


# -- where the set-aside rows show ------------------------------------------------------


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'site = "store-1"\n[agent]\nstate_dir = "{tmp_path / "state"}"\n{extra}'
        '[[devices]]\nurl = "socket://127.0.0.1:9"\n',
        encoding="utf-8",
    )
    return path


def test_kktmon_outbox_json_shows_the_set_aside_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    config = parse_config(path.read_text(encoding="utf-8"), path, env={})
    with Outbox(config.outbox_path, config.outbox.limits()) as outbox:
        outbox.put_event(A.event(KKT), BIG_EVENT)
        outbox.put_event(A.event(KKT), event(2))
    assert agent_cli(["outbox", "--config", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["depth"] == 1 and shown["rejected"] == 1
    assert shown["set_aside"]["oversize"] == 1


def test_health_figures_count_the_set_aside_messages(outbox: Outbox) -> None:
    outbox.put_event(A.event(KKT), BIG_EVENT)
    health = AgentFigures().snapshot(T0, 1, outbox.stats(), PublisherStats(connected=False))
    assert health.outbox_drops["oversize"] == 1
    assert health.outbox_drops["state"] == 0  # the limits' drops are still there


def test_max_payload_bytes_is_a_validated_outbox_setting(tmp_path: Path) -> None:
    default = parse_config(write_config(tmp_path).read_text(encoding="utf-8"), env={})
    assert default.outbox.max_payload_bytes == LIMIT
    assert default.outbox.limits().max_payload_bytes == LIMIT
    text = write_config(tmp_path, "[outbox]\nmax_payload_bytes = 262144\n").read_text("utf-8")
    assert parse_config(text, env={}).outbox.limits().max_payload_bytes == 262144
    for bad in (100, 2**28, 512 * 1024 * 1024):
        text = write_config(tmp_path, f"[outbox]\nmax_payload_bytes = {bad}\n").read_text("utf-8")
        with pytest.raises(ConfigError, match=r"outbox\.max_payload_bytes"):
            parse_config(text, env={})
